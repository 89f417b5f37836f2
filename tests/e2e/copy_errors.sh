# `bmaptk copy` failures: exact exit codes (1 checksum, 2 bad input or
# usage, 3 I/O, 130 interrupted), a one-line message naming the file and the
# problem, nothing on stdout, and what is left behind: a destination file
# the copy created is removed, a pre-existing one is kept and said to be
# incomplete. Covers a corrupt image, truncated gzip/xz/bzip2/zstd input,
# bad bmaps, bad arguments, SIGINT/SIGTERM during a copy and while stdin
# stalls, and the psplash progress pipe.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd bmaptool cmp gzip xz bzip2 zstd mkfifo "$PYTHON"

MIB=$((1024 * 1024))
D=$E2E_TMP/d
mkdir "$D"
IMG=$D/img
SIZE=$((8 * MIB + 1234))
"$PYTHON" - "$IMG" "$SIZE" <<'EOF' || fail "cannot generate the image"
import os
import random
import sys

MIB = 1024 * 1024
rng = random.Random(20240614)
path, size = sys.argv[1], int(sys.argv[2])
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, size)
for off, n in [(0, 700000), (3 * MIB, 900000), (size - 5000, 5000)]:
    assert os.pwrite(fd, rng.randbytes(n), off) == n
os.fsync(fd)
os.close(fd)
EOF
bmaptool create "$IMG" -o "$IMG.bmap" 2>"$E2E_TMP/bmaptool.err" ||
	fail "bmaptool create: $(cat "$E2E_TMP/bmaptool.err")"
# Block 768 (3 MiB) starts the second range.
R2=$(grep -o '> *768-[0-9]* *<' "$IMG.bmap" | tr -d '<> ')
[ -n "$R2" ] || fail "no range starting at block 768 in $IMG.bmap"

gzip -c "$IMG" >"$IMG.gz" && xz -1 -c "$IMG" >"$IMG.xz" &&
	bzip2 -1 -c "$IMG" >"$IMG.bz2" && zstd -q -c "$IMG" >"$IMG.zst" ||
	fail "cannot compress the image"

# One flipped byte inside the second range, bmap found by name (bad.bmap).
BAD=$D/bad
cp "$IMG" "$BAD"
cp "$IMG.bmap" "$BAD.bmap"
printf '\x00\xff' | dd of="$BAD" bs=1 seek=$((3 * MIB + 4321)) conv=notrunc \
	status=none
cmp -s "$IMG" "$BAD" && fail "cannot corrupt the image"

mismatch_new() {
	local out=$E2E_TMP/new
	bm 1 copy "$BAD" "$out"
	assert_contains "$RUN_ERR" "$BAD: checksum mismatch for blocks $R2 " \
		"mismatch message"
	assert_contains "$RUN_ERR" "$out: removed the partially written file" \
		"mismatch message"
	assert_no_file "$out" "destination of a failed copy"
	# Compressed, the same.
	gzip -c "$BAD" >"$D/bad.gz"
	bm 1 copy "$D/bad.gz" "$out"
	assert_contains "$RUN_ERR" "checksum mismatch for blocks $R2 " \
		"mismatch message (gzip)"
	assert_no_file "$out" "destination of a failed copy (gzip)"
}
case_ "checksum mismatch, new file" mismatch_new

mismatch_existing() {
	local out=$E2E_TMP/existing
	echo "old contents" >"$out"
	bm 1 copy "$BAD" "$out"
	assert_contains "$RUN_ERR" "checksum mismatch for blocks $R2 " \
		"mismatch message"
	assert_contains "$RUN_ERR" "$out: the file is incomplete" \
		"mismatch message"
	assert_not_contains "$RUN_ERR" "removed" "mismatch message"
	[ -f "$out" ] || fail "the pre-existing $out was removed"
}
case_ "checksum mismatch, existing file" mismatch_existing

