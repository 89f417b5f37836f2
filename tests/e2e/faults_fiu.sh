# `bmaptk copy` under injected I/O faults (libfiu's POSIX preload library,
# Debian packages fiu-utils and libfiu0): pwrite failing with EIO and with
# ENOSPC, from the first write and mid-copy; short writes and short reads
# (which must be harmless); read() failing on the bmap, on the image and
# on stdin mid-copy; fsync, open, ftruncate and unlink failing. Every
# failure must exit 3 with one error line naming the file (and the offset
# for reads and writes), never print the "copied" summary, never crash,
# and leave DEST right: a file the copy created is removed and that is
# said; a file that existed is kept and said incomplete.
#
# Faults mid-copy land at a chosen point, not at random: the image comes
# on stdin through a FIFO that the test feeds in two parts; between them
# it waits until bmaptk has written the first ranges and is blocked
# reading stdin, then turns the fault on through libfiu's control FIFO
# (fiu-ctrl). libfiu wraps pwrite64/pread64/open64 under the names
# posix/io/rw/pwrite, posix/io/rw/pread and posix/io/oc/open.
#
# With an ASan build the sanitizer runtime must come first in LD_PRELOAD,
# so the test sets libfiu's environment itself (what fiu-run does) with
# libasan in front, and suppresses a leak report of libfiu's own.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd fiu-ctrl cmp mkfifo du "$PYTHON"

FIU_LIBDIR=${FIU_LIBDIR:-/usr/lib/fiu}
for f in fiu_run_preload.so fiu_posix_preload.so; do
	[ -f "$FIU_LIBDIR/$f" ] ||
		skip "$FIU_LIBDIR/$f is missing (Debian package libfiu0)"
done
PRELOAD="$FIU_LIBDIR/fiu_run_preload.so $FIU_LIBDIR/fiu_posix_preload.so"
LSAN=${LSAN_OPTIONS:-}
if ldd "$BMAPTK" 2>/dev/null | grep -q 'libasan'; then
	asan=$(ldd "$BMAPTK" | awk '/libasan/ { print $3; exit }')
	[ -f "$asan" ] || skip "cannot find the ASan runtime of $BMAPTK"
	PRELOAD="$asan $PRELOAD"
	printf 'leak:fiu_run_preload.so\nleak:libfiu.so\n' >"$E2E_TMP/lsan.supp"
	LSAN="suppressions=$E2E_TMP/lsan.supp:print_suppressions=0${LSAN:+:$LSAN}"
	note "ASan build: preloading $asan before libfiu's libraries"
fi

MIB=$((1024 * 1024))
e2e_ramdir R
IMG=$R/img.raw
fault_image "$IMG" 20241126
OUT=$R/out
mkdir "$OUT"

# fiu_env ENABLE CMD...: run CMD under libfiu with the failure points
# ENABLE (newline-separated fiu-ctrl commands) on from the start, and
# no remote control.
fiu_env() {
	local enable=$1
	shift
	FIU_ENABLE=$enable FIU_CTRL_FIFO="" LD_PRELOAD=$PRELOAD \
		LSAN_OPTIONS=$LSAN "$@"
}

# check_clean: RUN_ERR has no sanitizer report, no success line; stdout
# is empty.
check_clean() {
	assert_eq "" "$RUN_OUT" "stdout ($1)"
	assert_no_sanitizer "$1"
	assert_not_contains "$RUN_ERR" "copied " "$1"
	assert_not_contains "$RUN_ERR" "ranges verified" "$1"
}

# fiu_copy ENABLE ARG...: `bmaptk copy ARG...` under libfiu; sets RUN_*.
fiu_copy() {
	local enable=$1
	shift
	run fiu_env "$enable" "$BMAPTK" copy "$@"
}

# one_error WHAT REGEX: exactly one error line matches REGEX (extended),
# and no other error line is there except the DEST state line.
one_error() {
	local n
	n=$(grep -cE "^bmaptk: error: $2\$" <<<"$RUN_ERR")
	[ "$n" = 1 ] || fail "$1: expected one error line matching [$2], got: [$RUN_ERR]"
	n=$(grep 'error:' <<<"$RUN_ERR" | grep -cvE "$2|removed the partially written file|the file is incomplete|holds an incomplete image")
	[ "$n" = 0 ] || fail "$1: unexpected error lines in [$RUN_ERR]"
}

# removed DEST WHAT: DEST was created by the copy, so it must be gone and
# stderr must say so.
removed() {
	assert_contains "$RUN_ERR" "error: $1: removed the partially written file" "$2"
	assert_no_file "$1" "$2"
}

