#!/usr/bin/env bash
# Make the seed corpora of the fuzz harnesses:
#
#   tests/fuzz/make-seeds.sh OUT_DIR [COMPAT_DIR]
#
# writes OUT_DIR/<harness>/ for every harness in tests/fuzz: the bmaps of
# COMPAT_DIR (default: $BMAPTK_SHARED/compat, else ../shared/compat next to
# the repository; they are read, never copied into the repository), bmaps
# written by bmaptool when it is installed, small files compressed by the
# real tools (gzip, pigz, xz, bzip2, lbzip2, zstd, img2simg; a missing tool
# is skipped with a note), a few hand-made headers the tools never write
# (gzip FEXTRA/FCOMMENT/FHCRC, simg FILL and CRC32 chunks), paths and URLs
# for discovery, and module descriptors. Deterministic except for what the
# tools embed. Exit: 0, 2 usage, 3 when python3 is missing.
set -euo pipefail

usage() {
	echo "usage: $0 OUT_DIR [COMPAT_DIR]" >&2
	exit 2
}

[[ $# -ge 1 && $# -le 2 ]] || usage
OUT=$1
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
COMPAT=${2:-${BMAPTK_SHARED:-$SRC/../shared}/compat}
command -v python3 >/dev/null || {
	echo "make-seeds: python3 is needed" >&2
	exit 3
}

HARNESSES=(fuzz_bmap fuzz_bmap_patched fuzz_bmap_gen fuzz_image fuzz_codec_gzip
	fuzz_codec_gzip_zlib fuzz_codec_xz fuzz_codec_bzip2 fuzz_codec_zstd
	fuzz_codec_simg fuzz_discover fuzz_registry)
rm -rf "$OUT"
for h in "${HARNESSES[@]}"; do
	mkdir -p "$OUT/$h"
done
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

have() {
	command -v "$1" >/dev/null 2>&1 && return 0
	echo "make-seeds: $1 not installed, its seeds are skipped" >&2
	return 1
}

# seed FILE HARNESS...: copy FILE into each harness's seed directory.
seed() {
	local f=$1 h
	shift
	for h in "$@"; do
		cp "$f" "$OUT/$h/$(basename "$f")"
	done
}

# ---- an image: text, zero runs, incompressible bytes --------------------
python3 - "$WORK/image" "$WORK/sparse" <<'EOF'
import sys
# xorshift, so the seeds are the same on every run
s = 0x9E3779B97F4A7C15
def rand_bytes(n):
    global s
    out = bytearray()
    while len(out) < n:
        s ^= (s << 13) & 0xFFFFFFFFFFFFFFFF
        s ^= s >> 7
        s ^= (s << 17) & 0xFFFFFFFFFFFFFFFF
        out += s.to_bytes(8, "little")
    return bytes(out[:n])
img = b"".join(b"block %d of the image\n" % i for i in range(600))
img += bytes(20000) + rand_bytes(3000) + b"tail" * 500
open(sys.argv[1], "wb").write(img)
# A sparse file for img2simg and bmaptool: data, a hole, data, a hole.
with open(sys.argv[2], "wb") as f:
    f.write(img[:12288])
    f.seek(65536)
    f.write(rand_bytes(4096) + b"\xab" * 8192)
    f.truncate(131072)
EOF
IMG=$WORK/image

# ---- bmaps -------------------------------------------------------------------
BMAP_H=(fuzz_bmap fuzz_bmap_patched)
if [[ -d $COMPAT ]]; then
	for f in "$COMPAT"/*.bmap*; do
		[[ -f $f ]] && seed "$f" "${BMAP_H[@]}"
	done
else
	echo "make-seeds: $COMPAT not found, no compat bmaps" >&2
fi
if have bmaptool; then
	bmaptool create -o "$WORK/bmaptool.bmap" "$WORK/sparse" 2>/dev/null &&
		seed "$WORK/bmaptool.bmap" "${BMAP_H[@]}"
	bmaptool create --no-checksum -o "$WORK/bmaptool-nosum.bmap" \
		"$WORK/sparse" 2>/dev/null &&
		seed "$WORK/bmaptool-nosum.bmap" "${BMAP_H[@]}"
fi
# Small documents of each version, checksums for the patched harness to
# fill in, and shapes the tools never write.
z40=$(printf '0%.0s' {1..40})
z64=$(printf '0%.0s' {1..64})
mk_bmap() {
	printf '%s' "$2" >"$WORK/$1"
	seed "$WORK/$1" "${BMAP_H[@]}"
}
mk_bmap small-1.0.bmap '<?xml version="1.0" ?>
<bmap version="1.0"><ImageSize>8193</ImageSize><BlockSize>4096</BlockSize>
<BlocksCount>3</BlocksCount><MappedBlocksCount>2</MappedBlocksCount>
<BlockMap><Range>0</Range><Range>2</Range></BlockMap></bmap>'
mk_bmap small-1.2.bmap "<bmap version=\"1.2\"><ImageSize> 4096 </ImageSize>
<BlockSize> 4096 </BlockSize><BlocksCount> 1 </BlocksCount>
<MappedBlocksCount> 1 </MappedBlocksCount><BlockMap>
<Range sha1=\"$z40\"> 0-0 </Range></BlockMap></bmap>"
mk_bmap small-1.3.bmap "<bmap version=\"1.3\"><ImageSize>10</ImageSize>
<BlockSize>512</BlockSize><BlocksCount>1</BlocksCount>
<MappedBlocksCount>1</MappedBlocksCount><BmapFileSHA1> $z40 </BmapFileSHA1>
<BlockMap><Range sha1=\"$z40\">0</Range></BlockMap></bmap>"
mk_bmap small-2.0.bmap "<?xml version=\"1.0\"?><bmap version=\"2.0\">
<ImageSize>1048576</ImageSize><BlockSize>65536</BlockSize>
<BlocksCount>16</BlocksCount><MappedBlocksCount>5</MappedBlocksCount>
<ChecksumType>sha256</ChecksumType>
<BmapFileChecksum>$z64</BmapFileChecksum><BlockMap>
<Range chksum=\"$z64\">1-3</Range><Range chksum=\"$z64\"> 9 - 10 </Range>
</BlockMap><!-- a comment --><Extra/></bmap>"
mk_bmap sha1-2.0.bmap "<bmap version='2.0'><ImageSize>0</ImageSize>
<BlockSize>4096</BlockSize><BlocksCount>0</BlocksCount>
<MappedBlocksCount>0</MappedBlocksCount><ChecksumType>sha1</ChecksumType>
<BmapFileChecksum>$z40</BmapFileChecksum><BlockMap/></bmap>"
mk_bmap cdata-1.4.bmap "<bmap version=\"1.4\"><ImageSize><![CDATA[4096]]></ImageSize>
<BlockSize>4&#48;96</BlockSize><BlocksCount>1</BlocksCount>
<MappedBlocksCount>0</MappedBlocksCount><ChecksumType>sha256</ChecksumType>
<BmapFileChecksum>$z64</BmapFileChecksum><BlockMap></BlockMap></bmap>"

# Choices for fuzz_bmap_gen (see there; any bytes make a document): each
# version with a 4096-byte block, digests and eight ranges.
for v in 0 1 2 3 4 5; do
	python3 - "$WORK/gen$v" "$v" <<'EOF'
import sys
v = int(sys.argv[2])
b = bytes([v, 0, 1, 1, 1, 12, 1, 0, 0x10, 0x00, 1, 1, 1, 8])
b += bytes([2, 1, 1, 1, 1] + list(range(32))) * 8
open(sys.argv[1], "wb").write(b + bytes([1]))
EOF
	seed "$WORK/gen$v" fuzz_bmap_gen
done

# ---- compressed images ------------------------------------------------------
# cz NAME "HARNESS..." CMD...: NAME = CMD < image, for fuzz_image and
# each HARNESS.
cz() {
	local name=$1 h=$2
	shift 2
	if "$@" <"$IMG" >"$WORK/$name" 2>/dev/null; then
		# shellcheck disable=SC2086 # a list of names
		seed "$WORK/$name" fuzz_image $h
	else
		echo "make-seeds: '$*' failed, no $name" >&2
	fi
}
GZ=(fuzz_codec_gzip fuzz_codec_gzip_zlib)
if have gzip; then
	cz plain.gz "${GZ[*]}" gzip -9n
	cz fast.gz "${GZ[*]}" gzip -1n
	head -c 3000 "$IMG" | gzip -n >"$WORK/a.gz"
	tail -c 2000 "$IMG" | gzip -n >"$WORK/b.gz"
	cat "$WORK/a.gz" "$WORK/b.gz" >"$WORK/members.gz"
	seed "$WORK/members.gz" fuzz_image "${GZ[@]}"
	: | gzip -n >"$WORK/empty.gz"
	seed "$WORK/empty.gz" "${GZ[@]}"
	head -c 40 "$WORK/plain.gz" >"$WORK/cut.gz"
	seed "$WORK/cut.gz" "${GZ[@]}"
fi
have pigz && cz pigz.gz "${GZ[*]}" pigz -b 32 -n
# gzip header fields the tools rarely write: FEXTRA, FNAME, FCOMMENT, FHCRC.
python3 - "$WORK/fields.gz" <<'EOF'
import sys, zlib, struct
data = b"header fields\n" * 100
hdr = bytearray(b"\x1f\x8b\x08" + bytes([4 | 8 | 16 | 2]) + bytes(6))
hdr += struct.pack("<H", 6) + b"AB\x02\x00hi"
hdr += b"name.img\x00" + b"a comment\x00"
hdr += struct.pack("<H", zlib.crc32(hdr) & 0xFFFF)
c = zlib.compressobj(6, zlib.DEFLATED, -15)
body = c.compress(data) + c.flush()
trailer = struct.pack("<II", zlib.crc32(data), len(data))
open(sys.argv[1], "wb").write(bytes(hdr) + body + trailer)
EOF
seed "$WORK/fields.gz" fuzz_image "${GZ[@]}"

if have xz; then
	cz plain.xz fuzz_codec_xz xz -6
	cz blocks.xz fuzz_codec_xz xz -1 -T2 --block-size=4KiB
	cz nocheck.xz fuzz_codec_xz xz -0 --check=none
	cz sha256.xz fuzz_codec_xz xz -0 --check=sha256
	head -c 100 "$IMG" | xz >"$WORK/c.xz"
	cat "$WORK/c.xz" "$WORK/c.xz" >"$WORK/streams.xz"
	printf '\0\0\0\0' >>"$WORK/streams.xz" # stream padding
	seed "$WORK/streams.xz" fuzz_image fuzz_codec_xz
fi

if have bzip2; then
	cz plain.bz2 fuzz_codec_bzip2 bzip2 -9
	head -c 4000 "$IMG" | bzip2 -1 >"$WORK/d.bz2"
	cat "$WORK/d.bz2" "$WORK/d.bz2" >"$WORK/streams.bz2"
	seed "$WORK/streams.bz2" fuzz_image fuzz_codec_bzip2
	: | bzip2 >"$WORK/empty.bz2"
	seed "$WORK/empty.bz2" fuzz_codec_bzip2
fi
# lbzip2 writes small blocks, several per stream: the parallel decoder's
# block splitting gets work.
have lbzip2 && cz blocks.bz2 fuzz_codec_bzip2 lbzip2 -1 -n1

if have zstd; then
	cz plain.zst fuzz_codec_zstd zstd -q -19
	cz nosize.zst fuzz_codec_zstd zstd -q -1 --no-content-size --no-check
	head -c 500 "$IMG" | zstd -q >"$WORK/e.zst"
	cat "$WORK/e.zst" "$WORK/e.zst" >"$WORK/frames.zst"
	seed "$WORK/frames.zst" fuzz_image fuzz_codec_zstd
	# A skippable frame before a real one.
	{ printf '\x50\x2a\x4d\x18\x04\x00\x00\x00skip'; cat "$WORK/e.zst"; } \
		>"$WORK/skippable.zst"
	seed "$WORK/skippable.zst" fuzz_image fuzz_codec_zstd
fi

if have img2simg; then
	img2simg "$WORK/sparse" "$WORK/sparse.simg" >/dev/null 2>&1 &&
		seed "$WORK/sparse.simg" fuzz_image fuzz_codec_simg
fi
# Every chunk type: RAW, FILL (non-zero and zero), DONT_CARE, CRC32, with a
# header larger than the minimum.
python3 - "$WORK/chunks.simg" <<'EOF'
import sys, struct
bs = 4096
def chunk(kind, blocks, payload):
    return struct.pack("<HHII", kind, 0, blocks, 12 + len(payload)) + payload
chunks = [chunk(0xCAC1, 1, bytes(range(256)) * 16),
          chunk(0xCAC2, 2, b"\xde\xad\xbe\xef"),
          chunk(0xCAC3, 3, b""),
          chunk(0xCAC2, 1, b"\0\0\0\0"),
          chunk(0xCAC4, 0, b"\x12\x34\x56\x78")]
hdr = struct.pack("<IHHHHIIII", 0xED26FF3A, 1, 0, 32, 12, bs, 7,
                  len(chunks), 0) + bytes(4)
open(sys.argv[1], "wb").write(hdr + b"".join(chunks))
EOF
seed "$WORK/chunks.simg" fuzz_image fuzz_codec_simg

# Raw images and formats no codec decodes ("looks like" refusals).
seed "$IMG" fuzz_image
printf '\x04\x22\x4d\x18rest' >"$WORK/lz4-magic"
printf 'PK\x03\x04rest' >"$WORK/zip-magic"
seed "$WORK/lz4-magic" fuzz_image
seed "$WORK/zip-magic" fuzz_image

# ---- discovery: seed byte, IMAGE, NUL, SUFFIX ---------------------------------
n=0
for s in 'disk.img.gz' 'dir/disk.img.xz' '/abs/path.to/image' '.bashrc' \
	'dir/..x.y.z' 'a.b/c' 'http://host/dir/disk.img.zst?token=a.b&x=1' \
	'https://h.example/a.tar.gz#frag.ment' 'ftp://h/x.img?q' \
	'file:///tmp/x.wic.bz2' 'name.' '...' 's3://bucket/key.img.xz?versionId=1'; do
	{
		# shellcheck disable=SC2059 # the format is a \xNN escape
		printf "$(printf '\\x%02x' $((n * 37 % 256)))"
		printf '%s\0.sig' "$s"
	} >"$WORK/path$n"
	seed "$WORK/path$n" fuzz_discover
	n=$((n + 1))
done

# ---- module descriptors: 16-byte records (see fuzz_registry.c), payload ------
# bytes: abi kind(1-3 valid) name desc version prio(4) ops flags present
rec() {
	printf '%b' "$1"
}
{
	rec '\x00\x00\x00\x00\x00\x01\x2a\x2a\x2a\x05\x00\x00\x00\x00\x00\x01'
	rec '\x00\x00\x00\x00\x00\x02\x2b\x2b\x2b\x64\x00\x00\x00\x00\x01\x01'
	rec '\x00\x00\x00\x00\x00\x03\x2c\x2c\x2c\x01\x00\x00\x00\x04\x00\x01'
	printf 'payload: an image'
} >"$WORK/modules-good"
{
	rec '\xff\x02\x00\x00\x00\x01\x2a\x2a\x2a\x00\x00\x00\x00\x00\x00\x01'
	rec '\x00\x00\x00\x00\x00\x04\x2a\x2a\x2a\x00\x00\x00\x00\x00\x00\x01'
	rec '\x00\x00\x00\x00\x00\x01\x00\x2a\x2a\x00\x00\x00\x00\x00\x00\x01'
	rec '\x00\x00\x00\x00\x00\x02\x2a\x2a\x2a\x00\x00\x00\x00\x08\x00\x01'
	rec '\x00\x00\x00\x00\x00\x03\x2a\x2a\x2a\x00\x00\x00\x00\x00\x00\x00'
} >"$WORK/modules-bad"
seed "$WORK/modules-good" fuzz_registry
seed "$WORK/modules-bad" fuzz_registry

for h in "${HARNESSES[@]}"; do
	printf '%s: %s seeds\n' "$h" "$(find "$OUT/$h" -type f | wc -l)"
done
