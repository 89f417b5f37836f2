# What `bmaptk copy` leaves in the image's holes (unmapped ranges):
#   - a regular file DEST that exists, full of random bytes (larger or
#     smaller than the image), becomes exactly the image, and sparse;
#   - --discard on a loop device over a tmpfs file of random bytes: the
#     mapped data is right and the backing file keeps about the mapped bytes
#     allocated (a loop device turns discards into punched holes); on a
#     device that cannot discard (a loop device over a ramfs file) it is
#     refused before any byte is written; on a file it punches holes;
#   - --zero-holes onto a loop device of random bytes (over tmpfs, and over
#     ramfs where the kernel writes the zeros): the device equals the image
#     over the whole image size and nothing after the image changes;
#   - the same for an image whose size is not a multiple of 512 and that
#     ends in a hole (the last hole ends inside a sector).
# Needs root and loop devices; skipped (77) without them.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd losetup mount umount cmp sha256sum "$PYTHON"
[ "$(id -u)" = 0 ] || skip "needs root for loop devices"

MIB=$((1024 * 1024))
MARGIN=$((64 * 1024))
e2e_ramdir RAM

# mkimg PATH SIZE "OFF:LEN ...": a sparse image with random data at those
# places, and its bmap PATH.bmap.
mkimg() {
	"$PYTHON" - "$@" <<'EOF' || fail "cannot generate $1"
import os, random, sys
path, size = sys.argv[1], int(sys.argv[2])
rng = random.Random(size)
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, size)
for ext in sys.argv[3].split():
    off, n = (int(x) for x in ext.split(":"))
    os.pwrite(fd, rng.randbytes(n), off)
os.close(fd)
EOF
	"$BMAPTK" -q create "$1" -o "$1.bmap" || fail "bmaptk create $1"
}
# mapped BMAP: the bytes its ranges cover
mapped() {
	"$PYTHON" - "$1" <<'EOF'
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
bs, size = int(r.find("BlockSize").text), int(r.find("ImageSize").text)
n = 0
for e in r.find("BlockMap").findall("Range"):
    a, _, b = "".join(e.text.split()).partition("-")
    n += min((int(b or a) + 1) * bs, size) - int(a) * bs
print(n)
EOF
}
# same_mapped IMG DEV: DEV holds IMG's mapped ranges (the holes may differ)
same_mapped() {
	"$PYTHON" - "$1" "$2" <<'EOF' || fail "$2 does not hold the data of $1"
import sys, xml.etree.ElementTree as ET
img, dev = sys.argv[1], sys.argv[2]
r = ET.parse(img + ".bmap").getroot()
bs, size = int(r.find("BlockSize").text), int(r.find("ImageSize").text)
with open(img, "rb") as a, open(dev, "rb") as b:
    for e in r.find("BlockMap").findall("Range"):
        f, _, l = "".join(e.text.split()).partition("-")
        off, end = int(f) * bs, min((int(l or f) + 1) * bs, size)
        a.seek(off), b.seek(off)
        if a.read(end - off) != b.read(end - off):
            sys.exit("%s: blocks %s differ from %s" % (dev, e.text, img))
EOF
}
loop() { # FILE: attach it to a new loop device (DEV), detached at exit
	e2e_losetup DEV "$1" ||
		skip "cannot make a loop device: $(cat "$E2E_TMP/losetup.err")"
}
alloc() { echo $(($(stat -c %b "$1") * 512)); }
devsum() { dd if="$1" bs=1M iflag=direct status=none | sha256sum; }
tailsum() { tail -c +$(($2 + 1)) "$1" | sha256sum; } # DEV SIZE
assert_sparse_image() { # IMG FILE: FILE is IMG, image-sized and sparse
	local m
	cmp "$1" "$2" || fail "$2 is not the image $1"
	assert_eq "$(stat -c %s "$1")" "$(stat -c %s "$2")" "size of $2"
	m=$(mapped "$1.bmap")
	[ "$(alloc "$2")" -le $((m + MARGIN)) ] ||
		fail "$2 is not sparse: $(alloc "$2") bytes allocated, $m mapped"
}
random_fill() { # FILE SIZE
	head -c "$2" /dev/urandom >"$1" || fail "cannot fill $1"
}

SIZE=$((40 * MIB))
IMG=$RAM/disk.img
mkimg "$IMG" "$SIZE" "0:$((2 * MIB + 4096)) $((5 * MIB)):$((6 * MIB)) \
$((15 * MIB + 8192)):$((4 * MIB)) $((30 * MIB)):$((3 * MIB))"
MAPPED=$(mapped "$IMG.bmap")

