#!/usr/bin/env bash
# Benchmark `bmaptk create --scan-zeros` against what bounds it.
#
#   bench/scan_zeros.sh [--quick] [-n RUNS]
#
# Image: 2 GiB, ~20 % data in 40 ranges (--quick: 512 MiB), the bench
# image of common.sh made non-sparse (cp --sparse=never), and its zstd -T0
# compression; generated once into $BENCH_DIR. Yardsticks:
#   raw:  `cat IMAGE >/dev/null` + `openssl dgst -sha256` of the data ÷
#         cores (reading every byte, hashing the mapped ones on all cores)
#         target <= 1.2x
#   zstd: `zstd -dc IMAGE.zst >/dev/null`, target <= 1.1x
# Also checks that both bmaps list the same ranges and checksums.
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/common.sh"

runs=5
size=$((2048 * MIB)) mapped=$((2048 * MIB / 5)) ranges=40 name=scanz-2g
while (($#)); do
	case $1 in
	--quick) size=$((512 * MIB)) mapped=$((512 * MIB / 5)) ranges=12 name=scanz-512m ;;
	-n) runs=$2 && shift ;;
	*) echo "usage: $0 [--quick] [-n RUNS]" >&2 && exit 2 ;;
	esac
	shift
done

bench_need openssl zstd python3
bench_header "create --scan-zeros: $((size / MIB)) MiB non-sparse image, ~$((mapped / MIB)) MiB of data in $ranges ranges, best of $runs"
bench_image "$name" "$size" "$mapped" "$ranges"
full=$BENCH_DIR/$name.full
if [[ ! -s $full || $full -ot $BENCH_IMG ]]; then
	echo "bench: writing $full (cp --sparse=never)" >&2
	cp --sparse=never "$BENCH_IMG" "$full.tmp" && mv "$full.tmp" "$full" ||
		bench_die "cp failed"
fi
bench_compress "$full" "$full.zst" zstd -q -T0 -c
data_bytes=$(stat -c %s "$BENCH_MAPPED")
echo "data bytes: $data_bytes; zstd file: $(stat -c %s "$full.zst") bytes"
bench_warm "$full" "$full.zst" "$BENCH_MAPPED"

tk_s= tk_rss= tkz_s= tkz_rss=
if bench_time "$runs" "$BMAPTK" create --scan-zeros "$full" \
	-o "$BENCH_TMP/raw.bmap"; then
	tk_s=$BEST_S tk_rss=$BEST_RSS
fi
bench_row "bmaptk create --scan-zeros (raw)" "$tk_s" "$tk_rss"
bench_time "$runs" cat "$full" || bench_die "cat failed"
cat_s=$BEST_S
bench_row "cat IMAGE >/dev/null" "$BEST_S" "$BEST_RSS"
bench_time "$runs" openssl dgst -sha256 "$BENCH_MAPPED" ||
	bench_die "openssl failed"
ossl_cores=$(bench_calc 's / c' s="$BEST_S" c="$BENCH_CORES")
bench_row "openssl dgst -sha256 (data)" "$BEST_S" "$BEST_RSS"
bench_row "  ÷ $BENCH_CORES cores" "$ossl_cores" ""
yard=$(bench_calc 'a + b' a="$cat_s" b="$ossl_cores")
bench_row "  cat + openssl ÷ cores" "$yard" ""

if bench_time "$runs" "$BMAPTK" create --scan-zeros "$full.zst" \
	-o "$BENCH_TMP/zst.bmap"; then
	tkz_s=$BEST_S tkz_rss=$BEST_RSS
fi
bench_row "bmaptk create --scan-zeros (.zst)" "$tkz_s" "$tkz_rss"
bench_time "$runs" zstd -q -dc "$full.zst" || bench_die "zstd -dc failed"
zstd_s=$BEST_S
bench_row "zstd -dc >/dev/null" "$BEST_S" "$BEST_RSS"

agree=n/a
if [[ -n $tk_s && -n $tkz_s ]]; then
	ranges_of() {
		tr -d ' \t' <"$1" | grep -o '<Range[^<]*</Range>' || true
	}
	if cmp -s <(ranges_of "$BENCH_TMP/raw.bmap") \
		<(ranges_of "$BENCH_TMP/zst.bmap"); then
		agree="yes ($(ranges_of "$BENCH_TMP/raw.bmap" | wc -l) ranges)"
	else
		agree="NO (ranges or checksums differ)"
	fi
fi

r_raw= r_zst= rss=
[[ -n $tk_s ]] && r_raw=$(bench_calc 't / y' t="$tk_s" y="$yard")
[[ -n $tkz_s ]] && r_zst=$(bench_calc 't / z' t="$tkz_s" z="$zstd_s")
[[ -n $tk_s && -n $tkz_s ]] &&
	rss=$(bench_calc '(a > b ? a : b) / 1024' a="$tk_rss" b="$tkz_rss")
bench_target "raw: bmaptk / (cat + openssl ÷ cores)" "$r_raw" "<=" 1.2 x
bench_target "zst: bmaptk / zstd -dc" "$r_zst" "<=" 1.1 x
bench_target "peak RSS" "$rss" "<=" 64 " MiB"
BENCH_CHECKS+=("raw and .zst bmaps agree: $agree")
bench_print
