# `bmaptk copy --skip-unchanged`: reflashing a card that already holds an
# older image writes only the 1 MiB chunks that differ. Image A (48 MiB,
# 30 MiB mapped in 6 ranges) goes onto a loop device; image B is A with 200
# bytes changed in each of 3 ranges (same layout). Copying B with
# --skip-unchanged must leave the device equal to B while the kernel's own
# count of written sectors (/sys/block/loopN/stat, field 7) grows by at most
# the 3 changed chunks; the JSON `dest` event and the human summary must say
# the same. An identical reflash writes nothing. An image that differs
# everywhere (C) stops the comparing after 12 differing chunks. On regular
# files the old bytes are kept, the holes punched: the file equals B and
# stays sparse, even over a larger file full of random bytes. Eight changed
# MiB in a row off a 1 MiB boundary cost 9 MiB, not a blind rewrite.
# Needs root and loop devices; skipped (77) without them.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd losetup cmp sha256sum awk "$PYTHON"
[ "$(id -u)" = 0 ] || skip "needs root for loop devices"

MIB=$((1024 * 1024))
SIZE=$((48 * MIB))
MARGIN=$((64 * 1024)) # slack for the kernel's accounting
e2e_ramdir RAM

# mkimg PATH SEED: a sparse image of SIZE bytes; always the same 6 ranges,
# their bytes random from SEED.
mkimg() {
	"$PYTHON" - "$1" "$SIZE" "$2" <<'EOF' || fail "cannot generate $1"
import os, random, sys
M = 1 << 20
path, size, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, size)
for off, n in [(0, 3 * M + 20480), (5 * M, 7 * M), (14 * M + 8192, 9 * M),
               (25 * M, 6 * M + 12288), (34 * M, 5 * M),
               (size - 12288, 12288)]:
    os.pwrite(fd, rng.randbytes(n), off)
os.close(fd)
EOF
	"$BMAPTK" -q create "$1" -o "$1.bmap" || fail "bmaptk create $1"
}

# jdest FILE FIELD: FIELD of the last `dest` event in the JSON lines FILE.
jdest() {
	"$PYTHON" - "$1" "$2" <<'EOF'
import json, sys
v = None
for line in open(sys.argv[1], encoding="utf-8"):
    o = json.loads(line)
    if o["event"] == "dest":
        v = o[sys.argv[2]]
if v is None:
    sys.exit("no dest event with %s in %s" % (sys.argv[2], sys.argv[1]))
print(v)
EOF
}

# loop FILE: attach FILE to a new loop device (DEV, LOOPSTAT), detached at
# exit.
loop() {
	e2e_losetup DEV "$1" ||
		skip "cannot make a loop device: $(cat "$E2E_TMP/losetup.err")"
	LOOPSTAT=/sys/block/$(basename "$DEV")/stat
	[ -r "$LOOPSTAT" ] || skip "no $LOOPSTAT"
}
written_sectors() { awk '{ print $7 }' "$LOOPSTAT"; }
tailsum() { tail -c +$((SIZE + 1)) "$1" | sha256sum | cut -d' ' -f1; }

A=$RAM/a.img
B=$RAM/b.img
C=$RAM/c.img
mkimg "$A" 1
mkimg "$C" 2
cp --sparse=always "$A" "$B" || fail "cannot copy $A"
CHANGES="$((6 * MIB + 40960 + 100)) $((20 * MIB + 3 * 4096 + 50)) \
$((36 * MIB + 7 * 4096 + 9))"
for off in $CHANGES; do # 200 bytes inside one 4 KiB block each
	head -c 200 /dev/urandom |
		dd of="$B" bs=1 seek="$off" conv=notrunc status=none ||
		fail "cannot change $B"
done
"$BMAPTK" -q create "$B" -o "$B.bmap" || fail "bmaptk create $B"
layout() { bmap_fields "$1" | sed 's/ chksum=.*//'; }
assert_eq "$(layout "$A.bmap")" "$(layout "$B.bmap")" "layout of A and B"
assert_eq "3" "$(diff <(bmap_fields "$A.bmap") <(bmap_fields "$B.bmap") |
	grep -c '^> Range')" "ranges that differ between A and B"
MAPPED=$(($(bmap_fields "$A.bmap" | awk '/^MappedBlocksCount/ { print $2 }') *
	4096))

