# bmaptk run as "bmaptool" logs bmaptool 3.9's own lines, which LAVA
# waits for: its device dictionaries run `bmaptool copy URL DEVICE` and
# wait for
#   bmaptool: info: copying time: [0-9hms\.\ ]+, copying speed [0-9\.]+
#   [MKiBbytes]+\/sec
# Checked with that regex (grep -E, and Python's re as LAVA's pexpect
# uses it) for a file and a loop device, with a discovered bmap, --bmap,
# --nobmap and an xz image; every line's words are bmaptool's (and, when
# Debian's bmaptool is installed, the same lines as it prints, times
# aside); warnings and errors are "bmaptool: WARNING:" and "bmaptool:
# ERROR:" (-q keeps the warnings, as bmaptool's does); on a terminal the
# progress is bmaptool's "N% copied". Run as bmaptk, nothing changes.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd xz cmp "$PYTHON"

LAVA_RE='bmaptool: info: copying time: [0-9hms\.\ ]+, copying speed [0-9\.]+ [MKiBbytes]+\/sec'
e2e_ramdir D
BIN=$E2E_TMP/bin
mkdir -p "$BIN" && ln -s "$BMAPTK" "$BIN/bmaptool" ||
	fail "cannot make the bmaptool symlink"
ALIAS=$BIN/bmaptool

# 32 MiB, 6 MiB of it data in two places and a partial last block.
"$PYTHON" - "$D/disk.img" <<'EOF' || fail "cannot make the image"
import os, random, sys
rng = random.Random(7)
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
size = 32 * 1024 * 1024 - 1000
os.ftruncate(fd, size)
for off, n in ((0, 3000000), (10 << 20, 3200000), (size - 3000, 3000)):
    os.pwrite(fd, rng.randbytes(n), off)
os.close(fd)
EOF
"$BMAPTK" -q create -o "$D/disk.img.bmap" "$D/disk.img" &&
	"$BMAPTK" -q create --no-checksum -o "$D/nosum.bmap" "$D/disk.img" &&
	xz -0 -T2 -k "$D/disk.img" || fail "cannot make the bmaps and the .xz"
BLOCKS=$(sed -n 's:.*<BlocksCount> *\([0-9]*\).*:\1:p' "$D/disk.img.bmap")
MAPPED=$(sed -n 's:.*<MappedBlocksCount> *\([0-9]*\).*:\1:p' \
	"$D/disk.img.bmap")
# bmaptool's figures for this bmap: 32.0 MiB, mapped by blocks.
MAPLINE="bmaptool: info: $BLOCKS blocks of size 4096 (32.0 MiB), mapped \
$MAPPED blocks ($("$PYTHON" -c "
m = $MAPPED * 4096 / 1048576.0
print('%.1f MiB or %.1f%%' % (m, $MAPPED * 100.0 / $BLOCKS))"))"

# lava_ok WHAT: the last run's stderr has LAVA's line, by grep -E and by
# Python's re, and no line of bmaptk's own.
lava_ok() {
	grep -Eq "$LAVA_RE" "$E2E_TMP/run.err" ||
		fail "$1: no line matches LAVA's regex: [$RUN_ERR]"
	"$PYTHON" -c 'import re, sys
sys.exit(0 if re.search(sys.argv[1], open(sys.argv[2]).read()) else 1)' \
		"$LAVA_RE" "$E2E_TMP/run.err" ||
		fail "$1: Python's re does not find LAVA's line: [$RUN_ERR]"
	assert_not_contains "$RUN_ERR" "bmaptk:" "$1: bmaptk's own prefix"
}

# lines_without_time: the last stderr, the copying time line's figures
# replaced by T and S (they differ from run to run).
lines_without_time() {
	sed -E 's/copying time: [0-9hms. ]+, copying speed [0-9.]+ [A-Za-z]+\/sec/copying time: T, copying speed S\/sec/' \
		"$E2E_TMP/run.err"
}

