#!/usr/bin/env bash
# Benchmark `bmaptk check` on a loop device against reading the same bytes
# with `dd iflag=direct` piped into `openssl dgst -sha256`, and against
# hashing them from the page cache on all cores.
#
#   bench/check.sh [--quick] [-n RUNS]
#
# Image: create.sh's (2 GiB sparse, ~350 MB mapped in 30 ranges; --quick:
# 512 MiB, ~100 MB in 12), copied with bmaptk onto a loop device over a
# sparse file in $BENCH_DIR. Needs root (losetup, drop_caches).
#
# Two regimes, each best of RUNS:
#  - cold: `echo 3 > /proc/sys/vm/drop_caches` before every run, so both
#    bmaptk and dd read the disk under the loop device (read-bound);
#  - warm: the backing file's mapped bytes are in the page cache; O_DIRECT
#    on the loop device still goes through the loop driver, but reads no
#    longer limit, hashing does. The loop driver's copying still takes CPU
#    on the same cores, so besides openssl ÷ cores the table shows a
#    "read-aware limit": max(read, (openssl + read) ÷ cores).
# The dd pipeline hashes each mapped range on its own (one dd | openssl per
# range), the same bytes bmaptk reads; its digests are compared with the
# bmap's once.
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/common.sh"

runs=3
size=$((2048 * MIB)) mapped=350000000 ranges=30 name=create-2g
while (($#)); do
	case $1 in
	--quick) size=$((512 * MIB)) mapped=100000000 ranges=12 name=create-512m ;;
	-n) runs=$2 && shift ;;
	*) echo "usage: $0 [--quick] [-n RUNS]" >&2 && exit 2 ;;
	esac
	shift
done

bench_need openssl python3 dd losetup
[[ $(id -u) == 0 ]] || bench_die "needs root (loop device, drop_caches)"
bench_header "check: $((size / MIB)) MiB image, ~$((mapped / 1000000)) MB mapped in $ranges ranges on a loop device, best of $runs"
bench_image "$name" "$size" "$mapped" "$ranges"
img=$BENCH_IMG
mapped_bytes=$(stat -c %s "$BENCH_MAPPED")
echo "mapped bytes: $mapped_bytes"

# The device: a loop device over a sparse file next to the images; detached
# before the temporary directory goes.
loopdev=
cleanup() {
	[[ -z $loopdev ]] || losetup -d "$loopdev" || true
	rm -rf "$BENCH_TMP"
}
trap cleanup EXIT
backing=$BENCH_TMP/device.bin
truncate -s "$size" "$backing"
loopdev=$(losetup -f --show "$backing") || bench_die "losetup failed"
echo "device: $loopdev over $backing ($(findmnt -n -o FSTYPE,SOURCE -T "$BENCH_DIR"))"

bmap=$BENCH_TMP/image.bmap
"$BMAPTK" create "$img" -o "$bmap" 2>/dev/null || bench_die "bmaptk create failed"
"$BMAPTK" copy --bmap "$bmap" "$img" "$loopdev" 2>"$BENCH_TMP/copy.err" ||
	bench_die "bmaptk copy onto $loopdev failed: $(cat "$BENCH_TMP/copy.err")"

# Mapped ranges as "offset length" in bytes, and their digests.
python3 - "$bmap" "$BENCH_TMP/ranges" "$BENCH_TMP/sums" <<'PY' ||
import sys
import xml.etree.ElementTree as ET

root = ET.parse(sys.argv[1]).getroot()
bs = int(root.find("BlockSize").text)
size = int(root.find("ImageSize").text)
with open(sys.argv[2], "w") as r, open(sys.argv[3], "w") as s:
    for el in root.find("BlockMap").findall("Range"):
        a, _, b = el.text.strip().partition("-")
        first, last = int(a), int(b or a)
        end = min((last + 1) * bs, size)
        r.write("%d %d\n" % (first * bs, end - first * bs))
        s.write(el.get("chksum").lower() + "\n")
PY
	bench_die "cannot read $bmap"
nranges=$(wc -l <"$BENCH_TMP/ranges")
echo "bmap: $nranges ranges, $(awk '{ n += $2 } END { print n }' "$BENCH_TMP/ranges") bytes"

# The yardstick: for each range, dd with O_DIRECT into openssl.
cat >"$BENCH_TMP/ddpipe" <<'SH'
#!/usr/bin/env bash
set -o pipefail
while read -r off len; do
	dd if="$1" iflag=direct,skip_bytes,count_bytes bs=4M skip="$off" \
		count="$len" status=none | openssl dgst -sha256 -r | cut -c1-64 ||
		exit 1
done <"$2"
SH
# The same reads alone, to show what reading costs.
cat >"$BENCH_TMP/ddread" <<'SH'
#!/usr/bin/env bash
while read -r off len; do
	dd if="$1" iflag=direct,skip_bytes,count_bytes bs=4M skip="$off" \
		count="$len" status=none of=/dev/null || exit 1
done <"$2"
SH
chmod +x "$BENCH_TMP/ddpipe" "$BENCH_TMP/ddread"
ddpipe=("$BENCH_TMP/ddpipe" "$loopdev" "$BENCH_TMP/ranges")
ddread=("$BENCH_TMP/ddread" "$loopdev" "$BENCH_TMP/ranges")
"${ddpipe[@]}" >"$BENCH_TMP/ddsums" || bench_die "dd | openssl failed"
cmp -s "$BENCH_TMP/ddsums" "$BENCH_TMP/sums" ||
	bench_die "dd | openssl digests differ from the bmap's: the device does not hold the image"

