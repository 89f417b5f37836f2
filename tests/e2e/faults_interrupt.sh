# Interrupting bmaptk. SIGINT and SIGTERM mid-copy must stop it within a
# few seconds with exit 130, "interrupted after writing SIZE" (SIZE no more
# than what DEST really holds), and DEST handled: a file the copy created
# removed (and said), a file that existed kept and said incomplete, a block
# device said to hold an incomplete image. Two SIGINTs in a row change
# nothing. After `kill -9` mid-copy the same copy run again gives the image.
# SIGINT/SIGTERM during `create -o X` exits 130 and leaves neither X nor its
# temporary file (an X that existed stays as it was, also after kill -9).
# A copy whose stderr reader goes away (SIGPIPE) or whose terminal hangs up
# (SIGHUP) must not leave a partial file it created without a word: it
# either finishes right or removes DEST.
#
# The image: 1 GiB with 400 MiB mapped (16 ranges of text), as a .xz made
# of 16 concatenated streams; a copy of it takes a few seconds, and each
# signal is sent once DEST holds some data.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd cmp xz du "$PYTHON"

MIB=$((1024 * 1024))
e2e_ramdir R
IMG=$R/disk.img
"$PYTHON" - "$IMG" <<'EOF' || fail "cannot generate the image"
import os
import sys

