# `bmaptk create --scan-zeros`: the image is read as a stream (decoded if
# compressed) and its all-zero 4096-byte blocks become holes. On fully
# allocated images (cp --sparse=never) with zero blocks inside the data
# areas too, and on their .gz, .xz and .zst, every field of the bmap must
# equal `bmaptool create` of `cp --sparse=always` of the same image (whose
# zero blocks are then holes). Without --scan-zeros, a fully mapped image
# gets a warning that suggests it, and a compressed one is refused (exit 2).
# A 4 GiB image with 100 MiB of data is scanned in bounded memory: peak RSS
# at most 64 MiB (asserted only when the binary is not built with
# AddressSanitizer, whose shadow memory counts in the RSS; `nm` tells).
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd bmaptool cmp gzip xz zstd nm /usr/bin/time "$PYTHON"

e2e_ext4_dir D 1G # bmaptool create needs real extents
bs=$(stat -f -c %s "$D")
[ "$bs" = 4096 ] || skip "$D has block size $bs; the images assume 4096"
B=4096

# Fixed seed. "tail" has data up to its last, partial block; "zerotail"
# ends in a zero partial block and starts with a zero block. Both have
# zero blocks inside random data: single ones, runs, runs that start or
# end mid-block (only the whole blocks count), and blocks that are zero
# but for one byte.
"$PYTHON" - "$D" <<'EOF' || fail "cannot generate the images"
import os
import random
import sys

MIB, B = 1024 * 1024, 4096
rng = random.Random(20241125)
d = sys.argv[1]


def make(name, size, extents, zeros):
    fd = os.open(os.path.join(d, name), os.O_WRONLY | os.O_CREAT, 0o644)
    os.ftruncate(fd, size)
    for off, n in extents:
        assert os.pwrite(fd, rng.randbytes(n), off) == n
    for off, n in zeros:
        assert os.pwrite(fd, bytes(n), off) == n
    for off in (2 * MIB + 5 * B + 17, 2 * MIB + 9 * B + 4095):
        os.pwrite(fd, b"\x01", off)  # a lone byte keeps a block mapped
    os.close(fd)


zeros = [(MIB + 3 * B, B), (MIB + 10 * B, 5 * B), (2 * MIB + 100, 3 * B),
         (2 * MIB + 5 * B, 6 * B), (3 * MIB + B + 7, 2 * B)]
make("tail", 5 * MIB + 1234,
     [(B, 200), (MIB, 2 * MIB), (3 * MIB, 300000), (5 * MIB - 7000, 8234)],
     zeros)
make("zerotail", 6 * MIB + 3000,
     [(B, 3 * MIB), (4 * MIB + 5, 100), (6 * MIB - 4096, 4096)],
     zeros + [(B, 100)])
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

# same_fields WANT_BMAP GOT_BMAP WHAT
same_fields() {
	bmap_fields "$1" >"$E2E_TMP/want.fields" || fail "bmap_fields $1"
	bmap_fields "$2" >"$E2E_TMP/got.fields" || fail "bmap_fields $2"
	assert_same_file "$E2E_TMP/want.fields" "$E2E_TMP/got.fields" "$3"
}

for name in tail zerotail; do
	note "$name: --scan-zeros of the full image and its .gz, .xz, .zst"
	img=$D/$name
	cp --sparse=never "$img" "$img.full" &&
		cp --sparse=always "$img.full" "$img.sparse" ||
		fail "cp $img"
	[ $(($(stat -c %b "$img.full") * 512)) -ge $(stat -c %s "$img") ] ||
		fail "$img.full is not fully allocated"
	bmaptool create "$img.sparse" -o "$img.want.bmap" 2>"$E2E_TMP/bt.err" ||
		fail "bmaptool create: $(cat "$E2E_TMP/bt.err")"
	# The zero blocks must really be holes in the bmaptool bmap.
	grep -q '<MappedBlocksCount> *0 *<' "$img.want.bmap" &&
		fail "$img.want.bmap maps nothing"
	gzip -1 -c "$img.full" >"$img.full.gz" &&
		xz -0 -T1 -c "$img.full" >"$img.full.xz" &&
		zstd -q -1 -c "$img.full" >"$img.full.zst" ||
		fail "cannot compress $img.full"
	for f in "$img.full" "$img.full.gz" "$img.full.xz" "$img.full.zst"; do
		bm 0 create --scan-zeros "$f" -o "$f.bmap"
		same_fields "$img.want.bmap" "$f.bmap" "create --scan-zeros $f"
		bmap_check_self "$f.bmap" || fail "$f.bmap: bad file checksum"
	done
	# The bmap is right: bmaptool copies the image with it, verified.
	bmaptool copy --bmap "$img.full.zst.bmap" "$img.full.zst" "$img.out" \
		2>"$E2E_TMP/bt.err" ||
		fail "bmaptool copy with our bmap: $(cat "$E2E_TMP/bt.err")"
	cmp -s "$img" "$img.out" || fail "bmaptool copy of $img.full.zst differs"
done

note "without --scan-zeros: a warning for a full image, an error for .gz"
bm 0 create "$D/tail.full" -o "$D/plain.bmap"
assert_contains "$RUN_ERR" "$D/tail.full: every block is mapped"
assert_contains "$RUN_ERR" "--scan-zeros"
full=$(grep -o '<BlocksCount> *[0-9]*' "$D/plain.bmap" | grep -o '[0-9]*$')
grep -q "<MappedBlocksCount> *$full *<" "$D/plain.bmap" ||
	fail "create of tail.full does not map all $full blocks"
bm 0 create "$D/tail.sparse" -o "$D/plain2.bmap"
assert_not_contains "$RUN_ERR" "every block is mapped"
bm 2 create "$D/tail.full.gz" -o "$D/gz.bmap"
assert_contains "$RUN_ERR" "$D/tail.full.gz: the image is compressed (gzip)"
assert_contains "$RUN_ERR" "--scan-zeros"
assert_no_file "$D/gz.bmap"

note "4 GiB with 100 MiB of data: bounded memory"
e2e_ramdir R
"$PYTHON" - "$R/big" <<'EOF' || fail "cannot generate the 4 GiB image"
import os
import random
import sys

rng = random.Random(4)
size, n = 4 << 30, 25
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, size)
for k in range(n):
    off = (k * (size // n) + rng.randrange(64 << 20)) // 4096 * 4096
    assert os.pwrite(fd, rng.randbytes(4 << 20), off) == 4 << 20
os.close(fd)
EOF
zstd -q -1 -T0 -c "$R/big" >"$R/big.zst" || fail "zstd big"
sanitized=0
if nm "$BMAPTK" 2>/dev/null | grep -q __asan_init; then
	sanitized=1
	note "AddressSanitizer build: peak RSS not asserted"
fi
bm 0 create "$R/big" -o "$R/big.fiemap.bmap" # from its extents
for f in "$R/big" "$R/big.zst"; do
	run /usr/bin/time -f 'rss %M' "$BMAPTK" create --scan-zeros "$f" \
		-o "$f.bmap"
	assert_rc 0 "create --scan-zeros $f"
	rss=$(grep -o 'rss [0-9]*' "$E2E_TMP/run.err" | grep -o '[0-9]*$')
	note "$(basename "$f"): peak RSS $rss KiB"
	[ "$sanitized" = 1 ] || [ "$rss" -le 65536 ] ||
		fail "create --scan-zeros $f: peak RSS $rss KiB > 64 MiB"
	same_fields "$R/big.fiemap.bmap" "$f.bmap" "create --scan-zeros $f"
done

note "all passed"