# --- regular files full of random bytes -------------------------------------
F=$RAM/card.img
random_fill "$F" $((SIZE + 3 * MIB))
bm 0 copy "$IMG" "$F"
assert_sparse_image "$IMG" "$F"
random_fill "$F" $((SIZE - 10 * MIB))
bm 0 copy "$IMG" "$F"
assert_sparse_image "$IMG" "$F"
random_fill "$F" $((SIZE + MIB))
bm 0 copy --discard "$IMG" "$F"
assert_sparse_image "$IMG" "$F"
random_fill "$F" $((SIZE + MIB))
bm 0 copy --zero-holes "$IMG" "$F"
assert_sparse_image "$IMG" "$F"
note "ok: files of random bytes become exactly the image"

# --- --discard on a loop device -----------------------------------------------
random_fill "$RAM/back.discard" "$SIZE"
loop "$RAM/back.discard"
D=$DEV
[ "$(alloc "$RAM/back.discard")" -ge "$SIZE" ] || fail "backing is sparse"
bm 0 copy --discard "$IMG" "$D"
same_mapped "$IMG" "$D"
got=$(alloc "$RAM/back.discard")
note "--discard: backing file has $got bytes allocated, $MAPPED mapped"
[ "$got" -ge $((MAPPED - MARGIN)) ] && [ "$got" -le $((MAPPED + MARGIN)) ] ||
	fail "--discard: the backing file of $D has $got bytes allocated," \
		"expected about the $MAPPED mapped bytes"
note "ok: --discard on a loop device"

# A device that cannot discard: refused before any byte is written.
RFS=$E2E_TMP/ramfs
mkdir "$RFS" || fail "mkdir $RFS"
if e2e_mount -t ramfs bmaptk-test "$RFS"; then
	random_fill "$RFS/back" $((SIZE + MIB))
	loop "$RFS/back"
	R=$DEV
	if [ "$(cat "/sys/block/$(basename "$R")/queue/discard_max_bytes")" = 0 ]; then
		before=$(devsum "$R")
		bm 2 copy --discard "$IMG" "$R"
		assert_contains "$RUN_ERR" "$R: the device does not support discard" \
			"--discard on $R"
		assert_eq "$before" "$(devsum "$R")" "$R after a refused --discard"
		note "ok: --discard refused by a device that cannot discard"
	else
		skip_case "a loop device over ramfs can discard here"
	fi
	# --zero-holes works without device support: the kernel writes zeros.
	before=$(tailsum "$R" "$SIZE")
	bm 0 copy --zero-holes "$IMG" "$R"
	cmp -n "$SIZE" "$IMG" "$R" || fail "--zero-holes: $R is not the image"
	assert_eq "$before" "$(tailsum "$R" "$SIZE")" "after the image on $R"
	note "ok: --zero-holes on a device without write-zeroes support"
else
	skip_case "cannot mount ramfs: $(cat "$E2E_TMP/mount.err")"
fi

# --- --zero-holes on a loop device of random bytes ----------------------------
random_fill "$RAM/back.zero" $((SIZE + MIB))
loop "$RAM/back.zero"
Z=$DEV
before=$(tailsum "$Z" "$SIZE")
bm 0 copy --zero-holes "$IMG" "$Z"
cmp -n "$SIZE" "$IMG" "$Z" || fail "--zero-holes: $Z is not the image"
assert_eq "$before" "$(tailsum "$Z" "$SIZE")" "after the image on $Z"
note "ok: --zero-holes on a loop device"

# --- an image that ends in a hole inside a sector -----------------------------
USIZE=$((20 * MIB + 1234))
U=$RAM/odd.img
mkimg "$U" "$USIZE" "$((MIB)):$((MIB))"
random_fill "$Z" $((SIZE + MIB)) # through the device: its cache stays right
before=$(tailsum "$Z" "$USIZE")
bm 0 copy --zero-holes "$U" "$Z"
cmp -n "$USIZE" "$U" "$Z" || fail "--zero-holes, odd size: $Z is not $U"
assert_eq "$before" "$(tailsum "$Z" "$USIZE")" "after the odd image on $Z"
before=$(tailsum "$D" "$USIZE")
bm 0 copy --discard "$U" "$D"
same_mapped "$U" "$D"
assert_eq "$before" "$(tailsum "$D" "$USIZE")" "after the odd image on $D"
note "ok: --zero-holes and --discard with an image of $USIZE bytes"
note "all cases passed"
