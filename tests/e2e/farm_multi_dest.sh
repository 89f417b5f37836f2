# `bmaptk copy IMAGE DEST DEST...`: one decode, several destinations.
# Two files and a loop device from one .zst must all hold the image. Then
# one destination is made to fail, the others must still hold the image,
# the exit status must be non-zero and a line per DEST ("DEST: ok" /
# "DEST: FAILED") and the JSON `dest` events must name the failure:
#   - at open: a loop device smaller than the image;
#   - while writing: a file on an 8 MiB tmpfs that fills up;
#   - while writing: a loop device over a sparse file on that full tmpfs
#     (the device fails with I/O errors mid-copy).
# With --check, the destinations that were written are read back too.
# Needs root, loop devices and tmpfs mounts; skipped (77) without them.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd losetup mount umount zstd cmp sha256sum "$PYTHON"
[ "$(id -u)" = 0 ] || skip "needs root for loop devices"

MIB=$((1024 * 1024))
SIZE=$((40 * MIB))
e2e_ramdir RAM

IMG=$RAM/disk.img
"$PYTHON" - "$IMG" "$SIZE" <<'EOF' || fail "cannot generate the image"
import os, random, sys
M = 1 << 20
path, size = sys.argv[1], int(sys.argv[2])
rng = random.Random(42)
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, size)
for off, n in [(0, 2 * M + 4096), (4 * M, 9 * M), (16 * M + 8192, 7 * M),
               (30 * M, 3 * M), (size - 8192, 8192)]:
    os.pwrite(fd, rng.randbytes(n), off)
os.close(fd)
EOF
"$BMAPTK" -q create "$IMG" -o "$IMG.bmap" || fail "bmaptk create"
zstd -q -T0 -c "$IMG" >"$IMG.zst" || fail "zstd"
ZST=$IMG.zst # its bmap is found as disk.img.bmap

loop() { # FILE: attach it to a new loop device (DEV), detached at exit
	e2e_losetup DEV "$1" ||
		skip "cannot make a loop device: $(cat "$E2E_TMP/losetup.err")"
}
devsum() { dd if="$1" bs=1M iflag=direct status=none | sha256sum; }
holds() { # DEST WHAT: DEST (file or device) holds the image
	if [ -b "$1" ]; then
		cmp -n "$SIZE" "$IMG" "$1" || fail "$2: $1 does not hold the image"
	else
		cmp "$IMG" "$1" || fail "$2: $1 is not the image"
	fi
}
zero_span() { # DEV: zeros where the image goes (its holes are not written)
	head -c "$SIZE" /dev/zero | dd of="$1" bs=1M iflag=fullblock \
		oflag=direct status=none || fail "cannot zero $1"
}
# json_dests FILE: "dest status exit check" per `dest` event, then
# "summary OK FAILED" and "error EXIT" (every line must parse).
json_dests() {
	"$PYTHON" - "$1" <<'EOF'
import json, sys
evs = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8")]
for o in evs:
    if o["event"] == "dest":
        print(o["dest"], o["status"], o["exit"], o.get("check", "-"))
for o in evs:
    if o["event"] == "summary":
        print("summary", o["dests_ok"], o["dests_failed"])
for o in evs:
    if o["event"] == "error":
        print("error", o["exit"])
EOF
}

head -c $((SIZE + 4 * MIB)) /dev/zero >"$RAM/back.big" || fail "no backing"
loop "$RAM/back.big"
L=$DEV
F1=$RAM/one.img
F2=$RAM/two.img

# --- all three succeed ----------------------------------------------------
head -c $((SIZE + MIB)) /dev/urandom >"$F2" || fail "cannot fill $F2"
bm 0 copy "$ZST" "$F1" "$L" "$F2"
holds "$F1" "3 dests"
holds "$L" "3 dests"
holds "$F2" "3 dests"
assert_contains "$RUN_ERR" "to 3 of 3 destinations" "3 dests"
assert_not_contains "$RUN_ERR" "FAILED" "3 dests"
note "ok: three destinations"