mismatch_no_verify() { # --no-verify writes the corrupt image as it is
	local out=$E2E_TMP/noverify
	bm 0 copy --no-verify "$BAD" "$out"
	assert_same_file "$BAD" "$out" "--no-verify copy"
}
case_ "--no-verify copies a corrupt image" mismatch_no_verify

# Compressed files cut in half: an error naming the file, nothing left.
truncated_half() {
	local c f out=$E2E_TMP/trunc
	for c in gz xz bz2 zst; do
		f=$D/half.img.$c
		head -c $(($(stat -c %s "$IMG.$c") / 2)) "$IMG.$c" >"$f"
		bm 2 copy --bmap "$IMG.bmap" "$f" "$out"
		assert_contains "$RUN_ERR" "$f: " "truncated .$c"
		assert_contains "$RUN_ERR" "truncated" "truncated .$c"
		assert_no_file "$out" "destination of a truncated .$c"
		# Through a pipe, the same.
		bm 2 copy --bmap "$IMG.bmap" - "$out" < <(cat "$f")
		assert_contains "$RUN_ERR" "truncated" "truncated .$c on stdin"
		assert_no_file "$out" "destination of a truncated .$c on stdin"
	done
}
case_ "truncated compressed input" truncated_half

truncated_raw() { # a raw image shorter than its bmap says
	local out=$E2E_TMP/rawtrunc
	head -c $((SIZE - 100)) "$IMG" >"$D/short"
	cp "$IMG.bmap" "$D/short.bmap"
	bm 2 copy "$D/short" "$out"
	assert_contains "$RUN_ERR" \
		"$D/short: the image has $((SIZE - 100)) bytes, but the bmap maps data up to byte $SIZE" \
		"short raw image"
	assert_no_file "$out" "destination of a short raw image"
}
case_ "truncated raw image" truncated_raw

# A well-formed compressed image (and a pipe) that decodes to fewer bytes
# than the bmap maps: known only mid-copy, so the created DEST is removed.
short_compressed() {
	local out=$E2E_TMP/shortz
	head -c $((SIZE - 100)) "$IMG" | gzip -c >"$D/short.img.gz"
	bm 2 copy --bmap "$IMG.bmap" "$D/short.img.gz" "$out"
	assert_contains "$RUN_ERR" \
		"$D/short.img.gz: the image ends at byte $((SIZE - 100)), before the bmap says it does" \
		"short compressed image"
	assert_contains "$RUN_ERR" "$out: removed the partially written file" \
		"short compressed image"
	assert_no_file "$out" "destination of a short compressed image"
	bm 2 copy --bmap "$IMG.bmap" - "$out" < <(head -c $((SIZE - 100)) "$IMG")
	assert_contains "$RUN_ERR" "before the bmap says it does" "short stdin"
	assert_no_file "$out" "destination of a short stdin image"
}
case_ "compressed image shorter than its bmap" short_compressed

# A bmap is read whole, so one over 256 MiB is refused before anything
# else (a sparse file after a bmap's first line: it costs no disk; a file
# that does not start like a bmap is said not to be one, see messages.sh).
bmap_too_big() {
	printf '<?xml version="1.0" ?>\n<bmap version="2.0">\n' >"$D/huge.bmap"
	truncate -s $((256 * 1024 * 1024 + 1)) "$D/huge.bmap"
	bm 2 copy --bmap "$D/huge.bmap" "$IMG" "$E2E_TMP/hugeout"
	assert_contains "$RUN_ERR" "$D/huge.bmap: " "oversized bmap"
	assert_contains "$RUN_ERR" "larger than 268435456 bytes" "oversized bmap"
	assert_no_file "$E2E_TMP/hugeout" "destination with an oversized bmap"
}
case_ "bmap over 256 MiB" bmap_too_big

dest_dir_missing() {
	bm 3 copy --bmap "$IMG.bmap" "$IMG" "$E2E_TMP/no/such/dir/out"
	assert_contains "$RUN_ERR" \
		"cannot create $E2E_TMP/no/such/dir/out: No such file or directory" \
		"missing directory"
}
case_ "destination in a missing directory" dest_dir_missing

