# `bmaptk pack`: packed images (docs/pack.md) read back by the real tools.
# A sparse image with random and text-like data, holes, a data run across
# chunk boundaries and a last partial chunk is packed; then `zstd -t` and
# `zstd -dc` must accept it and give the image, the bmap frame and zstd's
# seek table must parse and agree (a python reader of the layout), every
# range of the bmap must lie inside one chunk with the SHA-256 of its
# bytes, the embedded bmap must equal the sidecar, and Debian's bmaptool
# must copy the image with the sidecar. Also: --chunk 64K and 4M, -l 19,
# an all-hole image and a 0-byte one, a bmap given with --bmap (split and
# hashed again) and a signed one embedded byte for byte, the refusals
# (unsplit signed bmap, a bmap of another image, compressed image, OUT =
# IMAGE, an OUT that is not a zstd file, bad options) and SIGINT, which
# must leave no OUT and no temporary file.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd zstd cmp gzip "$PYTHON"

T=$E2E_TMP
MIB=$((1024 * 1024))
IMG=$T/a.img
SIZE=$((12 * MIB + 1234)) # 13 chunks of 1 MiB, the last 1234 bytes

"$PYTHON" - "$IMG" "$SIZE" <<'EOF' || fail "cannot generate the image"
import os
import random
import sys

MIB = 1024 * 1024
rng = random.Random(20250101)
path, size = sys.argv[1], int(sys.argv[2])
words = [b"kernel", b"module", b"usr/lib", b"libc.so.6", b"#include",
         b"return", b"config", b"0x%08x", b"systemd", b"\n", b"  "]
