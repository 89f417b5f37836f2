# Android sparse images (simg), both ways, against Debian's libsparse tools
# (img2simg, simg2img):
# - the simg sink: `copy IMG OUT.simg` (by name, or --to simg) expands with
#   simg2img to the image (an odd size padded to the block); its chunks are
#   RAW, DONT_CARE for holes, FILL for repeated 32-bit values (merged while
#   the value stays); --to simg-crc adds a CRC32 chunk whose value is the
#   zlib CRC-32 of the expanded image (simg2img does not check CRCs, so the
#   test does); a failed copy removes the simg it created and keeps one that
#   existed; options that need to read or clear the destination are refused.
# - the simg codec: img2simg's output copies back to the image with a bmap
#   and without (then holes stay holes), `create` of it equals bmaptool's
#   bmap of the raw image, and truncated or corrupt simg files fail with
#   exit 2 and a message naming the file and the chunk.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd bmaptool img2simg simg2img cmp truncate "$PYTHON"

# bmaptool create needs real extents; copies go there too (not under
# /dev/shm: copy refuses to create files under /dev/).
e2e_ext4_dir IMGDIR 512M
D=$IMGDIR/out
mkdir "$D" || fail "cannot make $D"
B=4096
MIB=$((1024 * 1024))
IMG=$IMGDIR/img  # 12 MiB, whole blocks, no block of written zeros
ODD=$IMGDIR/odd  # 3 MiB + 1000: data in the partial last block, zeros
HOLE=$IMGDIR/hole # 3 MiB + 1000: the partial last block is a hole

# Fixed seed. IMG has a 1 MiB range of 0xdeadbeef then 2 blocks of
# 0x01010101 inside mapped data; ODD has 16 written zero blocks.
"$PYTHON" - "$IMG" "$ODD" "$HOLE" <<'EOF' || fail "cannot generate the images"
import os
import random
import struct
import sys

MIB, B = 1024 * 1024, 4096
rng = random.Random(20241125)


def make(path, size, extents):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.ftruncate(fd, size)
    for off, data in extents:
        assert off + len(data) <= size
        assert os.pwrite(fd, data, off) == len(data)
    os.fsync(fd)
    os.close(fd)