# The bmap's own checksum: one hex digit of BmapFileChecksum changed; the
# tool treats it as data that does not verify (exit 1).
bmap_self_checksum() {
	local out=$E2E_TMP/selfsum
	"$PYTHON" - "$IMG.bmap" "$D/wrong.bmap" <<'EOF' ||
import re
import sys

text = open(sys.argv[1]).read()
m = re.search(r"<BmapFileChecksum>\s*([0-9a-f])", text)
digit = "1" if m.group(1) == "0" else "0"
open(sys.argv[2], "w").write(text[:m.start(1)] + digit + text[m.end(1):])
EOF
		fail "cannot edit the bmap"
	cmp -s "$IMG.bmap" "$D/wrong.bmap" && fail "cannot edit the bmap"
	bm 1 copy --bmap "$D/wrong.bmap" "$IMG" "$out"
	assert_contains "$RUN_ERR" \
		"$D/wrong.bmap: checksum mismatch for the bmap file" \
		"bad bmap checksum"
	assert_no_file "$out" "destination with a bad bmap"
	# A bmap of an unknown major version is refused.
	sed 's/version="2.0"/version="3.0"/' "$IMG.bmap" >"$D/v3.bmap"
	bm 2 copy --bmap "$D/v3.bmap" "$IMG" "$out"
	assert_contains "$RUN_ERR" "$D/v3.bmap: bmap format version 3.0" \
		"bmap version 3.0"
	assert_no_file "$out" "destination with a version 3.0 bmap"
}
case_ "bmap checksum and version" bmap_self_checksum

usage_errors() {
	local out=$E2E_TMP/usage
	gzip -c "$IMG" >"$D/lonely.gz"
	bm 2 copy "$D/lonely.gz" "$out"
	assert_contains "$RUN_ERR" "$D/lonely.gz: bmap file not found" \
		"missing bmap"
	bm 2 copy --bmap "$D/nothere.bmap" "$IMG" "$out"
	assert_contains "$RUN_ERR" "$D/nothere.bmap: cannot open bmap file" \
		"--bmap of a missing file"
	bm 2 copy --nobmap --bmap "$IMG.bmap" "$IMG" "$out"
	assert_contains "$RUN_ERR" "--nobmap and --bmap cannot be used together" \
		"--nobmap --bmap"
	bm 2 copy - "$out" </dev/null
	assert_contains "$RUN_ERR" "needs --bmap" "stdin without --bmap"
	bm 2 copy "$IMG"
	assert_contains "$RUN_ERR" "expected IMAGE and DEST" "one argument"
	bm 2 copy --no-such-option "$IMG" "$out"
	assert_contains "$RUN_ERR" "--no-such-option" "unknown option"
	# The bmap given as the image, named or found.
	bm 2 copy "$IMG.bmap" "$out" --bmap "$IMG.bmap"
	assert_contains "$RUN_ERR" "$IMG.bmap: this is " "bmap as the image"
	assert_contains "$RUN_ERR" " bmap file, not " "bmap as the image"
	bm 2 copy "$IMG.bmap" "$out"
	assert_contains "$RUN_ERR" "$IMG.bmap: this is " \
		"bmap as the image, found by name"
	assert_contains "$RUN_ERR" " bmap file, not " \
		"bmap as the image, found by name"
	assert_no_file "$out" "destination after usage errors"
}
case_ "usage errors" usage_errors