"$BMAPTK" check "$bmap" "$loopdev" 2>"$BENCH_TMP/check.err" ||
	bench_die "bmaptk check failed: $(cat "$BENCH_TMP/check.err")"
grep -q "$nranges of $nranges ranges verified, 0 bad" "$BENCH_TMP/check.err" ||
	bench_die "unexpected bmaptk check output: $(cat "$BENCH_TMP/check.err")"
grep -q "read from the medium" "$BENCH_TMP/check.err" ||
	echo "note: bmaptk check did not read from the medium (no O_DIRECT)"

rate() { # SECONDS: MB/s over the mapped bytes
	printf '%.0f MB/s' "$(bench_calc 'b / s / 1e6' b="$mapped_bytes" s="$1")"
}

# Cold: caches dropped before each run.
cold_tk='' cold_dd=''
if [[ -w /proc/sys/vm/drop_caches ]]; then
	BENCH_BEFORE='sync; echo 3 >/proc/sys/vm/drop_caches'
	bench_time "$runs" "$BMAPTK" check "$bmap" "$loopdev" ||
		bench_die "bmaptk check failed"
	cold_tk=$BEST_S
	bench_row "cold: bmaptk check" "$BEST_S" "$BEST_RSS" "$(rate "$BEST_S")"
	bench_time "$runs" "${ddpipe[@]}" || bench_die "dd | openssl failed"
	cold_dd=$BEST_S
	bench_row "cold: dd iflag=direct | openssl" "$BEST_S" "" "$(rate "$BEST_S")"
	bench_time "$runs" "${ddread[@]}" || bench_die "dd failed"
	bench_row "cold: dd iflag=direct (read only)" "$BEST_S" "" "$(rate "$BEST_S")"
	unset BENCH_BEFORE
else
	echo "note: /proc/sys/vm/drop_caches not writable; cold runs skipped"
fi

# Warm: the backing file's mapped bytes in the page cache (buffered reads
# of the backing file; O_DIRECT on the loop device reaches them there).
while read -r off len; do
	dd if="$backing" iflag=skip_bytes,count_bytes bs=4M skip="$off" \
		count="$len" status=none of=/dev/null
done <"$BENCH_TMP/ranges"
bench_warm "$BENCH_MAPPED"
bench_time "$runs" "$BMAPTK" check "$bmap" "$loopdev" ||
	bench_die "bmaptk check failed"
warm_tk=$BEST_S
bench_row "warm: bmaptk check" "$BEST_S" "$BEST_RSS" "$(rate "$BEST_S")"
bench_time "$runs" "${ddpipe[@]}" || bench_die "dd | openssl failed"
warm_dd=$BEST_S
bench_row "warm: dd iflag=direct | openssl" "$BEST_S" "" "$(rate "$BEST_S")"
bench_time "$runs" "${ddread[@]}" || bench_die "dd failed"
warm_read=$BEST_S
bench_row "warm: dd iflag=direct (read only)" "$BEST_S" "" "$(rate "$BEST_S")"
bench_time "$runs" "$BMAPTK" check --cached "$bmap" "$loopdev" ||
	bench_die "bmaptk check --cached failed"
bench_row "warm: bmaptk check --cached" "$BEST_S" "$BEST_RSS" "$(rate "$BEST_S")"
bench_time "$runs" openssl dgst -sha256 "$BENCH_MAPPED" ||
	bench_die "openssl failed"
ossl_cores=$(bench_calc 's / c' s="$BEST_S" c="$BENCH_CORES")
bench_row "openssl dgst -sha256 (mapped, cached)" "$BEST_S" "$BEST_RSS" \
	"$(rate "$BEST_S")"
ossl_s=$BEST_S
bench_row "  ÷ $BENCH_CORES cores" "$ossl_cores" "" "$(rate "$ossl_cores")"
# Reading through the loop device costs CPU too (the loop driver copies
# from the backing file's page cache), on the same cores: with both, the
# best possible is max(read time, (hash + read time) ÷ cores).
limit=$(bench_calc '(r > (o + r) / c) ? r : (o + r) / c' r="$warm_read" \
	o="$ossl_s" c="$BENCH_CORES")
bench_row "  read-aware limit" "$limit" "" "$(rate "$limit")"

[[ -z $cold_tk ]] ||
	bench_target "cold: bmaptk / (dd | openssl)" \
		"$(bench_calc 't / d' t="$cold_tk" d="$cold_dd")" "<=" 1.1 x
bench_target "warm: bmaptk / (dd | openssl)" \
	"$(bench_calc 't / d' t="$warm_tk" d="$warm_dd")" "<=" 1.1 x
bench_target "warm: bmaptk / (openssl ÷ cores)" \
	"$(bench_calc 't / o' t="$warm_tk" o="$ossl_cores")" "<=" 1.1 x
bench_target "warm: bmaptk / read-aware limit" \
	"$(bench_calc 't / l' t="$warm_tk" l="$limit")" "<=" 1.1 x
bench_print