MIB = 1024 * 1024
part = b"".join(b"line %08d of the interrupted image\n" % i
                for i in range(25 * MIB // 36 + 1))[:25 * MIB]
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, 1024 * MIB)
for i in range(16):
    assert os.pwrite(fd, part, i * 64 * MIB) == len(part)
os.close(fd)
EOF
"$BMAPTK" create "$IMG" -o "$IMG.bmap" 2>"$E2E_TMP/create.err" ||
	fail "bmaptk create: $(cat "$E2E_TMP/create.err")"
head -c $((64 * MIB)) "$IMG" | xz -0 -T0 -c >"$E2E_TMP/part.xz" ||
	fail "xz failed"
for _ in $(seq 16); do cat "$E2E_TMP/part.xz"; done >"$IMG.xz"
OUT=$R/out
mkdir "$OUT"

# start_copy DEST [ARG...]: `bmaptk copy ARG... IMG.xz DEST` in the
# background (BG_PID); stderr in $E2E_TMP/bg.err.
start_copy() {
	local dest=$1
	shift
	"$BMAPTK" copy "$@" "$IMG.xz" "$dest" >"$E2E_TMP/bg.out" \
		2>"$E2E_TMP/bg.err" &
	BG_PID=$!
}

# wait_written DEST BYTES [BLOCKDEV-BACKING]: wait until DEST (or, for a
# loop device, its backing file) has BYTES allocated; fail if bmaptk ended.
wait_written() {
	local f=${3:-$1} i a
	for ((i = 0; i < 500; i++)); do
		a=$(du -B1 "$f" 2>/dev/null | cut -f1)
		[ "${a:-0}" -ge "$2" ] && return 0
		kill -0 "$BG_PID" 2>/dev/null ||
			fail "bmaptk ended before writing $2 bytes: $(cat "$E2E_TMP/bg.err")"
		sleep 0.02
	done
	fail "bmaptk wrote less than $2 bytes into $1 in 10 s"
}

# finish MAX_SECONDS: wait for BG_PID; sets RUN_RC, RUN_OUT, RUN_ERR; fail
# if it took longer than MAX_SECONDS.
finish() {
	local t0=$SECONDS
	RUN_RC=0
	wait "$BG_PID" || RUN_RC=$?
	RUN_OUT=$(cat "$E2E_TMP/bg.out")
	RUN_ERR=$(cat "$E2E_TMP/bg.err")
	((SECONDS - t0 <= $1)) ||
		fail "bmaptk took $((SECONDS - t0)) s to stop (limit $1 s)"
	assert_no_sanitizer "stderr"
}

# interrupted WHAT: exit 130, "interrupted after writing SIZE", no success
# line, nothing on stdout. Sets WRITTEN to SIZE in bytes (rounded down).
interrupted() {
	local size
	assert_rc 130 "$1"
	assert_eq "" "$RUN_OUT" "stdout ($1)"
	assert_not_contains "$RUN_ERR" "copied " "$1"
	assert_not_contains "$RUN_ERR" "ranges verified" "$1"
	size=$(grep -oE 'interrupted after writing [0-9.]+ ?[KMG]?i?B' <<<"$RUN_ERR" |
		head -n 1 | sed 's/interrupted after writing //')
	[ -n "$size" ] ||
		fail "$1: no \"interrupted after writing SIZE\" in [$RUN_ERR]"
	WRITTEN=$("$PYTHON" -c '
import re, sys
m = re.match(r"([0-9.]+) ?([KMG]?)i?B$", sys.argv[1])
print(int(float(m.group(1)) * 1024 ** " KMG".index(m.group(2) or " ")))
' "$size")
	note "$1: interrupted after writing $size"
}

# holds_written DEST WHAT: the first WRITTEN mapped bytes of the image
# (less 1 MiB for the rounding of SIZE) are in DEST: the message did not
# claim more than was written.
holds_written() {
	"$PYTHON" - "$IMG" "$IMG.bmap" "$1" $((WRITTEN - MIB)) <<'EOF' ||
import re
import sys

img, bmap, dest, want = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
text = open(bmap).read()
bs = int(re.search(r"<BlockSize>\s*(\d+)", text).group(1))
with open(img, "rb") as a, open(dest, "rb") as b:
    for m in re.finditer(r"<Range[^>]*>\s*(\d+)(?:\s*-\s*(\d+))?\s*</Range>",
                         text):
        if want <= 0:
            break
        first = int(m.group(1))
        last = int(m.group(2) or first)
        off, n = first * bs, min((last - first + 1) * bs, want)
        a.seek(off)
        b.seek(off)
        if a.read(n) != b.read(n):
            sys.exit("%s differs from the image within bytes %d-%d"
                     % (dest, off, off + n - 1))
        want -= n
EOF
		fail "$2: the message says more was written than DEST holds"
}

# --- SIGINT, SIGTERM, twice SIGINT mid-copy --------------------------------
sigint_new() {
	local d=$OUT/new
	start_copy "$d"
	wait_written "$d" $((8 * MIB))
	kill -INT "$BG_PID"
	finish 5
	interrupted "SIGINT, new DEST"
	((WRITTEN >= 7 * MIB)) ||
		fail "SIGINT: reports $WRITTEN bytes written, DEST held 8 MiB"
	assert_contains "$RUN_ERR" "error: $d: removed the partially written file" \
		"SIGINT, new DEST"
	assert_no_file "$d" "SIGINT, new DEST"
}
case_ "SIGINT, new DEST" sigint_new

sigterm_existing() {
	local d=$OUT/old
	printf 'old contents\n' >"$d"
	start_copy "$d"
	wait_written "$d" $((8 * MIB))
	kill -TERM "$BG_PID"
	finish 5
	interrupted "SIGTERM, existing DEST"
	assert_contains "$RUN_ERR" "$d: the file is incomplete (it existed before this copy, so it was kept)" \
		"SIGTERM, existing DEST"
	[ -f "$d" ] || fail "SIGTERM: the pre-existing $d is gone"
	holds_written "$d" "SIGTERM, existing DEST"
	rm -f "$d"
}
case_ "SIGTERM, existing DEST" sigterm_existing

sigint_twice() {
	local d=$OUT/twice
	start_copy "$d"
	wait_written "$d" $((8 * MIB))
	kill -INT "$BG_PID"
	kill -INT "$BG_PID" 2>/dev/null
	sleep 0.05
	kill -INT "$BG_PID" 2>/dev/null
	finish 5
	interrupted "SIGINT twice"
	assert_contains "$RUN_ERR" "error: $d: removed the partially written file" \
		"SIGINT twice"
	assert_no_file "$d" "SIGINT twice"
}
case_ "SIGINT twice" sigint_twice

# --- a block device ---------------------------------------------------------
sigint_blockdev() {
	local back=$R/loop.back dev
	if [ "$(id -u)" != 0 ] || ! command -v losetup >/dev/null ||
		[ "${E2E_NO_LOOP:-0}" = 1 ]; then
		skip_case "SIGINT onto a block device: needs root and losetup"
		return 0
	fi
	truncate -s 1G "$back"
	# Detached when the case ends (case_ runs on_exit then).
	if ! e2e_losetup dev "$back"; then
		skip_case "SIGINT onto a block device: no free loop device"
		return 0
	fi
	start_copy "$dev"
	wait_written "$dev" $((8 * MIB)) "$back"
	kill -INT "$BG_PID"
	finish 5
	interrupted "SIGINT, block device"
	assert_contains "$RUN_ERR" "error: $dev: the device holds an incomplete image" \
		"SIGINT, block device"
	holds_written "$dev" "SIGINT, block device"
}
case_ "SIGINT onto a block device" sigint_blockdev

# --- kill -9, then the same copy again ---------------------------------------
kill9_again() {
	local d=$OUT/k9
	start_copy "$d"
	wait_written "$d" $((16 * MIB))
	kill -KILL "$BG_PID"
	finish 5
	assert_rc 137 "kill -9"
	[ -f "$d" ] || fail "kill -9: no DEST left (nothing could remove it)"
	run "$BMAPTK" copy "$IMG.xz" "$d"
	assert_rc 0 "the same copy after kill -9"
	assert_same_file "$IMG" "$d" "DEST copied again after kill -9"
	rm -f "$d"
}
case_ "kill -9, then copy again" kill9_again

# --- create -o X --------------------------------------------------------------
# start_create X: `bmaptk create IMG -o X` in the background; returns once
# it hashes (its worker threads run, so its signal handlers are set).
start_create() {
	local i
	"$BMAPTK" create "$IMG" -o "$1" >"$E2E_TMP/bg.out" \
		2>"$E2E_TMP/bg.err" &
	BG_PID=$!
	for ((i = 0; i < 2000; i++)); do
		# shellcheck disable=SC2012 # numeric names
		[ "$(ls "/proc/$BG_PID/task" 2>/dev/null | wc -l)" -gt 1 ] &&
			return 0
		kill -0 "$BG_PID" 2>/dev/null || break
	done
	fail "bmaptk create never started hashing: $(cat "$E2E_TMP/bg.err")"
}

create_signals() {
	local dir=$OUT/create x
	mkdir "$dir"
	x=$dir/new.bmap
	start_create "$x"
	kill -INT "$BG_PID"
	finish 5
	assert_rc 130 "create, SIGINT"
	assert_contains "$RUN_ERR" "interrupted after hashing" "create, SIGINT"
	assert_contains "$RUN_ERR" "no bmap written" "create, SIGINT"
	assert_dir_entries "$dir" "" "create, SIGINT: neither X nor a temporary file"
	# SIGTERM: an X that existed stays as it was.
	x=$dir/old.bmap
	old='<?xml version="1.0" ?><bmap version="2.0"><!-- old --></bmap>'
	printf '%s\n' "$old" >"$x"
	start_create "$x"
	kill -TERM "$BG_PID"
	finish 5
	assert_rc 130 "create, SIGTERM"
	assert_eq "$old" "$(cat "$x")" "create, SIGTERM: the old X"
	assert_dir_entries "$dir" "old.bmap" "create, SIGTERM: no temporary file"
	# kill -9 cannot clean up its temporary file, but X is never partial.
	start_create "$x"
	kill -KILL "$BG_PID"
	finish 5
	assert_rc 137 "create, kill -9"
	assert_eq "$old" "$(cat "$x")" "create, kill -9: the old X"
	rm -rf "$dir"
}
case_ "create interrupted" create_signals

# --- stderr's reader gone, terminal hung up --------------------------------
# Not documented signals, but the promise stands: a file the copy created
# is never left half-written without a word. So DEST is either the whole
# image or gone.
no_silent_partial() { # WHAT DEST
	if [ -e "$2" ]; then
		cmp -s "$IMG" "$2" ||
			fail "$1: bmaptk exited $RUN_RC (128 + signal $((RUN_RC - 128))?) and left behind the partial $2 that it created; stderr: [$RUN_ERR]"
	elif [ "$RUN_RC" = 0 ]; then
		fail "$1: exit 0 but no $2"
	fi
	rm -f "$2"
}

sigpipe() {
	local d=$OUT/pipe
	rm -f "$E2E_TMP/errfifo"
	mkfifo "$E2E_TMP/errfifo"
	: >"$E2E_TMP/bg.err" # stderr goes to the FIFO, unread
	"$BMAPTK" copy "$IMG.xz" "$d" >"$E2E_TMP/bg.out" 2>"$E2E_TMP/errfifo" &
	BG_PID=$!
	exec 8<"$E2E_TMP/errfifo"
	wait_written "$d" $((8 * MIB))
	exec 8<&- # the reader of stderr goes away
	finish 30
	no_silent_partial "stderr closed (SIGPIPE)" "$d"
}
case_ "stderr reader gone" sigpipe

sighup() {
	local d=$OUT/hup
	start_copy "$d"
	wait_written "$d" $((8 * MIB))
	kill -HUP "$BG_PID"
	finish 30
	no_silent_partial "SIGHUP" "$d"
}
case_ "SIGHUP" sighup

cases_done "all interruption cases passed"