# --- a loop device: only the changed chunks are written -------------------
# Zeros where the image goes (its holes are not written), random after it.
{ head -c "$SIZE" /dev/zero && head -c $((16 * MIB)) /dev/urandom; } \
	>"$RAM/backing" || fail "cannot make a backing file"
loop "$RAM/backing"
L=$DEV
TAIL=$(tailsum "$L")
bm 0 copy "$A" "$L"
cmp -n "$SIZE" "$A" "$L" || fail "$L does not hold A"

s0=$(written_sectors)
bm 0 --json copy --skip-unchanged "$B" "$L"
s1=$(written_sectors)
printf '%s\n' "$RUN_ERR" >"$E2E_TMP/b.json"
cmp -n "$SIZE" "$B" "$L" || fail "--skip-unchanged: $L does not hold B"
assert_eq "$TAIL" "$(tailsum "$L")" "bytes after the image on $L"
dev_written=$(((s1 - s0) * 512))
written=$(jdest "$E2E_TMP/b.json" written_bytes) || fail "no written_bytes"
compared=$(jdest "$E2E_TMP/b.json" compared_bytes) || fail "no compared"
skipped=$(jdest "$E2E_TMP/b.json" skipped_bytes) || fail "no skipped_bytes"
note "A -> B: device wrote $dev_written bytes; bmaptk says written" \
	"$written, compared $compared, skipped $skipped of $MAPPED"
[ "$dev_written" -le $((3 * MIB + MARGIN)) ] ||
	fail "--skip-unchanged wrote $dev_written bytes to $L for 3 changed" \
		"chunks (at most $((3 * MIB + MARGIN)) expected)"
[ "$dev_written" -ge $((3 * 4096)) ] ||
	fail "--skip-unchanged wrote only $dev_written bytes to $L"
diff=$((written - dev_written))
[ "${diff#-}" -le "$MARGIN" ] ||
	fail "dest event says written_bytes=$written, the device wrote" \
		"$dev_written"
assert_eq "$MAPPED" "$((written + skipped))" "written + skipped bytes"
assert_eq "$MAPPED" "$compared" "compared bytes (3 of 30 chunks differ)"

# The same again, in words: the summary line agrees with the device.
bm 0 copy "$A" "$L"
s0=$(written_sectors)
bm 0 copy --skip-unchanged "$B" "$L"
s1=$(written_sectors)
cmp -n "$SIZE" "$B" "$L" || fail "--skip-unchanged (2): $L does not hold B"
line=$(printf '%s\n' "$RUN_ERR" | grep -F "$L: written ") ||
	fail "no '$L: written ...' line in [$RUN_ERR]"
"$PYTHON" - "$line" "$L" "$((s1 - s0))" "$MAPPED" <<'EOF' || fail "summary"
import re, sys
line, dev, sectors, mapped = sys.argv[1], sys.argv[2], int(sys.argv[3]), \
    int(sys.argv[4])
m = re.fullmatch(r"bmaptk: (.*): written (.*), compared (.*), "
                 r"skipped (.*) \(unchanged\)", line)
if not m or m.group(1) != dev:
    sys.exit("summary line not understood: %r" % line)
def size(s):
    n, unit = s.split()
    return float(n) * {"bytes": 1, "KiB": 1 << 10, "MiB": 1 << 20}[unit]
w, c, s = (size(m.group(i)) for i in (2, 3, 4))
tol = 0.05 * (1 << 20) + 1
if abs(w - sectors * 512) > tol + 65536:
    sys.exit("summary says written %s; the device wrote %d bytes"
             % (m.group(2), sectors * 512))
if abs(w + s - mapped) > 2 * tol or abs(c - mapped) > tol:
    sys.exit("summary %r does not add up to the %d mapped bytes"
             % (line, mapped))
EOF

# An identical reflash writes nothing.
s0=$(written_sectors)
bm 0 copy --skip-unchanged "$B" "$L"
s1=$(written_sectors)
[ $(((s1 - s0) * 512)) -le "$MARGIN" ] ||
	fail "an identical reflash wrote $(((s1 - s0) * 512)) bytes to $L"
assert_contains "$RUN_ERR" "$L: written 0 bytes, compared " "identical"
cmp -n "$SIZE" "$B" "$L" || fail "identical reflash: $L does not hold B"
note "ok: loop device, $dev_written bytes written for 3 changed chunks"

