#!/usr/bin/env bash
# Benchmark `bmaptk create` against bmaptool and against the hashing limit.
#
#   bench/create.sh [--quick] [-n RUNS]
#
# Image: 2 GiB sparse, ~350 MB mapped in 30 ranges (--quick: 512 MiB, ~100 MB
# in 12 ranges), generated once into $BENCH_DIR. See bench/README.md.
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/common.sh"

runs=5
size=$((2048 * MIB)) mapped=350000000 ranges=30 name=create-2g
while (($#)); do
	case $1 in
	--quick) size=$((512 * MIB)) mapped=100000000 ranges=12 name=create-512m ;;
	-n) runs=$2 && shift ;;
	*) echo "usage: $0 [--quick] [-n RUNS]" >&2 && exit 2 ;;
	esac
	shift
done

bench_need openssl bmaptool python3
bench_header "create: $((size / MIB)) MiB image, ~$((mapped / 1000000)) MB mapped in $ranges ranges, best of $runs"
bench_image "$name" "$size" "$mapped" "$ranges"
img=$BENCH_IMG
mapped_bytes=$(stat -c %s "$BENCH_MAPPED")
echo "mapped bytes: $mapped_bytes"
bench_warm "$img" "$BENCH_MAPPED"

# bmaptk create (output to a temp file; -o /dev/null would skip the bmap
# file checksum's rewrite).
tk_s= tk_rss=
if bench_time "$runs" "$BMAPTK" create "$img" -o "$BENCH_TMP/bmaptk.bmap"; then
	tk_s=$BEST_S tk_rss=$BEST_RSS
fi
bench_row "bmaptk create" "$tk_s" "$tk_rss"

bench_time $(((runs + 1) / 2)) bmaptool create "$img" -o "$BENCH_TMP/bmaptool.bmap" ||
	bench_die "bmaptool create failed"
tool_s=$BEST_S
bench_row "bmaptool create" "$BEST_S" "$BEST_RSS"

bench_time "$runs" openssl dgst -sha256 "$BENCH_MAPPED" ||
	bench_die "openssl failed"
ossl_s=$BEST_S
ossl_cores=$(bench_calc 's / c' s="$ossl_s" c="$BENCH_CORES")
bench_row "openssl dgst -sha256 (mapped bytes)" "$BEST_S" "$BEST_RSS" \
	"$(printf '%.0f MB/s' "$(bench_calc 'b / s / 1e6' b="$mapped_bytes" s="$ossl_s")")"
bench_row "  ÷ $BENCH_CORES cores" "$ossl_cores" ""

# Same ranges and checksums as bmaptool (the bmaps differ only in comments
# and layout).
agree=n/a
if [[ -n $tk_s ]]; then
	ranges_of() {
		tr -d ' \t' <"$1" | grep -o '<Range[^<]*</Range>' || true
	}
	if cmp -s <(ranges_of "$BENCH_TMP/bmaptk.bmap") \
		<(ranges_of "$BENCH_TMP/bmaptool.bmap"); then
		agree=yes
	else
		agree="NO (ranges or checksums differ)"
	fi
fi

# --version: mean of 100 runs, which is mostly process start-up; /bin/true
# shows the floor on this machine.
ver_ms=
bench_per_run_ms 100 "$BMAPTK" --version && ver_ms=$BEST_MS
bench_row "bmaptk --version (mean of 100)" \
	"${ver_ms:+$(bench_calc 'm / 1000' m="$ver_ms")}" "" \
	"${ver_ms:+$(printf '%.2f ms' "$ver_ms")}"
bench_per_run_ms 100 /bin/true
bench_row "  /bin/true (mean of 100)" "$(bench_calc 'm / 1000' m="$BEST_MS")" "" \
	"$(printf '%.2f ms' "$BEST_MS")"
bench_time 1 bmaptool --version || bench_die "bmaptool --version failed"
bench_row "  bmaptool --version" "$BEST_S" "$BEST_RSS"

ratio= speedup= rss_mib=
if [[ -n $tk_s ]]; then
	ratio=$(bench_calc 't / o' t="$tk_s" o="$ossl_cores")
	speedup=$(bench_calc 'b / t' b="$tool_s" t="$tk_s")
	rss_mib=$(bench_calc 'r / 1024' r="$tk_rss")
fi
bench_target "bmaptk / (openssl ÷ cores)" "$ratio" "<=" 1.1 x
bench_target "bmaptool / bmaptk (speedup)" "$speedup" ">=" 2.2 x
bench_target "bmaptk create peak RSS" "$rss_mib" "<=" 32 " MiB"
bench_target "bmaptk --version" "$ver_ms" "<=" 2 " ms"
BENCH_CHECKS+=("bmaptk and bmaptool bmaps agree: $agree")
bench_print
