# `bmaptk copy` and `create -o` against real faults from the kernel, no
# injection library: a full tmpfs (ENOSPC), a read-only filesystem
# (EROFS), a loop device whose sparse backing file sits on a full tmpfs
# (its writes fail: the "copy said success but the card is corrupt" case),
# a loop device made read-only mid-copy (EPERM from the block layer), a
# filesystem whose largest file is smaller than the image (EFBIG: ext2
# with 1 KiB blocks, 16 GiB) and RLIMIT_FSIZE (`ulimit -f`, which also
# raises SIGXFSZ). Every failure exits 3 with an error naming the file or
# device (and the offset for writes), never says "copied", and leaves DEST
# right: created and removed (said), existing and kept (said incomplete,
# or untouched), a device "holds an incomplete image"; `bmaptk check`
# then finds the damage. Needs root for mounts and loop devices.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd cmp du mkfifo "$PYTHON"
[ "$(id -u)" = 0 ] || skip "needs root (tmpfs mounts, loop devices)"

MIB=$((1024 * 1024))
e2e_ramdir R
IMG=$R/img.raw
fault_image "$IMG" 20241127

# bm_fails WANT_RC ARG...: bm (lib.sh) of a run that must fail, and say
# nothing of success.
bm_fails() {
	bm "$@"
	assert_not_contains "$RUN_ERR" "copied " "bmaptk ${*:2}"
	assert_not_contains "$RUN_ERR" "ranges verified" "bmaptk ${*:2}"
}

# has_line WHAT REGEX: an error line matches REGEX (extended).
has_line() {
	grep -qE "^bmaptk: error: $2\$" <<<"$RUN_ERR" ||
		fail "$1: no error line matching [$2] in [$RUN_ERR]"
}

# tmpfs_dir VAR SIZE: a fresh tmpfs of SIZE, unmounted at exit.
tmpfs_dir() {
	local d
	d=$(mktemp -d "$E2E_TMP/tmpfs.XXXXXX") || fail "mktemp"
	e2e_mount -t tmpfs -o "size=$2" tmpfs "$d" ||
		skip "cannot mount a tmpfs on $d: $(cat "$E2E_TMP/mount.err")"
	printf -v "$1" '%s' "$d"
}

# loop_dev VAR FILE: attach FILE to a free loop device (detached at exit,
# made writable again first: loop_setro leaves it read-only if it fails).
loop_dev() {
	e2e_losetup "$1" "$2" ||
		skip "no loop device: $(cat "$E2E_TMP/losetup.err")"
	on_exit "blockdev --setrw '${!1}'"
}
require_cmd losetup blockdev mount umount

# The mounts and loop devices the cases share, made once.
tmpfs_dir SMALL 4m  # DEST files: the image needs 41 MiB
tmpfs_dir FULL 4m   # filled up: no room even for a bmap
tmpfs_dir RO 4m     # remounted read-only
tmpfs_dir BACK 8m   # holds the sparse 128 MiB backing file of LOOP_FULL
truncate -s 128M "$BACK/backing" || fail "truncate"
loop_dev LOOP_FULL "$BACK/backing"
truncate -s 128M "$R/backing2" || fail "truncate"
loop_dev LOOP_RO "$R/backing2"

# --- ENOSPC ------------------------------------------------------------------
enospc_file() {
	local d=$SMALL/new
	bm_fails 3 copy "$IMG" "$d"
	has_line "ENOSPC, new DEST" "$d: write error at offset [0-9]+: No space left on device"
	assert_contains "$RUN_ERR" "error: $d: removed the partially written file" \
		"ENOSPC, new DEST"
	assert_no_file "$d" "ENOSPC, new DEST"
	d=$SMALL/old
	printf 'old contents\n' >"$d"
	bm_fails 3 copy "$IMG" "$d"
	has_line "ENOSPC, existing DEST" "$d: write error at offset [0-9]+: No space left on device"
	assert_contains "$RUN_ERR" "$d: the file is incomplete (it existed before this copy, so it was kept)" \
		"ENOSPC, existing DEST"
	[ -f "$d" ] || fail "ENOSPC: the pre-existing $d is gone"
	rm -f "$d"
}
case_ "ENOSPC on a small tmpfs" enospc_file