# kept DEST WHAT: DEST existed, so it must still be there, said incomplete.
kept() {
	assert_contains "$RUN_ERR" "$1: the file is incomplete (it existed before this copy, so it was kept)" "$2"
	[ -f "$1" ] || fail "$2: the pre-existing $1 is gone"
}

# offset_in WHAT LO HI [ALIGN]: the offset in the error line "error at
# offset N" is within [LO, HI] (and a multiple of ALIGN, default 1).
offset_in() {
	local off
	off=$(sed -n 's/.*error at offset \([0-9]*\):.*/\1/p' <<<"$RUN_ERR" | head -n 1)
	[ -n "$off" ] || fail "$1: no offset in [$RUN_ERR]"
	((off >= $2 && off <= $3 && off % ${4:-1} == 0)) ||
		fail "$1: offset $off not within [$2, $3] or not a multiple of ${4:-1}"
	note "$1: failed at offset $off"
}

# --- the harness itself: no fault, the copy works under the preload ------
D=$OUT/d
fiu_copy "" "$IMG" "$D"
[ "$RUN_RC" = 0 ] ||
	skip "bmaptk does not run under libfiu's preload (exit $RUN_RC): $RUN_ERR"
assert_same_file "$IMG" "$D" "copy under libfiu without faults"
rm -f "$D"

EIO=5 ENOSPC=28 EACCES=13

# --- faults from the first call -----------------------------------------
pwrite_eio() {
	fiu_copy "enable name=posix/io/rw/pwrite,failinfo=$EIO" "$IMG" "$D"
	assert_rc 3 "pwrite EIO"
	check_clean "pwrite EIO"
	one_error "pwrite EIO" "$D: write error at offset 0: Input/output error"
	removed "$D" "pwrite EIO"
	# An existing file: kept, said incomplete.
	printf 'old contents\n' >"$D"
	fiu_copy "enable name=posix/io/rw/pwrite,failinfo=$EIO" "$IMG" "$D"
	assert_rc 3 "pwrite EIO, existing DEST"
	check_clean "pwrite EIO, existing DEST"
	one_error "pwrite EIO, existing DEST" "$D: write error at offset 0: Input/output error"
	kept "$D" "pwrite EIO, existing DEST"
	rm -f "$D"
}
case_ "pwrite EIO" pwrite_eio

pwrite_enospc() {
	fiu_copy "enable name=posix/io/rw/pwrite,failinfo=$ENOSPC" "$IMG" "$D"
	assert_rc 3 "pwrite ENOSPC"
	check_clean "pwrite ENOSPC"
	one_error "pwrite ENOSPC" "$D: write error at offset 0: No space left on device"
	removed "$D" "pwrite ENOSPC"
}
case_ "pwrite ENOSPC" pwrite_enospc

# Every write and every read shortened (libfiu's .../reduce points): the
# copy must loop over short transfers and still be exact.
short_io() {
	fiu_copy "enable name=posix/io/rw/pwrite/reduce" "$IMG" "$D"
	assert_rc 0 "short writes"
	assert_same_file "$IMG" "$D" "copy with short writes"
	rm -f "$D"
	fiu_copy "enable name=posix/io/rw/read/reduce" "$IMG" "$D"
	assert_rc 0 "short reads"
	assert_same_file "$IMG" "$D" "copy with short reads"
	rm -f "$D"
	fiu_copy "enable name=posix/io/rw/read/reduce" --bmap "$IMG.bmap" - \
		"$D" <"$IMG"
	assert_rc 0 "short reads on stdin"
	assert_same_file "$IMG" "$D" "copy from stdin with short reads"
	rm -f "$D"
}
case_ "short reads and writes" short_io

# read() failing: the bmap is the first file read; nothing is created.
# Without a bmap the image is the first file read.
read_eio() {
	fiu_copy "enable name=posix/io/rw/read,failinfo=$EIO" "$IMG" "$D"
	assert_rc 3 "read EIO on the bmap"
	check_clean "read EIO on the bmap"
	one_error "read EIO on the bmap" "$IMG.bmap: read error at offset 0: Input/output error"
	assert_no_file "$D" "read EIO on the bmap"
	fiu_copy "enable name=posix/io/rw/read,failinfo=$EIO" --nobmap "$IMG" "$D"
	assert_rc 3 "read EIO on the image"
	check_clean "read EIO on the image"
	one_error "read EIO on the image" "$IMG: read error at offset 0: Input/output error"
	assert_no_file "$D" "read EIO on the image"
}
case_ "read EIO" read_eio

