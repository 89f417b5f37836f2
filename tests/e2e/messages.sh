# Messages that name the real problem, and refusals before the first write:
#   - a missing image (a typo, a URL that answers 404) is said to be missing,
#     not "bmap file not found"; copy keeps the exit code of a missing image
#     (2 for a local file, 3 for a URL, as with --nobmap); `check`, which
#     takes no --nobmap, does not suggest it;
#   - --bmap given something else (a compressed image, an Android sparse
#     image, a raw disk image, small or over the 256 MiB bmap limit) says
#     what it looks like;
#   - a bmap of another image is refused, exit 2 and nothing written, where
#     the image's size is known before decoding: a raw file larger or
#     smaller than ImageSize, an Android sparse image's header, a
#     single-frame zstd file's content size, a multi-frame one's first
#     frame when it alone is too large (a legitimate multi-frame file is
#     still copied), a local xz file's index (every stream's: a multi-stream
#     file of the right size is copied; a truncated one is not refused for
#     its size but fails as truncated);
#   - a checksum mismatch in the first range asks whether the bmap belongs
#     to the image; one in a later range does not.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd cmp gzip xz bzip2 zstd truncate "$PYTHON"

MIB=$((1024 * 1024))
D=$E2E_TMP/d
mkdir "$D"
e2e_ramdir OUT

# mkimg PATH SIZE SEED: random data at 0, 3 MiB and the last 5000 bytes.
mkimg() {
	"$PYTHON" - "$@" <<'EOF' || fail "cannot generate $1"
import os
import random
import sys

MIB = 1024 * 1024
path, size, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, size)
for off, n in [(0, 300000), (3 * MIB, 200000), (size - 5000, 5000)]:
    assert os.pwrite(fd, rng.randbytes(n), off) == n
os.close(fd)
EOF
	"$BMAPTK" create "$1" -o "$1.bmap" 2>"$E2E_TMP/create.err" ||
		fail "bmaptk create: $(cat "$E2E_TMP/create.err")"
}

IMG=$D/disk.img # 16 MiB, and its bmap
SMALL=$D/small.img # 8 MiB, another image
mkimg "$IMG" $((16 * MIB)) 1
mkimg "$SMALL" $((8 * MIB)) 2
xz -k -T1 "$IMG" && gzip -k "$IMG" && bzip2 -k "$IMG" && zstd -q -k "$IMG" ||
	fail "cannot compress the image"

# --- a missing image ---------------------------------------------------------
missing_local() {
	bm 2 copy "$D/dsk.img.xz" "$OUT/typo"
	assert_contains "$RUN_ERR" "error: $D/dsk.img.xz: no such file" "typo"
	assert_not_contains "$RUN_ERR" "bmap file not found" "typo"
	assert_no_file "$OUT/typo" "DEST of a missing image"
	bm 2 check "$D/dsk.img.xz" "$IMG"
	assert_contains "$RUN_ERR" "error: $D/dsk.img.xz: no such file" \
		"check of a typo"
	assert_not_contains "$RUN_ERR" "bmap file not found" "check of a typo"
}
case_ "a missing local image" missing_local

# An image that is there but has no bmap: still "bmap file not found", with
# --nobmap suggested by copy only.
no_bmap() {
	cp "$SMALL" "$D/lonely.img"
	bm 2 copy "$D/lonely.img" "$OUT/lonely"
	assert_contains "$RUN_ERR" \
		"error: $D/lonely.img: bmap file not found (tried $D/lonely.img.bmap and the names without its extensions); give one with --bmap, or use --nobmap to flash without bmap" \
		"copy without a bmap"
	assert_no_file "$OUT/lonely" "DEST without a bmap"
	bm 2 check "$D/lonely.img" "$SMALL"
	assert_contains "$RUN_ERR" \
		"error: $D/lonely.img: bmap file not found (tried $D/lonely.img.bmap and the names without its extensions); give one with --bmap" \
		"check without a bmap"
	assert_not_contains "$RUN_ERR" "--nobmap" "check without a bmap"
}
case_ "no bmap next to the image" no_bmap

missing_url() {
	local h
	SERVER=$(dirname "$0")/remote_server.py
	unset http_proxy https_proxy HTTPS_PROXY all_proxy ALL_PROXY \
		no_proxy NO_PROXY
	start_server http
	h=http://127.0.0.1:$PORT_http
	# The code of a 404 image with --nobmap, and its message.
	bm 3 copy --nobmap "$h/nope.img.xz" "$OUT/url"
	bm 3 copy "$h/nope.img.xz" "$OUT/url"
	assert_contains "$RUN_ERR" "error: $h/nope.img.xz: HTTP error 404 Not Found" \
		"404 image"
	assert_not_contains "$RUN_ERR" "bmap file not found" "404 image"
	assert_no_file "$OUT/url" "DEST of a 404 image"
	bm 3 check "$h/nope.img.xz" "$IMG"
	assert_contains "$RUN_ERR" "error: $h/nope.img.xz: HTTP error 404 Not Found" \
		"check of a 404 image"
	# There, without a bmap: the bmap is what is missing.
	cp "$SMALL" "$D/lonely2.img"
	bm 2 copy "$h/lonely2.img" "$OUT/url"
	assert_contains "$RUN_ERR" "error: $h/lonely2.img: bmap file not found" \
		"image at a URL without a bmap"
	assert_no_file "$OUT/url" "DEST without a bmap"
}
case_ "an image URL that answers 404" missing_url

