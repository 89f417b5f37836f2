# `bmaptk copy` of one sparse image compressed by the real tools (gzip, pigz,
# xz, xz -T0, bzip2, pbzip2, lbzip2, zstd -T0, and concatenated members,
# streams and frames), its bmap made by Debian's bmaptool and found by name.
# Each copy must equal the image byte for byte, stay sparse, say how many
# ranges it verified, and print nothing on stdout. Also: stdin, --nobmap,
# --no-verify, a pre-existing destination, and bmap discovery order.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd bmaptool cmp gzip pigz xz bzip2 pbzip2 lbzip2 zstd "$PYTHON"

D=$E2E_TMP/img
mkdir "$D"
IMG=$D/img
# Not a multiple of 4096: the last block is partial and mapped.
SIZE=$((32 * 1024 * 1024 + 1234))
# Fixed seed: random ranges, a text range, explicitly written zeros, a range
# starting mid-block and the image's last bytes.
"$PYTHON" - "$IMG" "$SIZE" <<'EOF' || fail "cannot generate the image"
import os
import random
import sys

MIB = 1024 * 1024
rng = random.Random(20240612)
path, size = sys.argv[1], int(sys.argv[2])
text = b"".join(b"line %d of a compressible range\n" % i
                for i in range(100000))
extents = [
    (0, rng.randbytes(2000000)),
    (8 * MIB, text),
    (20 * MIB + 777, rng.randbytes(1000000)),
    (26 * MIB, bytes(64 * 1024)),
    (size - 13, b"tail-end-data"),
]
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, size)
for off, data in extents:
    assert os.pwrite(fd, data, off) == len(data)
os.fsync(fd)
os.close(fd)
EOF
bmaptool create "$IMG" -o "$IMG.bmap" 2>"$E2E_TMP/bmaptool.err" ||
	fail "bmaptool create: $(cat "$E2E_TMP/bmaptool.err")"
NRANGES=$(grep -c '<Range ' "$IMG.bmap")
MAPPED=$(($(sed -n 's/.*<MappedBlocksCount> *\([0-9]*\).*/\1/p' \
	"$IMG.bmap") * 4096))
[ "$NRANGES" -ge 5 ] || fail "bmaptool made only $NRANGES ranges"
note "image $SIZE bytes, $MAPPED mapped in $NRANGES ranges"

# assert_sparse FILE: FILE has no more blocks allocated than the image has
# mapped bytes, give or take 2 MiB of file system slack.
assert_sparse() {
	local alloc=$(($(stat -c %b "$1") * 512))
	[ "$alloc" -le $((MAPPED + 2 * 1024 * 1024)) ] ||
		fail "$1 is not sparse: $alloc bytes allocated, $MAPPED mapped"
}

# assert_copy OUT: OUT is the image, sparse, and the copy said it verified
# every range.
assert_copy() {
	assert_same_file "$IMG" "$1" "copy"
	assert_sparse "$1"
	assert_contains "$RUN_ERR" ", $NRANGES ranges verified" "summary"
	assert_not_contains "$RUN_ERR" "verification off" "summary"
}

# Compressed images, named so discovery strips one or two extensions to
# reach img.bmap. Halves split inside a mapped range (20 MiB + 100003).
HALF=$((20 * 1024 * 1024 + 100003))
head -c "$HALF" "$IMG" >"$E2E_TMP/a"
tail -c +$((HALF + 1)) "$IMG" >"$E2E_TMP/b"
halves() { # CMD...: compress both halves separately, concatenated
	"$@" <"$E2E_TMP/a" && "$@" <"$E2E_TMP/b"
}
mk() { # FILE CMD...: FILE = CMD < IMG
	local f=$D/$1
	shift
	"$@" <"$IMG" >"$f" || fail "cannot make $f with $*"
}
mk img.gz gzip -c
mk img.pigz.gz pigz -c
halves gzip -c >"$D/img.members.gz" || fail "gzip halves"
mk img.xz xz -c
# -T0 cuts the stream into blocks (3 MiB at -1) for the threaded decoder.
mk img.T0.xz xz -1 -T0 -c
halves xz -1 -c >"$D/img.streams.xz" || fail "xz halves"
mk img.bz2 bzip2 -c
mk img.pbzip2.bz2 pbzip2 -c
mk img.lbzip2.bz2 lbzip2 -c
halves bzip2 -1 -c >"$D/img.streams.bz2" || fail "bzip2 halves"
mk img.zst zstd -q -T0 -c
halves zstd -q -c >"$D/img.frames.zst" || fail "zstd halves"
[ "$(xz --robot -l "$D/img.T0.xz" | awk '$1 == "totals" {print $3}')" \
	-gt 10 ] || fail "xz -T0 made too few blocks"

