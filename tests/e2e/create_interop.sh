# `bmaptk create` against Debian's bmaptool on generated sparse images:
# every field and range checksum must equal bmaptool's, the SEEK_DATA
# fallback must give the same bytes as FIEMAP, -o must write what stdout
# gets, and bmaptool copy must accept our bmaps (with and without checksums)
# and reproduce the image byte for byte. Images are made from a fixed seed.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd bmaptool cmp truncate fallocate dd "$PYTHON"

e2e_ext4_dir IMG 1G # the images: FIEMAP needs a real filesystem
e2e_ramdir RAM      # bmaps and copies
bs=$(stat -f -c %s "$IMG")
[ "$bs" = 4096 ] || skip "$IMG has block size $bs; the images assume 4096"
note "images on $(stat -f -c %T "$IMG") (FIEMAP is missing on tmpfs)"

# Most images, from a fixed seed: (name, size, [(offset, length)]) written
# with random bytes, or zeros for names starting with "zeros".
"$PYTHON" - "$IMG" <<'EOF' || fail "cannot generate the images"
import os
import random
import sys

KIB, MIB, B = 1024, 1024 * 1024, 4096
rng = random.Random(20240611)
d = sys.argv[1]


def make(name, size, extents):
    fd = os.open(os.path.join(d, name + ".img"),
                 os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.ftruncate(fd, size)
    for off, n in extents:
        data = bytes(n) if name.startswith("zeros") else rng.randbytes(n)
        assert off + n <= size and os.pwrite(fd, data, off) == n
    os.close(fd)


make("one_byte", 1, [(0, 1)])
make("full_odd", MIB + 123, [(0, MIB + 123)])
make("full_aligned", 256 * KIB, [(0, 256 * KIB)])
# Data up to EOF, which is in the middle of a block.
make("data_to_eof", 20 * B + 1000, [(10 * B + 17, 10 * B - 17 + 1000)])
# Data ends on the last block boundary; the partial tail block is a hole.
make("data_before_tail", 20 * B + 1000, [(5 * B, 15 * B)])
# Data ends one byte before EOF, in the same (last) block.
make("data_before_eof_byte", 20 * B + 1000, [(3 * B, 17 * B + 999)])
make("last_byte_only", MIB + 1, [(MIB, 1)])
make("first_block_only", 3 * MIB + 5, [(0, B)])
# Several small writes inside blocks 0 and 1, holes in between.
make("sub_block", 10000, [(100, 50), (300, 50), (5000, 1)])
# Adjacent blocks written one at a time must give one range.
make("adjacent", 64 * KIB + 7, [(2 * B, B), (3 * B, B), (4 * B, B),
                                (6 * B, B)])
# Written zeros are data, not holes.
make("zeros_written", 100 * KIB, [(3 * B, 5 * B), (10 * B, 1)])
for i in range(10):
    size = rng.randint(1, 8 * MIB)
    if size % B == 0:
        size += rng.randint(1, B - 1)
    ext = []
    for _ in range(rng.randint(1, 40)):
        off = rng.randrange(size)
        ext.append((off, rng.randint(1, min(256 * KIB, size - off))))
    make("random_%d" % i, size, ext)
# 10 000 ranges: random bytes at a random place in every other block.
ext = []
for blk in range(0, 20000, 2):
    off = rng.randrange(B)
    ext.append((blk * B + off, rng.randint(1, B - off)))
make("many_ranges", 20000 * B - 100, ext)
# 300 MiB (plus a partial block) with 50 MiB mapped in 25 pieces.
make("large", 300 * MIB + 4095,
     [(k * 12 * MIB + rng.randrange(10 * MIB), 2 * MIB) for k in range(25)])
# A pattern for the dd-made image below.
with open(os.path.join(d, "pattern"), "wb") as f:
    f.write(rng.randbytes(MIB))
EOF

: >"$IMG/empty.img"
truncate -s 1 "$IMG/hole_1byte.img"
truncate -s 10M "$IMG/all_holes.img"
truncate -s 12345 "$IMG/all_holes_odd.img"
# Byte-granular dd writes from the seeded pattern.
truncate -s 5000000 "$IMG/dd_mix.img"
for spec in 0:1000 8191:2 40000:300000 4999000:1000 2000000:65536; do
	dd if="$IMG/pattern" of="$IMG/dd_mix.img" conv=notrunc status=none \
		bs="${spec#*:}" count=1 oflag=seek_bytes seek="${spec%:*}" ||
		fail "dd into dd_mix.img failed"
done
# Preallocated (unwritten) extents: FIEMAP maps them, as bmaptool does;
# SEEK_DATA sees holes there (checked separately below).
truncate -s 1M "$IMG/prealloc.img"
fallocate -o 8192 -l 65536 "$IMG/prealloc.img" ||
	fail "fallocate on $IMG failed"
dd if="$IMG/pattern" of="$IMG/prealloc.img" conv=notrunc status=none \
	bs=4096 count=2 seek=100 || fail "dd into prealloc.img failed"
rm "$IMG/pattern"
sync

# Ranges we know independently of bmaptool, so both tools cannot agree on
# something wrong.
declare -A expect=(
	[one_byte]="0-0"
	[hole_1byte]=""
	[all_holes]=""
	[all_holes_odd]=""
	[full_odd]="0-256"
	[full_aligned]="0-63"
	[data_to_eof]="10-20"
	[data_before_tail]="5-19"
	[data_before_eof_byte]="3-20"
	[last_byte_only]="256-256"
	[first_block_only]="0-0"
	[sub_block]="0-1"
	[adjacent]="2-4 6-6"
	[zeros_written]="3-7 10-10"
	[dd_mix]="0-2 9-83 488-504 1220-1220"
	[prealloc]="2-17 100-101"
)

# range_list FIELDS: the ranges of a bmap_fields text, space-separated.
range_list() {
	awk '$1 == "Range" { printf "%s%s", sep, $2; sep = " " }' <<<"$1"
}

# check NAME: all comparisons for $IMG/NAME.img.
check() {
	local name=$1 img=$IMG/$1.img dir=$RAM/$1
	local ours ref fields nc n

	mkdir "$dir"
	ours=$dir/ours.bmap
	run "$BMAPTK" create "$img"
	assert_rc 0 "$name: bmaptk create"
	cp "$E2E_TMP/run.out" "$ours"
	bmap_check_self "$ours" || fail "$name: bad BmapFileChecksum"

	run bmaptool create "$img" -o "$dir/ref.bmap"
	assert_rc 0 "$name: bmaptool create"
	fields=$(bmap_fields "$ours") || fail "$name: cannot parse our bmap"
	ref=$(bmap_fields "$dir/ref.bmap") || fail "$name: cannot parse bmaptool's"
	[ "$fields" = "$ref" ] || {
		diff -u <(echo "$ref") <(echo "$fields") | head -n 20 >&2
		fail "$name: bmaptk's bmap differs from bmaptool's (diff above)"
	}
	assert_contains "$fields" "Version 2.0" "$name: version"
	if [ -n "${expect[$name]+set}" ]; then
		assert_eq "${expect[$name]}" "$(range_list "$fields")" \
			"$name: ranges"
	fi

	# The SEEK_DATA/SEEK_HOLE fallback gives the same bytes, except for
	# unwritten extents: ext4 reports them as holes, or as data where
	# their (zero) pages happen to be cached. That bmap must copy too.
	BMAPTK_FORCE_SEEK=1 run "$BMAPTK" create "$img"
	assert_rc 0 "$name: create with BMAPTK_FORCE_SEEK=1"
	if [ "$name" != prealloc ]; then
		assert_same_file "$ours" "$E2E_TMP/run.out" \
			"$name: SEEK_DATA bmap vs FIEMAP bmap"
	else
		cp "$E2E_TMP/run.out" "$dir/seek.bmap"
		assert_eq "100-101" \
			"$(range_list "$(bmap_fields "$dir/seek.bmap")" | tr ' ' '\n' |
				tail -n 1)" "$name: last range with SEEK_DATA"
		run bmaptool copy --bmap "$dir/seek.bmap" "$img" "$RAM/out"
		assert_rc 0 "$name: bmaptool copy with the SEEK_DATA bmap"
		cmp -s "$img" "$RAM/out" ||
			fail "$name: bmaptool copy with the SEEK_DATA bmap gave other bytes"
		rm "$RAM/out" "$dir/seek.bmap"
	fi

	# -o writes exactly what stdout got, prints nothing on stdout, and
	# leaves no temporary file beside it.
	run "$BMAPTK" create "$img" -o "$dir/o.bmap"
	assert_rc 0 "$name: create -o"
	assert_eq "" "$RUN_OUT" "$name: stdout of create -o"
	assert_same_file "$ours" "$dir/o.bmap" "$name: -o output vs stdout"
	assert_dir_entries "$dir" $'o.bmap\nours.bmap\nref.bmap' "$name"

	# --no-checksum: the same document without chksum attributes.
	nc=$dir/nc.bmap
	run "$BMAPTK" create --no-checksum "$img" -o "$nc"
	assert_rc 0 "$name: create --no-checksum"
	bmap_check_self "$nc" || fail "$name: bad BmapFileChecksum (no-checksum)"
	grep -q chksum= "$nc" && fail "$name: chksum= in a --no-checksum bmap"
	# shellcheck disable=SC2001 # a regex, not a fixed string
	assert_eq "$(sed 's/ chksum=[0-9a-f]*$//' <<<"$fields")" \
		"$(bmap_fields "$nc")" "$name: --no-checksum fields"

	# bmaptool copy accepts both and reproduces the image.
	for b in "$ours" "$nc"; do
		run bmaptool copy --bmap "$b" "$img" "$RAM/out"
		assert_rc 0 "$name: bmaptool copy --bmap $(basename "$b")"
		cmp -s "$img" "$RAM/out" ||
			fail "$name: bmaptool copy with $(basename "$b") gave other bytes"
		rm -f "$RAM/out"
	done
	n=$(grep -c '^Range' <<<"$fields")
	note "$name: ok ($(stat -c %s "$img") bytes, $n ranges)"
	rm -rf "$dir"
}