# open() failing: the bmap is the first file opened.
open_eacces() {
	fiu_copy "enable name=posix/io/oc/open,failinfo=$EACCES" "$IMG" "$D"
	assert_rc 3 "open EACCES"
	check_clean "open EACCES"
	one_error "open EACCES" "$IMG.bmap: cannot open: Permission denied"
	assert_no_file "$D" "open EACCES"
}
case_ "open EACCES" open_eacces

# fsync failing at the end: everything was written, but the data may not
# be on the medium, so it is a failure.
fsync_eio() {
	fiu_copy "enable name=posix/io/sync/fsync,failinfo=$EIO" "$IMG" "$D"
	assert_rc 3 "fsync EIO"
	check_clean "fsync EIO"
	one_error "fsync EIO" "$D: cannot flush to disk: Input/output error"
	removed "$D" "fsync EIO"
	cp "$IMG" "$D"
	fiu_copy "enable name=posix/io/sync/fsync,failinfo=$EIO" "$IMG" "$D"
	assert_rc 3 "fsync EIO, existing DEST"
	check_clean "fsync EIO, existing DEST"
	one_error "fsync EIO, existing DEST" "$D: cannot flush to disk: Input/output error"
	kept "$D" "fsync EIO, existing DEST"
	rm -f "$D"
}
case_ "fsync EIO" fsync_eio

# ftruncate failing when DEST is sized: nothing written. A created file
# is removed; an existing one is left as it was.
ftruncate_eio() {
	fiu_copy "enable name=posix/io/rw/ftruncate,failinfo=$EIO" "$IMG" "$D"
	assert_rc 3 "ftruncate EIO"
	check_clean "ftruncate EIO"
	# The image's size is set first, so that nothing old is lost when it
	# cannot be.
	one_error "ftruncate EIO" "$D: cannot set the size to $(stat -c %s "$IMG") bytes: Input/output error"
	assert_no_file "$D" "ftruncate EIO"
	cp "$IMG.bmap" "$D"
	fiu_copy "enable name=posix/io/rw/ftruncate,failinfo=$EIO" "$IMG" "$D"
	assert_rc 3 "ftruncate EIO, existing DEST"
	check_clean "ftruncate EIO, existing DEST"
	assert_same_file "$IMG.bmap" "$D" "existing DEST after ftruncate EIO"
	rm -f "$D"
}
case_ "ftruncate EIO" ftruncate_eio

# The created DEST cannot be removed after a failed write (unlink fails):
# stderr must not claim it was removed, nor that it existed before; it
# must say that the partial file could not be removed.
unlink_fails() {
	fiu_copy "enable name=posix/io/rw/pwrite,failinfo=$EIO
enable name=posix/io/dir/unlink,failinfo=$EACCES" "$IMG" "$D"
	assert_rc 3 "pwrite EIO, unlink EACCES"
	check_clean "pwrite EIO, unlink EACCES"
	[ -f "$D" ] || fail "pwrite EIO, unlink EACCES: $D vanished"
	rm -f "$D"
	assert_not_contains "$RUN_ERR" "removed the partially written file" \
		"pwrite EIO, unlink EACCES"
	assert_not_contains "$RUN_ERR" "existed before" \
		"pwrite EIO, unlink EACCES (the file was created by this copy)"
	grep -qE "$D: .*(cannot|could not) (be )?remove" <<<"$RUN_ERR" ||
		fail "pwrite EIO, unlink EACCES: no message that $D could not be removed: [$RUN_ERR]"
}
case_ "created DEST cannot be removed" unlink_fails