# create -o X where not even the bmap fits: no X, no temporary file; an X
# that existed stays as it was.
enospc_create() {
	cp "$IMG.bmap" "$FULL/old.bmap"
	dd if=/dev/zero of="$FULL/fill" bs=64k status=none 2>/dev/null
	[ "$(stat -f -c %a "$FULL")" = 0 ] || fail "cannot fill $FULL"
	bm_fails 3 create "$IMG" -o "$FULL/x.bmap"
	has_line "create, ENOSPC" "$FULL/x.bmap: write error: No space left on device"
	bm_fails 3 create "$IMG" -o "$FULL/old.bmap"
	has_line "create over an old bmap, ENOSPC" "$FULL/old.bmap: write error: No space left on device"
	assert_same_file "$IMG.bmap" "$FULL/old.bmap" "the old bmap after ENOSPC"
	assert_dir_entries "$FULL" "fill
old.bmap" "create, ENOSPC: no X and no temporary file"
}
case_ "create -o on a full tmpfs" enospc_create

# --- EROFS ----------------------------------------------------------------------
erofs() {
	printf 'old contents\n' >"$RO/old"
	mount -o remount,ro "$RO" || fail "cannot remount $RO read-only"
	bm_fails 3 copy "$IMG" "$RO/new"
	has_line "EROFS, new DEST" "cannot create $RO/new: Read-only file system"
	assert_no_file "$RO/new" "EROFS"
	bm_fails 3 copy "$IMG" "$RO/old"
	has_line "EROFS, existing DEST" "cannot open $RO/old: Read-only file system"
	assert_eq "old contents" "$(cat "$RO/old")" "EROFS, existing DEST"
	bm_fails 3 create "$IMG" -o "$RO/x.bmap"
	has_line "create, EROFS" "$RO/x.bmap: cannot write the bmap here: Read-only file system"
	assert_dir_entries "$RO" "old" "EROFS"
}
case_ "read-only filesystem" erofs

# --- block devices whose writes fail --------------------------------------------
# The loop driver writes into a sparse file on a full tmpfs: the writes
# fail once the tmpfs is full. The copy must not exit 0; check later
# reports the damage.
loop_full() {
	local dev=$LOOP_FULL
	bm_fails 3 copy "$IMG" "$dev"
	has_line "loop device on a full tmpfs" "$dev: write error at offset [0-9]+: .*"
	assert_contains "$RUN_ERR" "error: $dev: the device holds an incomplete image" \
		"loop device on a full tmpfs"
	run "$BMAPTK" check "$IMG.bmap" "$dev"
	case $RUN_RC in
	1) assert_contains "$RUN_ERR" "error: $dev: bad range: blocks " \
		"check of the damaged device" ;;
	3) assert_contains "$RUN_ERR" "error: $dev" "check of the damaged device" ;;
	*) fail "check of the damaged device: exit $RUN_RC, expected 1 or 3: [$RUN_ERR]" ;;
	esac
	note "check of the damaged device: $(tail -n 1 <<<"$RUN_ERR")"
}
case_ "loop device on a full tmpfs" loop_full

# The device turns read-only mid-copy (blockdev --setro): the image comes
# on stdin, 24 MiB first; once 13 MiB (ranges 1 and 2) are on the device
# and bmaptk waits for more, the device is made read-only, then the rest
# is fed. The write of range 3 (from 20 MiB) fails with EPERM.
loop_setro() {
	local dev=$LOOP_RO pid i a feed=$((24 * MIB)) off
	rm -f "$E2E_TMP/in"
	mkfifo "$E2E_TMP/in"
	"$BMAPTK" copy --bmap "$IMG.bmap" - "$dev" <"$E2E_TMP/in" \
		>"$E2E_TMP/bg.out" 2>"$E2E_TMP/bg.err" &
	pid=$!
	exec 9>"$E2E_TMP/in"
	head -c "$feed" "$IMG" >&9
	for ((i = 0; i < 500; i++)); do
		a=$(du -B1 "$R/backing2" | cut -f1)
		[ "$a" -ge $((13 * MIB)) ] && break
		sleep 0.02
	done
	blockdev --setro "$dev" || fail "blockdev --setro $dev"
	tail -c +$((feed + 1)) "$IMG" >&9 2>/dev/null
	exec 9>&-
	RUN_RC=0
	wait "$pid" || RUN_RC=$?
	RUN_OUT=$(cat "$E2E_TMP/bg.out")
	RUN_ERR=$(cat "$E2E_TMP/bg.err")
	blockdev --setrw "$dev"
	assert_rc 3 "device made read-only mid-copy"
	assert_not_contains "$RUN_ERR" "copied " "device made read-only mid-copy"
	has_line "device made read-only mid-copy" "$dev: write error at offset [0-9]+: Operation not permitted"
	off=$(sed -n 's/.*write error at offset \([0-9]*\):.*/\1/p' <<<"$RUN_ERR")
	((off >= 20 * MIB && off <= feed)) ||
		fail "device made read-only mid-copy: offset $off, expected 20-24 MiB"
	assert_contains "$RUN_ERR" "error: $dev: the device holds an incomplete image" \
		"device made read-only mid-copy"
	run "$BMAPTK" check "$IMG.bmap" "$dev"
	assert_rc 1 "check after the failed copy"
	assert_contains "$RUN_ERR" "2 of 5 ranges verified, 3 bad" \
		"check after the failed copy"
}
case_ "loop device made read-only mid-copy" loop_setro