count=0
for img in "$IMG"/*.img; do
	name=$(basename "$img" .img)
	[ "$name" = empty ] && continue
	check "$name"
	count=$((count + 1))
done
assert_eq 28 "$count" "images checked"

# Specific checks beyond agreeing with bmaptool.
run "$BMAPTK" create "$IMG/many_ranges.img"
assert_eq 10000 "$(bmap_fields "$E2E_TMP/run.out" | grep -c '^Range')" \
	"many_ranges: ranges"
run "$BMAPTK" create "$IMG/large.img"
assert_contains "$(bmap_fields "$E2E_TMP/run.out")" "MappedBlocksCount 12825" \
	"large: 25 unaligned 2 MiB pieces, 513 blocks each"

# With --no-checksum too, every field equals bmaptool's.
run "$BMAPTK" create --no-checksum "$IMG/random_3.img" -o "$E2E_TMP/a.bmap"
assert_rc 0 "random_3: create --no-checksum"
run bmaptool create --no-checksum "$IMG/random_3.img" -o "$E2E_TMP/b.bmap"
assert_rc 0 "random_3: bmaptool create --no-checksum"
assert_eq "$(bmap_fields "$E2E_TMP/b.bmap")" "$(bmap_fields "$E2E_TMP/a.bmap")" \
	"random_3: --no-checksum fields vs bmaptool's"

# A 0-byte image (bmaptool 3.6 fails on it with a traceback): a valid,
# empty bmap, and bmaptk copy makes a 0-byte file from it.
run "$BMAPTK" create "$IMG/empty.img" -o "$E2E_TMP/empty.bmap"
assert_rc 0 "empty: create"
assert_eq "" "$RUN_OUT" "empty: stdout"
bmap_check_self "$E2E_TMP/empty.bmap" || fail "empty: bad BmapFileChecksum"
assert_eq "Version 2.0
ImageSize 0
BlockSize 4096
BlocksCount 0
MappedBlocksCount 0
ChecksumType sha256" "$(bmap_fields "$E2E_TMP/empty.bmap")" "empty: fields"
run "$BMAPTK" create "$IMG/empty.img"
assert_same_file "$E2E_TMP/empty.bmap" "$E2E_TMP/run.out" "empty: -o vs stdout"
run "$BMAPTK" copy --bmap "$E2E_TMP/empty.bmap" "$IMG/empty.img" \
	"$E2E_TMP/empty.out"
assert_rc 0 "empty: bmaptk copy"
[ -f "$E2E_TMP/empty.out" ] || fail "empty: bmaptk copy made no file"
assert_eq 0 "$(stat -c %s "$E2E_TMP/empty.out")" "empty: size of the copy"

note "all $((count + 1)) images pass"