copy_named() { # FILE: copy $D/FILE into a new file, bmap found by name
	local out=$E2E_TMP/out.$1
	bm 0 copy "$D/$1" "$out"
	assert_contains "$RUN_ERR" "bmap $D/img.bmap: format version 2.0" \
		"discovered bmap"
	assert_copy "$out"
	rm -f "$out"
}
for f in img img.gz img.pigz.gz img.members.gz img.xz img.T0.xz \
	img.streams.xz img.bz2 img.pbzip2.bz2 img.lbzip2.bz2 \
	img.streams.bz2 img.zst img.frames.zst; do
	case_ "$f" copy_named "$f"
done

copy_stdin() { # FILE: the image piped on stdin, with --bmap
	local out=$E2E_TMP/stdin.$1
	bm 0 copy --bmap "$IMG.bmap" - "$out" < <(cat "$D/$1")
	assert_copy "$out"
	rm -f "$out"
}
for f in img img.gz img.xz img.bz2 img.zst img.frames.zst; do
	case_ "stdin $f" copy_stdin "$f"
done

nobmap() { # --nobmap writes the whole image, bmap or not next to it
	local out=$E2E_TMP/nobmap
	bm 0 copy --nobmap "$D/img.zst" "$out"
	assert_same_file "$IMG" "$out" "--nobmap copy"
	assert_contains "$RUN_ERR" "verification off" "--nobmap summary"
	assert_not_contains "$RUN_ERR" "img.bmap" "--nobmap used a bmap"
	rm -f "$out"
	# From a pipe the size is known only at the end.
	bm 0 copy --nobmap - "$out" < <(cat "$D/img.xz")
	assert_same_file "$IMG" "$out" "--nobmap copy from stdin"
}
case_ "--nobmap" nobmap

no_verify() {
	local out=$E2E_TMP/noverify
	bm 0 copy --no-verify "$D/img.gz" "$out"
	assert_same_file "$IMG" "$out" "--no-verify copy"
	assert_sparse "$out"
	assert_contains "$RUN_ERR" "(verification off)" "--no-verify summary"
}
case_ "--no-verify" no_verify

quiet() { # -q: nothing at all on success
	local out=$E2E_TMP/quiet
	bm 0 -q copy "$D/img.xz" "$out"
	assert_eq "" "$RUN_ERR" "stderr of bmaptk -q copy"
	assert_same_file "$IMG" "$out" "-q copy"
}
case_ "-q" quiet

existing_dest() { # a bigger file full of random bytes is replaced
	local out=$E2E_TMP/existing
	head -c $((SIZE + 5000000)) /dev/urandom >"$out"
	bm 0 copy "$D/img.zst" "$out"
	assert_copy "$out"
}
case_ "existing destination" existing_dest

discovery_order() {
	local d=$E2E_TMP/disc
	mkdir "$d"
	# IMAGE.bmap wins over the stripped names.
	cp "$D/img.gz" "$IMG.bmap" "$d/"
	mv "$d/img.bmap" "$d/img.gz.bmap"
	echo "not a bmap" >"$d/img.bmap"
	bm 0 copy "$d/img.gz" "$d/out1"
	assert_contains "$RUN_ERR" "bmap $d/img.gz.bmap:" "discovered bmap"
	assert_same_file "$IMG" "$d/out1"
	# Two extensions stripped: disk.img.gz -> disk.bmap.
	cp "$D/img.gz" "$d/disk.img.gz"
	cp "$IMG.bmap" "$d/disk.bmap"
	bm 0 copy "$d/disk.img.gz" "$d/out2"
	assert_contains "$RUN_ERR" "bmap $d/disk.bmap:" "discovered bmap"
	assert_same_file "$IMG" "$d/out2"
}
case_ "discovery order" discovery_order

cases_done "all cases passed"