# --- one fails at open: a device smaller than the image -------------------
head -c $((16 * MIB)) /dev/urandom >"$RAM/back.small" || fail "no backing"
loop "$RAM/back.small"
S=$DEV
before=$(devsum "$S")
rm -f "$F1" "$F2"
zero_span "$L"
run "$BMAPTK" copy "$ZST" "$F1" "$S" "$L" "$F2"
[ "$RUN_RC" != 0 ] || fail "a failed DEST must make the exit status non-zero"
assert_contains "$RUN_ERR" "$S is smaller than the image" "small device"
holds "$F1" "small device"
holds "$L" "small device"
holds "$F2" "small device"
assert_eq "$before" "$(devsum "$S")" "$S after a refused copy"
assert_contains "$RUN_ERR" "bmaptk: $F1: ok" "small device"
assert_contains "$RUN_ERR" "bmaptk: $S: FAILED" "small device"
assert_contains "$RUN_ERR" "bmaptk: $L: ok" "small device"
assert_contains "$RUN_ERR" "bmaptk: $F2: ok" "small device"
assert_contains "$RUN_ERR" "to 3 of 4 destinations" "small device"
note "ok: a device too small drops out, rc $RUN_RC"

# --- one fails while writing: a file on a full tmpfs ----------------------
TINY=$E2E_TMP/tiny
mkdir "$TINY" || fail "mkdir $TINY"
e2e_mount -t tmpfs -o size=8m bmaptk-test "$TINY" ||
	skip "cannot mount a tmpfs: $(cat "$E2E_TMP/mount.err")"
rm -f "$F1" "$F2"
zero_span "$L"
run "$BMAPTK" copy "$ZST" "$F1" "$TINY/card.img" "$L"
assert_eq 3 "$RUN_RC" "exit status with a full file system"
assert_contains "$RUN_ERR" "$TINY/card.img: write error at offset" "ENOSPC"
assert_contains "$RUN_ERR" "No space left on device" "ENOSPC"
holds "$F1" "ENOSPC"
holds "$L" "ENOSPC"
assert_no_file "$TINY/card.img" "the partial file on the full tmpfs"
assert_contains "$RUN_ERR" "$TINY/card.img: removed the partially" "ENOSPC"
assert_contains "$RUN_ERR" "bmaptk: $F1: ok" "ENOSPC"
assert_contains "$RUN_ERR" "bmaptk: $TINY/card.img: FAILED" "ENOSPC"
assert_contains "$RUN_ERR" "bmaptk: $L: ok" "ENOSPC"
note "ok: a file system that fills up drops out"

# The same with --json and --check: the others are read back and verified.
rm -f "$F1"
zero_span "$L"
bm 3 --json copy --check "$ZST" "$F1" "$TINY/card.img" "$L"
printf '%s\n' "$RUN_ERR" >"$E2E_TMP/enospc.json"
got=$(json_dests "$E2E_TMP/enospc.json") || fail "bad JSON: [$RUN_ERR]"
assert_eq "$F1 ok 0 ok
$TINY/card.img failed 3 -
$L ok 0 ok
summary 2 1
error 3" "$got" "JSON events with a full file system"
holds "$F1" "ENOSPC --check"
holds "$L" "ENOSPC --check"
note "ok: JSON and --check with a failed DEST"

# --- a device that fails while writing ------------------------------------
truncate -s $((SIZE + MIB)) "$TINY/back" || fail "cannot make $TINY/back"
loop "$TINY/back"
B=$DEV
rm -f "$F1" "$F2"
run "$BMAPTK" copy "$ZST" "$F1" "$B" "$F2"
[ "$RUN_RC" != 0 ] || fail "a failing device must make the exit non-zero"
holds "$F1" "failing device"
holds "$F2" "failing device"
assert_contains "$RUN_ERR" "$B: write error at offset" "failing device"
assert_contains "$RUN_ERR" "$B: the device holds an incomplete image" \
	"failing device"
assert_contains "$RUN_ERR" "bmaptk: $F1: ok" "failing device"
assert_contains "$RUN_ERR" "bmaptk: $B: FAILED" "failing device"
assert_contains "$RUN_ERR" "bmaptk: $F2: ok" "failing device"
note "ok: a device failing mid-copy drops out, rc $RUN_RC"
note "all cases passed"