case_file() {
	cd "$D" || fail "cd $D"
	run "$ALIAS" copy disk.img.xz out.img
	assert_rc 0 "copy disk.img.xz out.img"
	lava_ok "file DEST, xz, bmap found"
	assert_eq "bmaptool: info: discovered bmap file 'disk.img.bmap'
bmaptool: info: block map format version 2.0
$MAPLINE
bmaptool: info: copying image 'disk.img.xz' to file 'out.img' using bmap file 'disk.img.bmap'
bmaptool: info: synchronizing 'out.img'
bmaptool: info: copying time: T, copying speed S/sec" "$(lines_without_time)" \
		"bmaptool's lines"
	assert_same_file disk.img out.img "copy of the xz image"

	# --bmap: nothing discovered; DEST by its base name, synced by path.
	run "$ALIAS" copy --bmap disk.img.bmap disk.img "$D/sub.img"
	assert_rc 0 "copy --bmap"
	lava_ok "file DEST, --bmap"
	assert_eq "bmaptool: info: block map format version 2.0
$MAPLINE
bmaptool: info: copying image 'disk.img' to file 'sub.img' using bmap file 'disk.img.bmap'
bmaptool: info: synchronizing '$D/sub.img'
bmaptool: info: copying time: T, copying speed S/sec" "$(lines_without_time)" \
		"--bmap: bmaptool's lines"
	assert_same_file disk.img sub.img "copy with --bmap"
}

case_nobmap() {
	cd "$D" || fail "cd $D"
	run "$ALIAS" copy --nobmap disk.img.xz whole.img
	assert_rc 0 "copy --nobmap"
	lava_ok "--nobmap"
	assert_eq "bmaptool: info: no bmap given, copy entire image to 'whole.img'
bmaptool: info: synchronizing 'whole.img'
bmaptool: info: copying time: T, copying speed S/sec" "$(lines_without_time)" \
		"--nobmap: bmaptool's lines"
	assert_same_file disk.img whole.img "copy with --nobmap"
}

case_blockdev() {
	local dev
	[ "$(id -u)" = 0 ] || {
		skip_case "not root: no loop device"
		return 0
	}
	truncate -s 40M "$D/card" || fail "truncate"
	e2e_losetup dev "$D/card" || {
		skip_case "no loop device: $(cat "$E2E_TMP/losetup.err")"
		return 0
	}
	cd "$D" || fail "cd $D"
	for args in "disk.img.xz" "--bmap disk.img.bmap disk.img" \
		"--nobmap disk.img.xz"; do
		# shellcheck disable=SC2086 # split on purpose
		run "$ALIAS" copy $args "$dev"
		assert_rc 0 "copy $args $dev"
		lava_ok "block device, $args"
		assert_contains "$RUN_ERR" "bmaptool: info: synchronizing '$dev'" \
			"$args: synchronizing"
		case $args in
		--nobmap*)
			assert_contains "$RUN_ERR" \
				"no bmap given, copy entire image to '$dev'" \
				"--nobmap to $dev" ;;
		*)
			assert_contains "$RUN_ERR" "to block device '$dev' using \
bmap file 'disk.img.bmap'" "$args: block device" ;;
		esac
		cmp -n "$(stat -c %s "$D/disk.img")" "$D/disk.img" "$dev" ||
			fail "$dev does not hold the image after copy $args"
	done
}