# --- --bmap given the wrong file -------------------------------------------
not_a_bmap() {
	local f like
	"$BMAPTK" copy --nobmap "$IMG" "$D/disk.simg" 2>"$E2E_TMP/simg.err" ||
		fail "cannot make an Android sparse image: $(cat "$E2E_TMP/simg.err")"
	for f in disk.img.xz:"xz data" disk.img.gz:"gzip data" \
		disk.img.bz2:"bzip2 data" disk.img.zst:"zstd data" \
		disk.simg:"an Android sparse image" disk.img:"a disk image"; do
		like=${f#*:}
		f=${f%%:*}
		bm 2 copy --bmap "$D/$f" "$D/disk.img.xz" "$OUT/wrong"
		assert_contains "$RUN_ERR" \
			"error: $D/$f is not a bmap (it looks like $like); --bmap takes the .bmap file" \
			"--bmap $f"
		assert_no_file "$OUT/wrong" "DEST with --bmap $f"
		bm 2 check --bmap "$D/$f" "$D/disk.img.xz" "$IMG"
		assert_contains "$RUN_ERR" \
			"error: $D/$f is not a bmap (it looks like $like); --bmap takes the .bmap file" \
			"check --bmap $f"
	done
	# Over the bmap size limit: still what it is (a sparse file).
	truncate -s $((300 * MIB)) "$D/huge.img"
	bm 2 copy --bmap "$D/huge.img" "$IMG" "$OUT/wrong"
	assert_contains "$RUN_ERR" \
		"error: $D/huge.img is not a bmap (it looks like a disk image); --bmap takes the .bmap file" \
		"--bmap of a large image"
	assert_no_file "$OUT/wrong" "DEST with --bmap of a large image"
	# A discovered "bmap" that is not one: no --bmap advice.
	cp "$SMALL" "$D/other.img"
	gzip -c "$SMALL" >"$D/other.img.bmap"
	bm 2 copy "$D/other.img" "$OUT/wrong"
	assert_contains "$RUN_ERR" \
		"error: $D/other.img.bmap is not a bmap (it looks like gzip data)" \
		"discovered non-bmap"
	assert_not_contains "$RUN_ERR" "--bmap takes" "discovered non-bmap"
	assert_no_file "$OUT/wrong" "DEST with a discovered non-bmap"
}
case_ "--bmap given the wrong kind of file" not_a_bmap

# --- a bmap of another image --------------------------------------------------
wrong_size() {
	local out=$OUT/size
	# Raw, larger than ImageSize (smaller with all mapped data: likewise).
	bm 2 copy --bmap "$SMALL.bmap" "$IMG" "$out"
	assert_contains "$RUN_ERR" \
		"error: $SMALL.bmap describes a 8.0 MiB image, $IMG holds 16.0 MiB" \
		"raw image larger than its bmap"
	assert_no_file "$out" "DEST of a raw image larger than its bmap"
	cp "$SMALL" "$D/plus1.img"
	printf x >>"$D/plus1.img"
	bm 2 copy --bmap "$SMALL.bmap" "$D/plus1.img" "$out"
	assert_contains "$RUN_ERR" \
		"error: $SMALL.bmap describes a $((8 * MIB))-byte image, $D/plus1.img holds $((8 * MIB + 1)) bytes" \
		"raw image one byte larger"
	assert_no_file "$out" "DEST of a raw image one byte larger"
	# Android sparse: its header gives its size.
	"$BMAPTK" copy "$SMALL" "$D/small.simg" 2>"$E2E_TMP/simg.err" ||
		fail "cannot make an Android sparse image: $(cat "$E2E_TMP/simg.err")"
	bm 2 copy --bmap "$IMG.bmap" "$D/small.simg" "$out"
	assert_contains "$RUN_ERR" \
		"error: $IMG.bmap describes a 16.0 MiB image, $D/small.simg holds 8.0 MiB" \
		"Android sparse image smaller than its bmap"
	assert_no_file "$out" "DEST of a short Android sparse image"
	# zstd, one frame: its content size.
	zstd -q -c "$SMALL" >"$D/small.img.zst" || fail "zstd"
	bm 2 copy --bmap "$IMG.bmap" "$D/small.img.zst" "$out"
	assert_contains "$RUN_ERR" \
		"error: $IMG.bmap describes a 16.0 MiB image, $D/small.img.zst holds 8.0 MiB" \
		"zstd image smaller than its bmap"
	assert_no_file "$out" "DEST of a short zstd image"
	bm 2 copy --bmap "$SMALL.bmap" "$D/disk.img.zst" "$out"
	assert_contains "$RUN_ERR" \
		"error: $SMALL.bmap describes a 8.0 MiB image, $D/disk.img.zst holds 16.0 MiB" \
		"zstd image larger than its bmap"
	assert_no_file "$out" "DEST of a long zstd image"
	# zstd, two frames: the first alone is larger than the bmap says.
	cat "$D/disk.img.zst" "$D/small.img.zst" >"$D/two.zst"
	bm 2 copy --bmap "$SMALL.bmap" "$D/two.zst" "$out"
	assert_contains "$RUN_ERR" \
		"error: $SMALL.bmap describes a 8.0 MiB image, $D/two.zst holds at least 16.0 MiB" \
		"two zstd frames, too long"
	assert_no_file "$out" "DEST of two long zstd frames"
	# Two frames that make the image: copied.
	head -c $((4 * MIB)) "$IMG" | zstd -q -c >"$D/split.zst" &&
		tail -c +$((4 * MIB + 1)) "$IMG" | zstd -q -c >>"$D/split.zst" ||
		fail "zstd"
	bm 0 copy --bmap "$IMG.bmap" "$D/split.zst" "$out"
	assert_same_file "$IMG" "$out" "copy of a two-frame zstd image"
	rm -f "$out"
	# Of the right size: copied.
	bm 0 copy "$IMG" "$out"
	assert_same_file "$IMG" "$out" "copy of a raw image"
}
case_ "a bmap of an image of another size" wrong_size

# xz: the indexes at the end of a local file give its size.
xz_smaller() {
	xz -c -T1 "$SMALL" >"$D/small.img.xz" || fail "xz"
	bm 2 copy --bmap "$IMG.bmap" "$D/small.img.xz" "$OUT/xz-small"
	assert_contains "$RUN_ERR" \
		"error: $IMG.bmap describes a 16.0 MiB image, $D/small.img.xz holds 8.0 MiB" \
		"xz image smaller than its bmap"
	assert_no_file "$OUT/xz-small" "DEST of a short xz image"
}
case_ "an xz image smaller than its bmap" xz_smaller
xz_larger() {
	bm 2 copy --bmap "$SMALL.bmap" "$D/disk.img.xz" "$OUT/xz-large"
	assert_contains "$RUN_ERR" \
		"error: $SMALL.bmap describes a 8.0 MiB image, $D/disk.img.xz holds 16.0 MiB" \
		"xz image larger than its bmap"
	assert_no_file "$OUT/xz-large" "DEST of a long xz image"
}
case_ "an xz image larger than its bmap" xz_larger
xz_streams() {
	# Two streams: the first alone is smaller than the bmap says.
	head -c $((4 * MIB)) "$IMG" | xz -c -T1 >"$D/split.xz" &&
		tail -c +$((4 * MIB + 1)) "$IMG" | xz -c -T1 >>"$D/split.xz" ||
		fail "xz"
	[ "$(xz --robot -l "$D/split.xz" | awk '$1 == "totals" { print $2 }')" = 2 ] ||
		fail "split.xz is not two streams"
	bm 0 copy --bmap "$IMG.bmap" "$D/split.xz" "$OUT/xz-split"
	assert_same_file "$IMG" "$OUT/xz-split" "copy of a two-stream xz image"
	rm -f "$OUT/xz-split"
}
case_ "a two-stream xz image of the right size" xz_streams
xz_truncated() {
	local size
	size=$(stat -c %s "$D/disk.img.xz") || fail "stat"
	head -c $((size / 2)) "$D/disk.img.xz" >"$D/cut.img.xz" || fail "head"
	bm 2 copy --bmap "$IMG.bmap" "$D/cut.img.xz" "$OUT/xz-cut"
	assert_contains "$RUN_ERR" \
		"error: $D/cut.img.xz: truncated xz data at compressed offset" \
		"truncated xz image"
	assert_not_contains "$RUN_ERR" "describes a" "truncated xz image"
	assert_no_file "$OUT/xz-cut" "DEST of a truncated xz image"
}
case_ "a truncated xz image is not refused for its size" xz_truncated

# --- the first range does not verify -----------------------------------------
first_range() {
	local out=$OUT/first
	cp "$IMG" "$D/same_size.img"
	printf 'other' | dd of="$D/same_size.img" conv=notrunc status=none
	bm 1 copy --bmap "$IMG.bmap" "$D/same_size.img" "$out"
	assert_contains "$RUN_ERR" "$D/same_size.img: checksum mismatch for blocks 0-" \
		"first range"
	assert_contains "$RUN_ERR" "; does $IMG.bmap belong to $D/same_size.img?" \
		"first range"
	cp "$IMG" "$D/later.img"
	printf 'other' | dd of="$D/later.img" bs=1 seek=$((3 * MIB)) \
		conv=notrunc status=none
	bm 1 copy --bmap "$IMG.bmap" "$D/later.img" "$out"
	assert_contains "$RUN_ERR" "$D/later.img: checksum mismatch for blocks 768-" \
		"later range"
	assert_not_contains "$RUN_ERR" "belong to" "later range"
}
case_ "a checksum mismatch in the first range" first_range

cases_done "messages name the real problem"