text = b" ".join(rng.choice(words) for _ in range(600000))
extents = [
    (0, rng.randbytes(300000)),
    (3 * MIB - 5000, text[:5 * MIB // 2]),  # across 3, 4 and 5 MiB
    (7 * MIB, rng.randbytes(MIB)),  # exactly chunk 7
    (9 * MIB + 3 * 4096 + 100, text[:5000]),
    (size - 100, b"the image's last bytes" * 4 + b"-end-of-image-" * 1),
]
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, size)
for off, data in extents:
    assert os.pwrite(fd, data[:size - off], off) == min(len(data), size - off)
os.fsync(fd)
os.close(fd)
EOF

# pack_check OUT IMAGE CHUNK: read OUT's layout as docs/pack.md has it and
# check it against IMAGE: the bmap frame's fields, the seek table (entry 0
# the bmap frame, sizes adding up to the file), each chunk's frame header
# (content size, checksum flag), identical hole frames, every range inside
# one chunk with its bytes' SHA-256. Writes the embedded bmap and
# signature to OUT.embedded and OUT.embedded.sig; prints "N chunks, D with
# data, R ranges".
pack_check() {
	"$PYTHON" - "$@" <<'EOF'
import hashlib
import os
import re
import struct
import sys

out, image, chunk = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = open(out, "rb").read()
size = os.path.getsize(image)


def fail(msg):
    sys.exit("pack_check: %s: %s" % (out, msg))


def u32(off):
    return struct.unpack_from("<I", data, off)[0]


if len(data) < 48 + 17 or u32(0) != 0x184D2A5B:
    fail("does not start with the bmap frame (skippable 0x184D2A5B)")
payload = u32(4)
if data[8:16] != b"BMAPTKPK":
    fail("no BMAPTKPK tag")
version, csize = struct.unpack_from("<II", data, 16)
(isize,) = struct.unpack_from("<Q", data, 24)
n, blen, slen, flags = struct.unpack_from("<IIII", data, 32)
want_n = (size + chunk - 1) // chunk
if (version, csize, isize, n, flags) != (1, chunk, size, want_n, 0):
    fail("header (version, chunk, size, n, flags) = %s, expected %s"
         % ((version, csize, isize, n, flags), (1, chunk, size, want_n, 0)))
if payload != 40 + 4 * n + blen + slen:
    fail("bmap frame payload %d, its parts add up to %d"
         % (payload, 40 + 4 * n + blen + slen))
index = struct.unpack_from("<%dI" % n, data, 48)
at = 48 + 4 * n
bmap = data[at:at + blen]
sig = data[at + blen:at + blen + slen]
open(out + ".embedded", "wb").write(bmap)
open(out + ".embedded.sig", "wb").write(sig)
bframe = 8 + payload

nent, desc, magic = struct.unpack("<IBI", data[-9:])
if magic != 0x8F92EAB1 or desc != 0 or nent != n + 1:
    fail("seek table footer: %d entries, descriptor %d, magic %#x"
         % (nent, desc, magic))
st_len = 8 + 8 * nent + 9
st_off = len(data) - st_len
if u32(st_off) != 0x184D2A5E or u32(st_off + 4) != 8 * nent + 9:
    fail("no seek table frame at %d" % st_off)
ent = [struct.unpack_from("<II", data, st_off + 8 + 8 * i)
       for i in range(nent)]
if ent[0] != (bframe, 0):
    fail("seek table entry 0 is %s, not the bmap frame (%d, 0)"
         % (ent[0], bframe))
if sum(c for c, _ in ent) != st_off:
    fail("compressed sizes add up to %d, the seek table is at %d"
         % (sum(c for c, _ in ent), st_off))

bs = int(re.search(rb"<BlockSize>\s*(\d+)", bmap).group(1))
if int(re.search(rb"<ImageSize>\s*(\d+)", bmap).group(1)) != size:
    fail("the bmap's ImageSize is not the image's")
ranges = [(int(a), int(b or a), c.decode()) for c, a, b in re.findall(
    rb'<Range chksum="([0-9a-f]{64})">\s*(\d+)(?:\s*-\s*(\d+))?\s*</Range>',
    bmap)]
if len(ranges) != len(re.findall(rb"<Range", bmap)):
    fail("a range without a SHA-256")
img = open(image, "rb")
data_chunks = set()
for first, last, digest in ranges:
    off, end = first * bs, min((last + 1) * bs, size)
    if off // chunk != (end - 1) // chunk:
        fail("range %d-%d crosses a chunk boundary" % (first, last))
    data_chunks.add(off // chunk)
    img.seek(off)
    if hashlib.sha256(img.read(end - off)).hexdigest() != digest:
        fail("range %d-%d: wrong SHA-256" % (first, last))

off = bframe
holes = {}
for c in range(n):
    clen = min(chunk, size - c * chunk)
    if ent[c + 1] != (index[c], clen):
        fail("chunk %d: seek table %s, index (%d, %d)"
             % (c, ent[c + 1], index[c], clen))
    frame = data[off:off + index[c]]
    if u32(off) != 0xFD2FB528:
        fail("chunk %d: no zstd frame at %d" % (c, off))
    fhd = frame[4]
    single, fcs_flag = (fhd >> 5) & 1, fhd >> 6
    if not (fhd >> 2) & 1:
        fail("chunk %d: no content checksum" % c)
    pos = 5 + (0 if single else 1) + [0, 1, 2, 4][fhd & 3]
    fcs_len = [1 if single else 0, 2, 4, 8][fcs_flag]
    if not fcs_len:
        fail("chunk %d: no content size" % c)
    fcs = int.from_bytes(frame[pos:pos + fcs_len], "little")
    fcs += 256 if fcs_len == 2 else 0
    if fcs != clen:
        fail("chunk %d: content size %d, not %d" % (c, fcs, clen))
    if c not in data_chunks:
        holes.setdefault(clen, set()).add(frame)
    off += index[c]
if off != st_off:
    fail("the frames end at %d, the seek table starts at %d" % (off, st_off))
for clen, frames in holes.items():
    if len(frames) != 1:
        fail("%d different frames for holes of %d bytes" % (len(frames), clen))
print("%d chunks, %d with data, %d ranges" % (n, len(data_chunks),
                                               len(ranges)))
EOF
}

# round_trip OUT IMAGE CHUNK: zstd accepts OUT and gives IMAGE, its layout
# checks out, and the embedded bmap is the sidecar (a valid bmap).
round_trip() {
	local out=$1 image=$2 chunk=$3
	zstd -q -t "$out" 2>"$T/zstd.err" ||
		fail "zstd -t $out: $(cat "$T/zstd.err")"
	zstd -q -dc "$out" | cmp - "$image" ||
		fail "zstd -dc $out is not $image"
	PACKED=$(pack_check "$out" "$image" "$chunk") || fail "layout of $out"
	assert_same_file "$out.bmap" "$out.embedded" "embedded bmap vs sidecar"
	bmap_check_self "$out.bmap" || fail "$out.bmap: bad file checksum"
}

# The main image, default chunk (1 MiB) and level.
basic() {
	local f
	bm 0 pack "$IMG"
	assert_contains "$RUN_ERR" "packed $IMG into $IMG.zst: 12.0 MiB image," \
		"summary"
	assert_contains "$RUN_ERR" "chunks of 1.0 MiB" "summary"
	round_trip "$IMG.zst" "$IMG" "$MIB"
	assert_eq "13 chunks, 8 with data, 8 ranges" "$PACKED" "layout"
	assert_contains "$RUN_ERR" "mapped in 8 chunks" "summary"
	[ "$(stat -c %s "$IMG.zst.embedded.sig")" = 0 ] ||
		fail "an unsigned pack carries a signature"
	assert_no_file "$IMG.zst.bmap.asc" "signature sidecar"
	for f in "$T"/*.zst.??????; do
		[ -e "$f" ] && fail "a temporary file is left: $f"
	done
	# Packing again replaces the packed image and its sidecar.
	bm 0 pack -q "$IMG"
	assert_eq "" "$RUN_ERR" "-q"
	round_trip "$IMG.zst" "$IMG" "$MIB"
	if command -v bmaptool >/dev/null 2>&1; then
		run bmaptool copy --bmap "$IMG.zst.bmap" "$IMG.zst" "$T/bt.out"
		assert_rc 0 "bmaptool copy of the packed image"
		assert_same_file "$IMG" "$T/bt.out" "bmaptool copy"
		rm -f "$T/bt.out"
	else
		skip_case "bmaptool is not installed"
	fi
}
case_ "pack, zstd -t/-dc, layout, bmaptool copy" basic

chunks() {
	local c
	for c in 64K:65536 4M:$((4 * MIB)); do
		bm 0 pack --chunk "${c%%:*}" "$IMG" -o "$T/c.zst"
		round_trip "$T/c.zst" "$IMG" "${c#*:}"
		note "--chunk ${c%%:*}: $PACKED"
	done
	bm 0 pack --chunk 65536 --no-sidecar "$IMG" -o "$T/nos.zst"
	assert_no_file "$T/nos.zst.bmap" "--no-sidecar"
	zstd -q -dc "$T/nos.zst" | cmp - "$IMG" || fail "--no-sidecar: content"
	pack_check "$T/nos.zst" "$IMG" 65536 >/dev/null || fail "--no-sidecar"
}
case_ "--chunk 64K and 4M, --no-sidecar" chunks

levels() {
	local l3 l19
	bm 0 pack "$IMG" -o "$T/l3.zst"
	bm 0 pack -l 19 "$IMG" -o "$T/l19.zst"
	round_trip "$T/l19.zst" "$IMG" "$MIB"
	bm 0 pack --level=1 "$IMG" -o "$T/l1.zst"
	round_trip "$T/l1.zst" "$IMG" "$MIB"
	bm 0 pack -l -5 "$IMG" -o "$T/lfast.zst"
	round_trip "$T/lfast.zst" "$IMG" "$MIB"
	l3=$(stat -c %s "$T/l3.zst")
	l19=$(stat -c %s "$T/l19.zst")
	[ "$l19" -lt "$l3" ] || fail "-l 19 ($l19 bytes) is not smaller than -l 3 ($l3)"
	[ "$(stat -c %s "$T/lfast.zst")" -gt "$l3" ] ||
		fail "-l -5 is not bigger than -l 3"
}
case_ "-l 19, 1, -5" levels

# Holes only, with a last partial chunk; and a 0-byte image.
empty_images() {
	truncate -s $((5 * MIB + 3 * 4096)) "$T/holes.img"
	bm 0 pack "$T/holes.img"
	round_trip "$T/holes.img.zst" "$T/holes.img" "$MIB"
	assert_eq "6 chunks, 0 with data, 0 ranges" "$PACKED" "all holes"
	[ "$(stat -c %s "$T/holes.img.zst")" -lt 4096 ] ||
		fail "an all-hole image packs into $(stat -c %s "$T/holes.img.zst") bytes"
	: >"$T/zero.img"
	bm 0 pack "$T/zero.img"
	round_trip "$T/zero.img.zst" "$T/zero.img" "$MIB"
	assert_eq "0 chunks, 0 with data, 0 ranges" "$PACKED" "0 bytes"
}
case_ "all-hole and 0-byte images" empty_images

# --bmap: a bmap made by bmaptool (ranges across chunks) is split and
# hashed again; a bmap of the same image made by bmaptk create --split is
# too, and a bmap of another image of the same size is refused.
given_bmap() {
	local other=$T/other.img
	"$BMAPTK" create "$IMG" -o "$T/plain.bmap" 2>/dev/null ||
		fail "bmaptk create"
	bm 0 pack "$IMG" --bmap "$T/plain.bmap" -o "$T/g.zst"
	round_trip "$T/g.zst" "$IMG" "$MIB"
	assert_eq "13 chunks, 8 with data, 8 ranges" "$PACKED" "--bmap"
	if command -v bmaptool >/dev/null 2>&1; then
		bmaptool create "$IMG" -o "$T/bt.bmap" 2>/dev/null ||
			fail "bmaptool create"
		bm 0 pack "$IMG" --bmap "$T/bt.bmap" -o "$T/g.zst"
		round_trip "$T/g.zst" "$IMG" "$MIB"
	fi
	# Another image, the same size and holes, one byte changed in a
	# range that lies inside a chunk (7 MiB + 10).
	cp --sparse=always "$IMG" "$other"
	printf 'X' | dd of="$other" bs=1 seek=$((7 * MIB + 10)) conv=notrunc \
		status=none
	"$BMAPTK" create --split 1M "$other" -o "$T/other.bmap" 2>/dev/null ||
		fail "bmaptk create other"
	bm 1 pack "$IMG" --bmap "$T/other.bmap" -o "$T/bad.zst"
	assert_contains "$RUN_ERR" "$T/other.bmap does not describe $IMG: range" \
		"a bmap of another image"
	assert_contains "$RUN_ERR" "differs" "a bmap of another image"
	assert_no_file "$T/bad.zst"
	assert_no_file "$T/bad.zst.bmap"
	# Another size.
	truncate -s 4M "$T/small.img"
	"$BMAPTK" create "$T/small.img" -o "$T/small.bmap" 2>/dev/null
	bm 2 pack "$IMG" --bmap "$T/small.bmap" -o "$T/bad.zst"
	assert_contains "$RUN_ERR" "describes an image of 4194304 bytes" "size"
	assert_no_file "$T/bad.zst"
	# A bmap with no checksums is hashed.
	"$BMAPTK" create --no-checksum "$IMG" -o "$T/nock.bmap" 2>/dev/null
	bm 0 pack "$IMG" --bmap "$T/nock.bmap" -o "$T/g.zst"
	round_trip "$T/g.zst" "$IMG" "$MIB"
	# The sidecar would replace the --bmap input: refused.
	cp "$T/plain.bmap" "$T/h.zst.bmap"
	bm 2 pack "$IMG" --bmap "$T/h.zst.bmap" -o "$T/h.zst"
	assert_contains "$RUN_ERR" "is the bmap being packed" "sidecar = BMAP"
	assert_same_file "$T/plain.bmap" "$T/h.zst.bmap" "the --bmap input"
	assert_no_file "$T/h.zst"
}
case_ "--bmap: split and hashed, another image, another size" given_bmap

# A signed bmap, embedded byte for byte with its signature.
signed() {
	local gh=$T/gnupg
	if [ ! -x /usr/bin/gpg ]; then
		skip_case "gpg is not installed"
		return 0
	fi
	mkdir -m 700 "$gh"
	on_exit "/usr/bin/gpgconf --homedir '$gh' --kill all"
	export GNUPGHOME=$gh
	/usr/bin/gpg --batch --passphrase '' --quick-gen-key \
		"Pat Packer <pat@example.org>" future-default default 1y \
		>"$T/gen.log" 2>&1 || fail "gpg: $(cat "$T/gen.log")"
	"$BMAPTK" create --split 1M "$IMG" -o "$T/s.bmap" 2>/dev/null ||
		fail "bmaptk create --split"
	/usr/bin/gpg --batch --yes --armor --detach-sign --output \
		"$T/s.bmap.asc" "$T/s.bmap" >"$T/sign.log" 2>&1 ||
		fail "gpg --detach-sign: $(cat "$T/sign.log")"
	bm 0 pack "$IMG" --bmap "$T/s.bmap" --bmap-sig "$T/s.bmap.asc" \
		-o "$T/s.zst"
	round_trip "$T/s.zst" "$IMG" "$MIB"
	assert_same_file "$T/s.bmap" "$T/s.zst.embedded" "embedded signed bmap"
	assert_same_file "$T/s.bmap.asc" "$T/s.zst.embedded.sig" \
		"embedded signature"
	assert_same_file "$T/s.bmap.asc" "$T/s.zst.bmap.asc" "signature sidecar"
	/usr/bin/gpg --batch --verify "$T/s.zst.embedded.sig" \
		"$T/s.zst.embedded" >"$T/verify.log" 2>&1 ||
		fail "the embedded signature does not verify: $(cat "$T/verify.log")"
	# The inputs may be the sidecars themselves: left as they are.
	cp "$T/s.bmap" "$T/t.zst.bmap"
	cp "$T/s.bmap.asc" "$T/t.zst.bmap.asc"
	bm 0 pack "$IMG" --bmap "$T/t.zst.bmap" --bmap-sig "$T/t.zst.bmap.asc" \
		-o "$T/t.zst"
	round_trip "$T/t.zst" "$IMG" "$MIB"
	assert_same_file "$T/s.bmap.asc" "$T/t.zst.embedded.sig" "t.zst"
	# An unsigned pack over a signed one: the old signature is stale.
	bm 0 pack "$IMG" -o "$T/s.zst"
	assert_contains "$RUN_ERR" "$T/s.zst.bmap.asc: left from before" \
		"stale signature"
	# Unsplit: refused, it cannot be split without breaking the signature.
	"$BMAPTK" create "$IMG" -o "$T/u.bmap" 2>/dev/null
	/usr/bin/gpg --batch --yes --armor --detach-sign --output \
		"$T/u.bmap.asc" "$T/u.bmap" >/dev/null 2>&1
	bm 2 pack "$IMG" --bmap "$T/u.bmap" --bmap-sig "$T/u.bmap.asc" \
		-o "$T/u.zst"
	assert_contains "$RUN_ERR" \
		"$T/u.bmap: its ranges cross the 1M grid; make it with \`bmaptk create --split 1M\`, then sign it" \
		"unsplit signed bmap"
	assert_no_file "$T/u.zst"
	bm 2 pack "$IMG" --bmap "$T/s.bmap" --bmap-sig "$T/s.bmap.asc" \
		--chunk 64K -o "$T/u.zst"
	assert_contains "$RUN_ERR" "cross the 64K grid" "other chunk size"
	# Signed, of another image: the digests differ.
	cp --sparse=always "$IMG" "$T/o.img"
	printf 'Y' | dd of="$T/o.img" bs=1 seek=$((3 * MIB + 77)) \
		conv=notrunc status=none
	bm 1 pack "$T/o.img" --bmap "$T/s.bmap" --bmap-sig "$T/s.bmap.asc" \
		-o "$T/u.zst"
	assert_contains "$RUN_ERR" "$T/s.bmap does not describe $T/o.img: range" \
		"signed bmap of another image"
	assert_no_file "$T/u.zst"
	bm 2 pack "$IMG" --bmap-sig "$T/s.bmap.asc" -o "$T/u.zst"
	assert_contains "$RUN_ERR" "--bmap-sig needs --bmap" "--bmap-sig alone"
}
case_ "--bmap with --bmap-sig: embedded byte for byte" signed

refusals() {
	local d=$T/ref dev='' rdev=''
	mkdir "$d"
	gzip -c "$IMG" >"$d/a.img.gz"
	bm 2 pack "$d/a.img.gz"
	assert_contains "$RUN_ERR" "$d/a.img.gz: the image is compressed (gzip)" \
		"gzip image"
	bm 2 pack "$IMG.zst" -o "$d/x.zst"
	assert_contains "$RUN_ERR" "the image is compressed (zstd)" "packed image"
	bm 2 pack "$IMG.zst.bmap" -o "$d/x.zst"
	assert_contains "$RUN_ERR" "this is a bmap file, not an image" "bmap"
	cp --sparse=always "$IMG" "$d/b.img"
	bm 2 pack "$d/b.img" -o "$d/b.img"
	assert_contains "$RUN_ERR" "is the image itself" "OUT = IMAGE"
	assert_same_file "$IMG" "$d/b.img" "the image after OUT = IMAGE"
	echo "precious notes" >"$d/notes.txt"
	bm 2 pack "$d/b.img" -o "$d/notes.txt"
	assert_contains "$RUN_ERR" "exists and is not a zstd file" "non-zstd OUT"
	assert_eq "precious notes" "$(cat "$d/notes.txt")" "non-zstd OUT"
	echo "not a bmap" >"$d/c.zst.bmap"
	bm 2 pack "$d/b.img" -o "$d/c.zst"
	assert_contains "$RUN_ERR" "$d/c.zst.bmap: exists and is not a bmap" \
		"non-bmap sidecar"
	assert_no_file "$d/c.zst"
	mkfifo "$d/fifo"
	bm 2 pack "$d/fifo" -o "$d/f.zst"
	assert_contains "$RUN_ERR" "not a regular file or a block device" "FIFO"
	bm 2 pack "$d/missing.img"
	bm 2 pack "$d/b.img" --bmap "$d/missing.bmap" -o "$d/m.zst"
	for c in 1000 32K 512M 66K; do
		bm 2 pack --chunk "$c" "$d/b.img" -o "$d/m.zst"
		assert_contains "$RUN_ERR" "--chunk $c" "--chunk $c"
	done
	for l in 0 20 x 3x; do
		bm 2 pack -l "$l" "$d/b.img" -o "$d/m.zst"
		assert_contains "$RUN_ERR" "-l $l" "-l $l"
	done
	bm 2 pack
	bm 2 pack "$d/b.img" "$d/b.img"
	assert_dir_entries "$d" "a.img.gz
b.img
c.zst.bmap
fifo
notes.txt" "after the refusals"
	# A block device: only with a bmap.
	if [ "$(id -u)" = 0 ] && e2e_losetup dev -r "$IMG"; then
		bm 2 pack "$dev" -o "$d/dev.zst"
		assert_contains "$RUN_ERR" "a block device has no holes" "device"
		"$BMAPTK" create "$IMG" -o "$d/dev.bmap" 2>/dev/null
		bm 2 pack "$dev" --bmap "$d/dev.bmap" -o "$d/dev.zst"
		# A loop device rounds the size down to 512 bytes.
		assert_contains "$RUN_ERR" "describes an image of $SIZE bytes" \
			"device size"
		truncate -s $((12 * MIB + 4096)) "$d/r.img"
		dd if="$IMG" of="$d/r.img" conv=notrunc,sparse bs=64K \
			status=none
		"$BMAPTK" create "$d/r.img" -o "$d/r.bmap" 2>/dev/null
		e2e_losetup rdev -r "$d/r.img" || fail "losetup"
		bm 0 pack "$rdev" --bmap "$d/r.bmap" -o "$d/dev.zst"
		round_trip "$d/dev.zst" "$d/r.img" "$MIB"
	else
		skip_case "block device IMAGE: needs root and a loop device"
	fi
}
case_ "refusals: compressed, OUT = IMAGE, non-zstd OUT, bad options" refusals

# SIGINT mid-pack: 1 GiB of preallocated blocks (FIEMAP maps them,
# reading them costs no I/O) at -l 19 take seconds.
sigint() {
	local d=$T/int pid rc=0 i err
	mkdir "$d"
	if ! fallocate -l 1G "$T/big.img" 2>/dev/null; then
		skip_case "SIGINT: cannot preallocate 1 GiB in $T"
		return 0
	fi
	env --default-signal=INT "$BMAPTK" pack -l 19 "$T/big.img" \
		-o "$d/big.zst" >"$T/int.out" 2>"$T/int.err" &
	pid=$!
	for ((i = 0; i < 500; i++)); do
		[ -n "$(ls -A "$d")" ] && break
		sleep 0.01
	done
	sleep 0.3
	kill -INT "$pid" 2>/dev/null || fail "pack ended before SIGINT"
	for ((i = 0; i < 500; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.01
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid"
		fail "pack still runs 5 s after SIGINT"
	fi
	wait "$pid" || rc=$?
	err=$(cat "$T/int.err")
	assert_eq 130 "$rc" "pack interrupted by SIGINT; stderr [$err]"
	assert_eq "" "$(cat "$T/int.out")" "SIGINT: stdout"
	assert_not_contains "$err" "Sanitizer" "SIGINT: stderr"
	assert_contains "$err" "interrupted after packing" "SIGINT: stderr"
	assert_contains "$err" "no $d/big.zst written" "SIGINT: stderr"
	assert_dir_entries "$d" "" "after SIGINT"
	note "SIGINT: stopped within $((i * 10)) ms"
	rm -f "$T/big.img"
}
case_ "SIGINT leaves no OUT and no temporary file" sigint

cases_done "pack: all cases passed"