# Everything differs: after 12 differing chunks it writes blindly, so it
# compares at most 12 of the 30 chunks; the device holds C.
s0=$(written_sectors)
bm 0 --json copy --skip-unchanged "$C" "$L"
s1=$(written_sectors)
printf '%s\n' "$RUN_ERR" >"$E2E_TMP/c.json"
cmp -n "$SIZE" "$C" "$L" || fail "--skip-unchanged: $L does not hold C"
compared=$(jdest "$E2E_TMP/c.json" compared_bytes) || fail "no compared"
written=$(jdest "$E2E_TMP/c.json" written_bytes) || fail "no written"
assert_eq "$MAPPED" "$written" "written bytes when everything differs"
[ "$compared" -gt 0 ] && [ "$compared" -le $((12 * MIB)) ] ||
	fail "all chunks differ: compared $compared bytes (expected at" \
		"most 12 MiB: comparing pauses after 12 differing chunks)"
[ $(((s1 - s0) * 512)) -ge "$MAPPED" ] ||
	fail "C: the device wrote only $(((s1 - s0) * 512)) bytes"
note "ok: adaptive, compared $compared of $MAPPED bytes"

# --- regular files -----------------------------------------------------------
assert_sparse() { # FILE: exactly the image size, about the mapped bytes used
	local size alloc
	size=$(stat -c %s "$1") && alloc=$(($(stat -c %b "$1") * 512)) ||
		fail "cannot stat $1"
	assert_eq "$SIZE" "$size" "size of $1"
	[ "$alloc" -le $((MAPPED + MARGIN)) ] ||
		fail "$1 is not sparse: $alloc bytes allocated for $MAPPED mapped"
}
F=$RAM/card.img
bm 0 copy "$A" "$F"
bm 0 --json copy --skip-unchanged "$B" "$F"
printf '%s\n' "$RUN_ERR" >"$E2E_TMP/f.json"
cmp "$B" "$F" || fail "--skip-unchanged: $F does not equal B"
assert_sparse "$F"
written=$(jdest "$E2E_TMP/f.json" written_bytes) || fail "no written"
skipped=$(jdest "$E2E_TMP/f.json" skipped_bytes) || fail "no skipped"
[ "$written" -le $((3 * MIB)) ] && [ "$written" -gt 0 ] ||
	fail "file: written_bytes=$written for 3 changed chunks"
assert_eq "$MAPPED" "$((written + skipped))" "file: written + skipped"

# Over a larger file of random bytes: old bytes in the holes and past the
# end must go.
head -c $((SIZE + 5 * MIB)) /dev/urandom >"$F" || fail "cannot fill $F"
bm 0 copy --skip-unchanged "$B" "$F"
cmp "$B" "$F" || fail "--skip-unchanged over random bytes: $F is not B"
assert_sparse "$F"
note "ok: regular files"

# Eight changed MiB in a row inside a range that starts off a 1 MiB
# boundary, 20 unchanged MiB after them. Each changed chunk must be
# compared whole: compared in two halves (the copy's buffers cut across
# the image's MiB boundaries) the 8 changes counted as 16, reached the 12
# that stop comparing, and the 20 unchanged MiB were written blindly.
E=$RAM/e.img
G=$RAM/e2.img
"$PYTHON" - "$E" "$G" <<'EOF' || fail "cannot generate $E"
import os, random, sys
M = 1 << 20
rng = random.Random(7)
head, body = rng.randbytes(700 * 1024), bytearray(rng.randbytes(30 * M))
for path in sys.argv[1:]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.ftruncate(fd, 40 * M)
    os.pwrite(fd, head, 0)
    os.pwrite(fd, body, M + 12288)
    os.close(fd)
    body[2 * M:10 * M] = rng.randbytes(8 * M)
EOF
"$BMAPTK" -q create "$E" -o "$E.bmap" && "$BMAPTK" -q create "$G" -o "$G.bmap" ||
	fail "bmaptk create $E, $G"
bm 0 copy "$E" "$F"
bm 0 --json copy --skip-unchanged "$G" "$F"
printf '%s\n' "$RUN_ERR" >"$E2E_TMP/g.json"
cmp "$G" "$F" || fail "--skip-unchanged: $F does not equal $G"
written=$(jdest "$E2E_TMP/g.json" written_bytes) || fail "no written"
[ "$written" -le $((9 * MIB)) ] ||
	fail "8 changed MiB in a row: written_bytes=$written (at most 9 MiB)"
note "ok: 8 changed MiB in a row, $written bytes written"
note "all cases passed"