# A 1 GiB image with 400 MiB mapped: sixteen 64 MiB parts, each 25 MiB of
# text then a hole, compressed once as one xz stream and concatenated, so
# the copy lasts long enough to be interrupted mid-way.
make_big() {
	BIG=$E2E_TMP/big/disk.img
	mkdir -p "$E2E_TMP/big"
	"$PYTHON" - "$BIG" <<'EOF' || fail "cannot generate the big image"
import os
import sys

MIB = 1024 * 1024
part = b"".join(b"line %08d of the interrupted image\n" % i
                for i in range(25 * MIB // 36 + 1))[:25 * MIB]
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, 1024 * MIB)
for i in range(16):
    assert os.pwrite(fd, part, i * 64 * MIB) == len(part)
os.fsync(fd)
os.close(fd)
EOF
	bmaptool create "$BIG" -o "$E2E_TMP/big/disk.img.bmap" \
		2>"$E2E_TMP/bmaptool.err" ||
		fail "bmaptool create: $(cat "$E2E_TMP/bmaptool.err")"
	head -c $((64 * MIB)) "$BIG" | xz -0 -T0 -c >"$E2E_TMP/part.xz" ||
		fail "xz failed"
	for _ in $(seq 16); do cat "$E2E_TMP/part.xz"; done >"$BIG.xz"
}

# interrupt SIG OUT: copy the big image into OUT in the background, send SIG
# once it has written 8 MiB, and check it stops within 5 s with exit 130.
interrupt() {
	local sig=$1 out=$2 pid t0 rc=0
	"$BMAPTK" copy "$BIG.xz" "$out" >"$E2E_TMP/int.out" \
		2>"$E2E_TMP/int.err" &
	pid=$!
	# Signal once 8 MiB are written (file blocks count delayed allocation).
	for _ in $(seq 400); do
		[ -f "$out" ] && [ "$(stat -c %b "$out")" -ge 16384 ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.02
	done
	kill "-$sig" "$pid" 2>/dev/null || fail "bmaptk exited before SIG$sig"
	t0=$(date +%s)
	wait "$pid" || rc=$?
	RUN_RC=$rc
	RUN_OUT=$(cat "$E2E_TMP/int.out")
	RUN_ERR=$(cat "$E2E_TMP/int.err")
	[ $(($(date +%s) - t0)) -le 5 ] ||
		fail "SIG$sig: bmaptk took $(($(date +%s) - t0)) s to stop"
	assert_rc 130 "bmaptk copy interrupted by SIG$sig"
	assert_eq "" "$RUN_OUT" "stdout of an interrupted copy"
	assert_not_contains "$RUN_ERR" "Sanitizer" "stderr of an interrupted copy"
	printf '%s\n' "$RUN_ERR" |
		grep -qE "interrupted after writing [0-9.]+ ?[KMG]?i?B" ||
		fail "SIG$sig: no \"interrupted after writing SIZE\" in [$RUN_ERR]"
	assert_not_contains "$RUN_ERR" "ranges verified" "SIG$sig"
}

sigint() {
	local out=$E2E_TMP/int.new
	make_big
	interrupt INT "$out"
	assert_contains "$RUN_ERR" "$out: removed the partially written file" \
		"SIGINT"
	assert_no_file "$out" "destination of an interrupted copy"
	# SIGTERM into a file that existed: kept, said incomplete.
	out=$E2E_TMP/int.old
	: >"$out"
	interrupt TERM "$out"
	assert_contains "$RUN_ERR" "$out: the file is incomplete" "SIGTERM"
	[ -f "$out" ] || fail "the pre-existing $out was removed"
}
case_ "SIGINT and SIGTERM mid-copy" sigint

# SIGINT while bmaptk waits for more data on stdin (a stalled download):
# it must stop at once, not when the writer goes away.
sigint_stalled() {
	local out=$E2E_TMP/stalled pid rc=0 waited=0
	mkfifo "$E2E_TMP/pipe"
	"$BMAPTK" copy --bmap "$IMG.bmap" - "$out" <"$E2E_TMP/pipe" \
		>"$E2E_TMP/st.out" 2>"$E2E_TMP/st.err" &
	pid=$!
	exec 5>"$E2E_TMP/pipe"
	head -c 300000 "$IMG.zst" >&5
	# Once the bmap is read the copy is under way (and SIGINT caught).
	for _ in $(seq 200); do
		grep -q "format version" "$E2E_TMP/st.err" && break
		sleep 0.05
	done
	sleep 0.3
	kill -INT "$pid"
	while kill -0 "$pid" 2>/dev/null && [ $waited -lt 50 ]; do
		sleep 0.1
		waited=$((waited + 1))
	done
	exec 5>&- # the writer goes away only now
	wait "$pid" || rc=$?
	[ $waited -lt 50 ] ||
		fail "SIGINT: bmaptk waited for stdin (exit $rc, stderr: $(cat "$E2E_TMP/st.err"))"
	[ "$rc" = 130 ] ||
		fail "stalled stdin: exit $rc, expected 130; stderr: $(cat "$E2E_TMP/st.err")"
	[ -s "$E2E_TMP/st.out" ] && fail "stdout of an interrupted copy"
	grep -q "interrupted" "$E2E_TMP/st.err" ||
		fail "stalled stdin: no \"interrupted\" in: $(cat "$E2E_TMP/st.err")"
	assert_no_file "$out" "destination of an interrupted copy"
}
case_ "SIGINT while stdin stalls" sigint_stalled

# psplash reads NUL-terminated "PROGRESS n" messages from its fifo. The
# shell holds the fifo open read-write so bmaptk's non-blocking open always
# finds a reader; cat, in the background, collects the messages.
psplash() {
	local fifo=$E2E_TMP/psplash_fifo cat_pid msgs
	mkfifo "$fifo"
	exec 3<>"$fifo"
	# Not inheriting fd 3: cat must see the end once bmaptk and we close.
	cat "$fifo" >"$E2E_TMP/psplash.out" 3>&- &
	cat_pid=$!
	for _ in $(seq 100); do
		readlink "/proc/$cat_pid/fd/"* 2>/dev/null |
			grep -q psplash_fifo &&
			break
		sleep 0.05
	done
	bm 0 copy --psplash-pipe "$fifo" "$IMG.gz" "$E2E_TMP/psplash.img"
	exec 3>&-
	for _ in $(seq 100); do
		kill -0 "$cat_pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$cat_pid" 2>/dev/null; then
		kill "$cat_pid"
		fail "the psplash pipe was not closed"
	fi
	wait "$cat_pid"
	assert_same_file "$IMG" "$E2E_TMP/psplash.img" "copy with psplash"
	msgs=$(tr '\0' '\n' <"$E2E_TMP/psplash.out")
	assert_eq "PROGRESS 100" "$(printf '%s\n' "$msgs" | tail -n 1)" \
		"last psplash message"
	assert_eq "" "$(printf '%s\n' "$msgs" | grep -v '^PROGRESS [0-9]*$')" \
		"malformed psplash messages"
	printf '%s\n' "$msgs" | awk '{ if ($2 < last) exit 1; last = $2 }' ||
		fail "psplash progress goes backwards: $msgs"
	assert_eq "00" "$(tail -c 1 "$E2E_TMP/psplash.out" | od -An -tx1 |
		tr -d ' ')" "psplash message terminator"
	# A missing pipe only warns; the copy goes on.
	bm 0 copy --psplash-pipe "$E2E_TMP/nopipe" "$IMG" "$E2E_TMP/psplash2"
	assert_contains "$RUN_ERR" "$E2E_TMP/nopipe: cannot open the psplash pipe" \
		"missing psplash pipe"
	assert_same_file "$IMG" "$E2E_TMP/psplash2" "copy without psplash"
}
case_ "--psplash-pipe" psplash

# DESIGN.md section 4: corrupt or truncated compressed input is an error.
# Here only the stream's last 4 bytes are missing (gzip's ISIZE, the xz
# stream footer, zstd's content checksum); every image byte is there.
truncated_trailer() { # EXT
	local f=$D/trailer.img.$1 out=$E2E_TMP/trailer.$1
	head -c $(($(stat -c %s "$IMG.$1") - 4)) "$IMG.$1" >"$f"
	bm 2 copy --bmap "$IMG.bmap" "$f" "$out"
	assert_contains "$RUN_ERR" "$f: " "end of .$1 missing"
	assert_no_file "$out" "destination of a cut .$1"
}
for c in gz xz bz2 zst; do
	case_ "last 4 bytes of .$c missing" truncated_trailer "$c"
done

cases_done "all cases passed"