# --- faults mid-copy -------------------------------------------------------
# gated POINT FAILINFO FEED ALLOC DEST [COPY-ARG...]: copy the image from
# stdin into DEST; feed its first FEED bytes, wait until DEST holds at
# least ALLOC bytes and bmaptk waits on stdin, turn POINT on (errno
# FAILINFO), feed the rest. Sets RUN_*.
gated() {
	local point=$1 info=$2 feed=$3 alloc=$4 dest=$5 pid i ok=0 a sc
	shift 5
	rm -f "$E2E_TMP/in"
	mkfifo "$E2E_TMP/in" || fail "mkfifo"
	# env execs bmaptk in the background child: $! is bmaptk's pid.
	env FIU_ENABLE= FIU_CTRL_FIFO="$E2E_TMP/fiu" LD_PRELOAD="$PRELOAD" \
		LSAN_OPTIONS="$LSAN" "$BMAPTK" copy --bmap "$IMG.bmap" "$@" - \
		"$dest" <"$E2E_TMP/in" >"$E2E_TMP/run.out" 2>"$E2E_TMP/run.err" &
	pid=$!
	exec 9>"$E2E_TMP/in"
	((feed == 0)) || head -c "$feed" "$IMG" >&9
	for ((i = 0; i < 500; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		a=$(du -B1 "$dest" 2>/dev/null | cut -f1)
		sc=$(cat "/proc/$pid/syscall" 2>/dev/null)
		# read(0, ...) on the main thread: blocked on stdin.
		if [ "${a:-0}" -ge "$alloc" ] && [ "${sc%% *}" = 0 ] &&
			[ "$(cut -d' ' -f2 <<<"$sc")" = 0x0 ] &&
			[ -p "$E2E_TMP/fiu-$pid.in" ]; then
			ok=1
			break
		fi
		sleep 0.02
	done
	if ((ok)); then
		fiu-ctrl -f "$E2E_TMP/fiu" -c "enable name=$point,failinfo=$info" \
			"$pid" || fail "fiu-ctrl could not reach bmaptk ($pid)"
	fi
	tail -c +$((feed + 1)) "$IMG" >&9 2>/dev/null
	exec 9>&-
	RUN_RC=0
	wait "$pid" || RUN_RC=$?
	RUN_OUT=$(cat "$E2E_TMP/run.out")
	RUN_ERR=$(cat "$E2E_TMP/run.err")
	((ok)) || fail "$point: bmaptk never waited on stdin with $alloc bytes in $dest (exit $RUN_RC): [$RUN_ERR]"
}

# 24 MiB fed: ranges 1 and 2 (13 MiB) written, range 3 begun at 20 MiB.
FEED=$((24 * MIB))
mid_pwrite() {
	gated posix/io/rw/pwrite "$ENOSPC" "$FEED" $((13 * MIB)) "$D"
	assert_rc 3 "pwrite ENOSPC mid-copy"
	check_clean "pwrite ENOSPC mid-copy"
	one_error "pwrite ENOSPC mid-copy" "$D: write error at offset [0-9]+: No space left on device"
	offset_in "pwrite ENOSPC mid-copy" $((20 * MIB)) "$FEED" 4096
	removed "$D" "pwrite ENOSPC mid-copy"
	printf 'old contents\n' >"$D"
	gated posix/io/rw/pwrite "$EIO" "$FEED" $((13 * MIB)) "$D"
	assert_rc 3 "pwrite EIO mid-copy, existing DEST"
	check_clean "pwrite EIO mid-copy, existing DEST"
	one_error "pwrite EIO mid-copy, existing DEST" "$D: write error at offset [0-9]+: Input/output error"
	offset_in "pwrite EIO mid-copy, existing DEST" $((20 * MIB)) "$FEED" 4096
	kept "$D" "pwrite EIO mid-copy, existing DEST"
	rm -f "$D"
}
case_ "pwrite ENOSPC/EIO mid-copy" mid_pwrite

# The source fails: stdin's read() gives EIO once FEED bytes are in (the
# read already waiting when the fault is turned on still gets data).
mid_read() {
	gated posix/io/rw/read "$EIO" "$FEED" $((13 * MIB)) "$D"
	assert_rc 3 "read EIO mid-copy"
	check_clean "read EIO mid-copy"
	one_error "read EIO mid-copy" "\\(stdin\\): read error at offset [0-9]+: Input/output error"
	offset_in "read EIO mid-copy" "$FEED" $((FEED + 4 * MIB))
	removed "$D" "read EIO mid-copy"
}
case_ "read EIO mid-copy" mid_read

# DEST's open fails once the bmap is read and the image probe waits on
# stdin. EACCES (as from a directory that cannot be searched): a new DEST
# is not created, an existing one stays as it was.
mid_open() {
	gated posix/io/oc/open "$EACCES" 0 0 "$D"
	assert_rc 3 "open DEST EACCES"
	check_clean "open DEST EACCES"
	one_error "open DEST EACCES" "cannot create $D: Permission denied"
	assert_no_file "$D" "open DEST EACCES"
	cp "$IMG.bmap" "$D"
	gated posix/io/oc/open "$EACCES" 0 0 "$D"
	assert_rc 3 "open DEST EACCES, existing DEST"
	check_clean "open DEST EACCES, existing DEST"
	one_error "open DEST EACCES, existing DEST" "cannot (create|open) $D: Permission denied"
	assert_same_file "$IMG.bmap" "$D" "existing DEST whose open failed"
	rm -f "$D"
}
case_ "open of DEST fails" mid_open

cases_done "all libfiu cases passed"