make(sys.argv[1], 12 * MIB, [
    (0, rng.randbytes(3 * B)),
    (5 * B + 100, rng.randbytes(20000)),
    (2 * MIB, rng.randbytes(MIB)),
    (4 * MIB, struct.pack("<I", 0xdeadbeef) * (MIB // 4)),
    (5 * MIB, b"\x01" * (2 * B)),
    (5 * MIB + 2 * B, rng.randbytes(B)),
    (8 * MIB, rng.randbytes(4 * MIB)),
])
make(sys.argv[2], 3 * MIB + 1000, [
    (0, rng.randbytes(100 * 1024)),
    (MIB, bytes(16 * B)),
    (3 * MIB + 1000 - 3000, rng.randbytes(3000)),
])
make(sys.argv[3], 3 * MIB + 1000, [(B, rng.randbytes(5 * B))])
EOF

# bm WANT_RC ARG...: run bmaptk; check its exit status and that no
# sanitizer spoke. RUN_ERR has its stderr.
bm() {
	local want=$1
	shift
	run "$BMAPTK" "$@"
	assert_rc "$want" "bmaptk $*"
	assert_no_sanitizer "stderr of bmaptk $*"
}

# chunks FILE: one line per chunk, "TYPE BLOCKS [VALUE]" (RAW, FILL,
# DONT_CARE, CRC32; VALUE in hex for FILL and CRC32), after a header line
# "blocks N chunks M checksum X"; fails on a malformed file.
chunks() {
	"$PYTHON" - "$1" <<'EOF'
import struct
import sys

d = open(sys.argv[1], "rb").read()
magic, major, _, fh, ch, bs, blks, n, crc = struct.unpack_from("<IHHHHIIII", d)
if (magic, major, fh, ch, bs) != (0xED26FF3A, 1, 28, 12, 4096):
    sys.exit("bad header %x %d %d %d %d" % (magic, major, fh, ch, bs))
print("blocks %d chunks %d checksum %x" % (blks, n, crc))
names = {0xCAC1: "RAW", 0xCAC2: "FILL", 0xCAC3: "DONT_CARE", 0xCAC4: "CRC32"}
off, total = fh, 0
for i in range(n):
    t, _, cnt, size = struct.unpack_from("<HHII", d, off)
    want = {0xCAC1: 12 + cnt * bs, 0xCAC2: 16, 0xCAC3: 12, 0xCAC4: 16}
    if t not in names or size != want[t]:
        sys.exit("chunk %d: type %x size %d" % (i + 1, t, size))
    val = (" %x" % struct.unpack_from("<I", d, off + 12)) \
        if t in (0xCAC2, 0xCAC4) else ""
    print("%s %d%s" % (names[t], cnt, val))
    off, total = off + size, total + cnt
if off != len(d) or total != blks:
    sys.exit("chunks end at %d of %d bytes, %d of %d blocks"
             % (off, len(d), total, blks))
EOF
}

# padded FILE OUT: FILE with zeros up to a whole block.
padded() {
	cp "$1" "$2" && truncate -s $((($(stat -c %s "$1") + B - 1) / B * B)) "$2" ||
		fail "cannot pad $1"
}

for f in "$IMG" "$ODD" "$HOLE"; do
	bm 0 create "$f" -o "$f.bmap"
done

note "our simg expands with simg2img to the image"
bm 0 copy "$IMG" "$D/img.simg" # chosen by the name
simg2img "$D/img.simg" "$D/img.expanded" || fail "simg2img img.simg"
assert_same_file "$IMG" "$D/img.expanded"
chunks "$D/img.simg" >"$D/img.chunks" || fail "img.simg: bad chunks"
# 3 RAW blocks, 2 hole blocks, RAW over 100..20099, ... The fill run:
# 256 blocks of deadbeef, 2 of 01010101, then a RAW block.
grep -q '^DONT_CARE ' "$D/img.chunks" || fail "img.simg: no DONT_CARE chunk"
grep -A2 '^FILL 256 deadbeef$' "$D/img.chunks" >"$D/fill.got" ||
	fail "img.simg: no FILL chunk of 256 blocks of deadbeef: $(cat "$D/img.chunks")"
printf 'FILL 256 deadbeef\nFILL 2 1010101\nRAW 1\n' >"$D/fill.want"
assert_same_file "$D/fill.want" "$D/fill.got" "chunks around the fill run"
# RAW holds exactly the mapped blocks that are not fill blocks.
mapped=$(grep -o '<MappedBlocksCount> *[0-9]*' "$IMG.bmap" | grep -o '[0-9]*$')
raw=$(awk '$1 == "RAW" { n += $2 } END { print n + 0 }' "$D/img.chunks")
assert_eq $((mapped - 258)) "$raw" "RAW blocks in img.simg"
assert_eq "blocks 3072" "$(head -n1 "$D/img.chunks" | cut -d' ' -f1-2)" \
	"img.simg header"

note "--to simg writes the same bytes whatever the name; auto does not"
bm 0 copy --to simg "$IMG" "$D/img.sparse"
assert_same_file "$D/img.simg" "$D/img.sparse"
bm 0 copy "$IMG" "$D/img.raw" # auto, not .simg: a plain file
assert_same_file "$IMG" "$D/img.raw"

note "odd sizes are padded to a block; written zeros are FILL 0"
bm 0 copy "$ODD" "$D/odd.simg"
simg2img "$D/odd.simg" "$D/odd.expanded" || fail "simg2img odd.simg"
padded "$ODD" "$D/odd.padded"
assert_same_file "$D/odd.padded" "$D/odd.expanded"
chunks "$D/odd.simg" >"$D/odd.chunks" || fail "odd.simg: bad chunks"
grep -qx 'FILL 16 0' "$D/odd.chunks" ||
	fail "odd.simg: no FILL chunk of 16 zero blocks: $(cat "$D/odd.chunks")"
assert_eq "RAW 2" "$(tail -n1 "$D/odd.chunks")" "odd.simg: last chunk"
bm 0 copy "$HOLE" "$D/hole.simg"
simg2img "$D/hole.simg" "$D/hole.expanded" || fail "simg2img hole.simg"
padded "$HOLE" "$D/hole.padded"
assert_same_file "$D/hole.padded" "$D/hole.expanded"
assert_eq "DONT_CARE 763" "$(tail -n1 <(chunks "$D/hole.simg"))" \
	"hole.simg: last chunk (the partial block is a hole)"

note "our simg read back by our codec, with the bmap and without"
bm 0 copy --bmap "$ODD.bmap" "$D/odd.simg" "$D/odd.back"
assert_same_file "$ODD" "$D/odd.back"
bm 0 copy --nobmap "$D/odd.simg" "$D/odd.back2"
assert_same_file "$D/odd.padded" "$D/odd.back2"

note "--to simg-crc and --simg-crc: a CRC32 chunk with zlib's CRC-32"
bm 0 copy --to simg-crc "$IMG" "$D/crc.simg"
bm 0 copy --simg-crc "$IMG" "$D/crc2.simg"
assert_same_file "$D/crc.simg" "$D/crc2.simg"
want=$("$PYTHON" -c 'import sys, zlib
print("%x" % zlib.crc32(open(sys.argv[1], "rb").read()))' "$IMG")
chunks "$D/crc.simg" >"$D/crc.chunks" || fail "crc.simg: bad chunks"
assert_eq "CRC32 0 $want" "$(tail -n1 "$D/crc.chunks")" "crc.simg: CRC chunk"
assert_eq "checksum $want" "$(head -n1 "$D/crc.chunks" | cut -d' ' -f5-)" \
	"crc.simg: header checksum"
# Same chunks as without the CRC, plus the CRC chunk.
cmp -s <(tail -c +29 "$D/img.simg") <(tail -c +29 "$D/crc.simg" | head -c -16) ||
	fail "crc.simg: chunks differ from img.simg's"
simg2img "$D/crc.simg" "$D/crc.expanded" || fail "simg2img crc.simg"
assert_same_file "$IMG" "$D/crc.expanded"
bm 0 copy --to simg-crc "$ODD" "$D/oddcrc.simg" # holes and padding count
want=$("$PYTHON" -c 'import sys, zlib
print("%x" % zlib.crc32(open(sys.argv[1], "rb").read()))' "$D/odd.padded")
assert_eq "CRC32 0 $want" "$(tail -n1 <(chunks "$D/oddcrc.simg"))" \
	"oddcrc.simg: CRC chunk"

note "one decode, a simg and a plain file"
bm 0 copy "$IMG" "$D/both.simg" "$D/both.raw"
assert_same_file "$D/img.simg" "$D/both.simg"
assert_same_file "$IMG" "$D/both.raw"

note "a failed copy removes the simg it created, keeps an existing one"
cp "$IMG" "$D/bad.img" && printf X | dd of="$D/bad.img" bs=1 seek=$((2 * MIB + 7)) \
	conv=notrunc status=none || fail "cannot corrupt a copy of the image"
bm 1 copy --bmap "$IMG.bmap" "$D/bad.img" "$D/new.simg"
assert_contains "$RUN_ERR" "checksum mismatch"
assert_contains "$RUN_ERR" "$D/new.simg: removed the partially written file"
assert_no_file "$D/new.simg"
echo old >"$D/old.simg"
bm 1 copy --bmap "$IMG.bmap" "$D/bad.img" "$D/old.simg"
assert_contains "$RUN_ERR" "$D/old.simg: the file is incomplete"
[ -f "$D/old.simg" ] || fail "old.simg was removed"

note "options that read or clear the destination are refused"
cp "$D/img.simg" "$D/keep.simg"
bm 2 copy --skip-unchanged "$IMG" "$D/keep.simg"
assert_contains "$RUN_ERR" "$D/keep.simg: an Android sparse image is written whole"
bm 2 copy --discard "$IMG" "$D/keep.simg"
assert_contains "$RUN_ERR" "$D/keep.simg: this destination cannot discard"
bm 2 copy --zero-holes "$IMG" "$D/keep.simg"
assert_contains "$RUN_ERR" "$D/keep.simg: this destination cannot zero ranges"
assert_same_file "$D/img.simg" "$D/keep.simg" "a refused copy's existing simg"
for o in --skip-unchanged --discard --zero-holes; do
	bm 2 copy $o "$IMG" "$D/none.simg"
	assert_no_file "$D/none.simg" "simg left by copy $o"
done
mkdir "$D/dir.simg"
bm 2 copy --to simg "$IMG" "$D/dir.simg"
assert_contains "$RUN_ERR" "$D/dir.simg: a directory"

note "img2simg output: copy with the bmap and without, holes stay holes"
img2simg "$IMG" "$D/a.simg" || fail "img2simg"
grep -q '^FILL .* 0$' <(chunks "$D/a.simg") ||
	fail "img2simg wrote no FILL 0 chunk (holes); the test assumes it does"
bm 0 copy --bmap "$IMG.bmap" "$D/a.simg" "$D/a.out"
assert_same_file "$IMG" "$D/a.out"
bm 0 copy --nobmap "$D/a.simg" "$D/a.out2"
assert_same_file "$IMG" "$D/a.out2"
# The copy maps exactly the image's blocks (IMG has no written zeros).
bm 0 create "$D/a.out2" -o "$D/a.out2.bmap"
bmap_fields "$IMG.bmap" >"$D/want.fields" || fail "bmap_fields"
bmap_fields "$D/a.out2.bmap" >"$D/got.fields" || fail "bmap_fields"
assert_same_file "$D/want.fields" "$D/got.fields" "blocks mapped by copy --nobmap"

note "create of img2simg's output equals bmaptool create of the image"
bmaptool create "$IMG" -o "$D/bmaptool.bmap" 2>"$D/bmaptool.err" ||
	fail "bmaptool create: $(cat "$D/bmaptool.err")"
bm 0 create "$D/a.simg" -o "$D/a.simg.bmap"
bmap_fields "$D/bmaptool.bmap" >"$D/want.fields" || fail "bmap_fields"
bmap_fields "$D/a.simg.bmap" >"$D/got.fields" || fail "bmap_fields"
assert_same_file "$D/want.fields" "$D/got.fields" "create of img2simg output"

note "truncated and corrupt simg files: exit 2, the file and the chunk"
# img.simg's chunks: 1 RAW, 2 DONT_CARE, 3 RAW, ... (offsets from chunks).
"$PYTHON" - "$D/img.simg" "$D" <<'EOF' || fail "cannot corrupt img.simg"
import os
import struct
import sys

src, d = sys.argv[1], sys.argv[2]
data = open(src, "rb").read()
off2 = 28 + struct.unpack_from("<I", data, 28 + 8)[0]  # chunk 2
off3 = off2 + struct.unpack_from("<I", data, off2 + 8)[0]  # chunk 3
bad = bytearray(data)
struct.pack_into("<H", bad, off2, 0xCAC9)
open(os.path.join(d, "type.simg"), "wb").write(bad)
bad = bytearray(data)
size = struct.unpack_from("<I", bad, off3 + 8)[0]
struct.pack_into("<I", bad, off3 + 8, size - 4096)
open(os.path.join(d, "rawsize.simg"), "wb").write(bad)
open(os.path.join(d, "short.simg"), "wb").write(data[:off3 + 5000])
EOF
expect_bad() { # FILE WHAT...
	local f=$1
	shift
	bm 2 copy --nobmap "$D/$f" "$D/$f.out"
	assert_contains "$RUN_ERR" "$D/$f: "
	for w in "$@"; do
		assert_contains "$RUN_ERR" "$w" "copy --nobmap $f"
	done
	assert_no_file "$D/$f.out"
}
expect_bad type.simg "chunk 2 of" "unknown chunk type"
expect_bad rawsize.simg "chunk 3 of" "RAW chunk of the wrong size"
expect_bad short.simg "chunk 3 of" "truncated"
bm 2 copy --bmap "$IMG.bmap" "$D/short.simg" "$D/short.out2"
assert_contains "$RUN_ERR" "$D/short.simg: "
assert_contains "$RUN_ERR" "chunk 3 of"
assert_no_file "$D/short.out2"
bm 2 create "$D/type.simg" -o "$D/type.bmap"
assert_contains "$RUN_ERR" "chunk 2 of"

note "all passed"