# --- EFBIG --------------------------------------------------------------------------
# A 17 GiB image (2 MiB mapped) into a file on ext2 with 1 KiB blocks,
# whose largest file is 16 GiB. A new DEST: exit 3, "File too large", no
# file left. An existing DEST: it must be left as it was, or said to be
# incomplete, never silently cut to 0 bytes.
efbig() {
	local huge=$R/huge.raw mnt d dev
	if ! command -v mkfs.ext2 >/dev/null; then
		skip_case "EFBIG: mkfs.ext2 is not installed"
		return 0
	fi
	"$PYTHON" - "$huge" <<'EOF' || fail "cannot make the 17 GiB image"
import os
import sys

fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, 17 << 30)
os.pwrite(fd, os.urandom(1 << 20), 0)
os.pwrite(fd, os.urandom(1 << 20), (17 << 30) - (1 << 20))
os.close(fd)
EOF
	"$BMAPTK" create "$huge" -o "$huge.bmap" 2>/dev/null ||
		fail "bmaptk create of the 17 GiB image"
	mnt=$E2E_TMP/ext2
	mkdir "$mnt"
	truncate -s 32M "$R/ext2.img" || fail "truncate"
	mkfs.ext2 -q -F -b 1024 "$R/ext2.img" >/dev/null 2>&1 ||
		fail "mkfs.ext2"
	# Detached and unmounted when the case ends (case_ runs on_exit then).
	if ! e2e_losetup dev "$R/ext2.img" ||
		! e2e_mount -t ext2 "$dev" "$mnt"; then
		skip_case "EFBIG: cannot loop-mount ext2"
		return 0
	fi
	d=$mnt/new
	bm_fails 3 copy "$huge" "$d"
	has_line "EFBIG, new DEST" "$d: .*File too large"
	assert_no_file "$d" "EFBIG, new DEST"
	d=$mnt/old
	cp "$IMG.bmap" "$d"
	bm_fails 3 copy "$huge" "$d"
	has_line "EFBIG, existing DEST" "$d: .*File too large"
	if ! cmp -s "$IMG.bmap" "$d"; then
		assert_contains "$RUN_ERR" "$d: the file is incomplete" \
			"EFBIG, existing DEST changed (now $(stat -c %s "$d") bytes) without a word"
	fi
}
case_ "file too large for the filesystem" efbig

# --- RLIMIT_FSIZE -------------------------------------------------------------------
# `ulimit -f` below the image size. The kernel sends SIGXFSZ with EFBIG;
# its default action kills the process, which then cannot clean up. With
# SIGXFSZ ignored by the parent (inherited), and with the default: exit 3,
# "File too large", the created DEST removed.
fsize() {
	local d=$R/fsize
	RUN_RC=0
	(
		ulimit -f 16384 # KiB: 16 MiB, the image is 64 MiB
		trap '' XFSZ
		exec "$BMAPTK" copy "$IMG" "$d"
	) >"$E2E_TMP/fs.out" 2>"$E2E_TMP/fs.err" || RUN_RC=$?
	RUN_ERR=$(cat "$E2E_TMP/fs.err")
	assert_rc 3 "ulimit -f, SIGXFSZ ignored"
	has_line "ulimit -f, SIGXFSZ ignored" "$d: .*File too large"
	assert_no_file "$d" "ulimit -f, SIGXFSZ ignored"
	RUN_RC=0
	(
		ulimit -f 16384
		trap - XFSZ
		exec "$BMAPTK" copy "$IMG" "$d"
	) >"$E2E_TMP/fs.out" 2>"$E2E_TMP/fs.err" || RUN_RC=$?
	RUN_ERR=$(cat "$E2E_TMP/fs.err")
	[ "$RUN_RC" != 153 ] ||
		fail "ulimit -f: bmaptk was killed by SIGXFSZ (exit 153), leaving $(
			[ -e "$d" ] && echo "the $(stat -c %s "$d")-byte $d it created" || echo "no file")"
	assert_rc 3 "ulimit -f"
	has_line "ulimit -f" "$d: .*File too large"
	assert_no_file "$d" "ulimit -f"
}
case_ "ulimit -f" fsize

cases_done "all real-fault cases passed"