case_messages() {
	cd "$D" || fail "cd $D"
	# A warning: a bmap without checksums; -q keeps it, as bmaptool's -q.
	run "$ALIAS" copy --bmap nosum.bmap disk.img nosum.img
	assert_rc 0 "copy --bmap nosum.bmap"
	assert_contains "$RUN_ERR" "bmaptool: WARNING: nosum.bmap: the bmap has \
no checksums" "warning prefix"
	lava_ok "no checksums"
	run "$ALIAS" -q copy --bmap nosum.bmap disk.img nosum.img
	assert_rc 0 "-q copy --bmap nosum.bmap"
	assert_eq "bmaptool: WARNING: nosum.bmap: the bmap has no checksums; \
the data cannot be verified" "$RUN_ERR" "-q: the warning only"
	# Errors.
	run "$ALIAS" copy --nobmap --bmap disk.img.bmap disk.img no.img
	assert_rc 2 "--nobmap --bmap"
	assert_eq "bmaptool: ERROR: --nobmap and --bmap cannot be used together" \
		"$RUN_ERR" "error prefix"
	run "$ALIAS" copy disk.img "$D/nodir/x.img"
	assert_rc 3 "copy into a missing directory"
	assert_contains "$RUN_ERR" "bmaptool: ERROR: cannot create $D/nodir/x.img" \
		"error prefix"
	assert_not_contains "$RUN_ERR" "bmaptk:" "errors: bmaptk's prefix"
	cp --sparse=always disk.img bad.img &&
		printf 'X' | dd of=bad.img bs=1 seek=100 conv=notrunc status=none ||
		fail "cannot corrupt the image"
	run "$ALIAS" copy --bmap disk.img.bmap bad.img bad.out
	assert_rc 1 "copy of a corrupted image"
	assert_contains "$RUN_ERR" "bmaptool: ERROR: bad.img: checksum mismatch" \
		"mismatch"
	assert_not_contains "$RUN_ERR" "copying time" "a failed copy: no time"
	# Run as bmaptk, bmaptk's lines.
	run "$BMAPTK" copy disk.img.xz own.img
	assert_rc 0 "bmaptk copy"
	assert_contains "$RUN_ERR" "bmaptk: copied disk.img.xz to own.img" \
		"bmaptk's summary"
	assert_contains "$RUN_ERR" "bmaptk: bmap disk.img.bmap: format version" \
		"bmaptk's bmap line"
	assert_not_contains "$RUN_ERR" "bmaptool" "bmaptk's own lines"
}

# On a terminal: bmaptool's "N% copied", redrawn in place.
case_tty() {
	command -v script >/dev/null 2>&1 || {
		skip_case "no script(1): no terminal"
		return 0
	}
	cd "$D" || fail "cd $D"
	script -qec "'$ALIAS' copy disk.img.xz tty.img" /dev/null \
		>"$E2E_TMP/tty.out" 2>&1 || fail "copy on a terminal"
	grep -q $'\rbmaptool: info: 100% copied' "$E2E_TMP/tty.out" ||
		fail "no 100% copied on a terminal: $(cat -v "$E2E_TMP/tty.out")"
	grep -Eq "$LAVA_RE" "$E2E_TMP/tty.out" ||
		fail "on a terminal, no line matches LAVA's regex"
	assert_same_file disk.img tty.img "copy on a terminal"
}

# The real bmaptool prints the same lines, times aside.
case_real() {
	local real=/usr/bin/bmaptool args i=0
	if [ ! -x "$real" ] || "$real" --version 2>&1 | grep -q bmaptk; then
		skip_case "no Debian bmaptool to compare with"
		return 0
	fi
	cd "$D" || fail "cd $D"
	for args in "disk.img.xz r.img" "--bmap disk.img.bmap disk.img r.img" \
		"--nobmap disk.img.xz r.img" "disk.img.xz /dev/null"; do
		i=$((i + 1))
		# shellcheck disable=SC2086 # split on purpose
		run "$real" copy $args
		assert_rc 0 "real bmaptool copy $args"
		lines_without_time >"$E2E_TMP/real.$i"
		# shellcheck disable=SC2086
		run "$ALIAS" copy $args
		assert_rc 0 "alias copy $args"
		lines_without_time >"$E2E_TMP/alias.$i"
		assert_same_file "$E2E_TMP/real.$i" "$E2E_TMP/alias.$i" \
			"copy $args: lines of the real bmaptool vs the alias"
	done
}

case_ "file DEST" case_file
case_ "--nobmap" case_nobmap
case_ "block device" case_blockdev
case_ "warnings and errors" case_messages
case_ "terminal" case_tty
case_ "real bmaptool" case_real
cases_done "bmaptool's lines, LAVA's regex matched"
