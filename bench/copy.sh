#!/usr/bin/env bash
# Benchmark `bmaptk copy` (verification on) per codec against the fastest
# standalone decoder and bmaptool, and a raw image against cp + hashing.
#
#   bench/copy.sh [--quick] [-n RUNS]
#
# Image: 1 GiB sparse, ~20% mapped in 40 ranges (--quick: 256 MiB, 12
# ranges), generated and compressed once into $BENCH_DIR. See bench/README.md.
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/common.sh"

runs=3
size=$((1024 * MIB)) ranges=40 name=copy-1g
while (($#)); do
	case $1 in
	--quick) size=$((256 * MIB)) ranges=12 name=copy-256m ;;
	-n) runs=$2 && shift ;;
	*) echo "usage: $0 [--quick] [-n RUNS]" >&2 && exit 2 ;;
	esac
	shift
done
mapped=$((size / 5))

bench_need openssl bmaptool python3 zstd pigz xz lbzip2 pbzip2 cmp
gz_dec=(igzip -dc)
command -v igzip >/dev/null || gz_dec=(pigz -dc) # isal not installed
bench_header "copy: $((size / MIB)) MiB image, ~$((mapped / MIB)) MiB mapped in $ranges ranges, best of $runs (bmaptool: 1 run)"
bench_image "$name" "$size" "$mapped" "$ranges"
img=$BENCH_IMG
bmap=$img.bmap
if [[ ! -s $bmap || $bmap -ot $img ]]; then
	bmaptool create "$img" -o "$bmap.tmp" || bench_die "bmaptool create failed"
	mv "$bmap.tmp" "$bmap"
fi

# Compressed variants, made once. zstd -T0 writes one frame; the .mf.zst has
# one frame per 32 MiB (what a frame-parallel decoder could use).
c=$BENCH_CORES
bench_compress "$img" "$img.zst" zstd -q -T0 -c
bench_compress "$img" "$img.mf.zst" split -b 32M --filter='zstd -q -c' -
bench_compress "$img" "$img.gz" pigz -6 -c -p "$c"
bench_compress "$img" "$img.xz" xz -T0 -c
bench_compress "$img" "$img.lbz.bz2" lbzip2 -c -n "$c"
bench_compress "$img" "$img.pbz.bz2" pbzip2 -c -p"$c"

out=$BENCH_TMP/out.img
out2=$BENCH_TMP/out2.img
max_rss=0
have_copy=yes
"$BMAPTK" copy --help >/dev/null 2>&1 || have_copy=

# bmaptk copy of $1 (image file) into a fresh $out; checks the result once.
time_bmaptk() {
	TK_S= TK_RSS=
	[[ -n $have_copy ]] || return 0
	BENCH_BEFORE='rm -f "$out"'
	if bench_time "$runs" "$BMAPTK" copy --bmap "$bmap" "$1" "$out"; then
		TK_S=$BEST_S TK_RSS=$BEST_RSS
		((TK_RSS > max_rss)) && max_rss=$TK_RSS
		cmp -s "$img" "$out" || bench_die "bmaptk copy of $1: output differs from the image"
	fi
	unset BENCH_BEFORE
	rm -f "$out"
}

time_bmaptool() {
	BENCH_BEFORE='rm -f "$out2"'
	bench_time 1 bmaptool copy --bmap "$bmap" "$1" "$out2" ||
		bench_die "bmaptool copy $1 failed"
	unset BENCH_BEFORE
	rm -f "$out2"
}

# One codec: $1 label, $2 file, rest = decoder command (file appended).
codec() {
	local label=$1 file=$2 dec_s tk tool
	shift 2
	bench_warm "$file"
	time_bmaptk "$file"
	tk=$TK_S
	bench_row "bmaptk copy $label" "$TK_S" "$TK_RSS" \
		"$(du -m --apparent-size "$file" | cut -f1) MiB compressed"
	bench_time "$runs" "$@" "$file" || bench_die "$* failed"
	dec_s=$BEST_S
	bench_row "  $* (decoder)" "$BEST_S" "$BEST_RSS"
	time_bmaptool "$file"
	tool=$BEST_S
	bench_row "  bmaptool copy" "$BEST_S" "$BEST_RSS" \
		"${tk:+$(printf '%.1fx bmaptk' "$(bench_calc 'b / t' b="$tool" t="$tk")")}"
	bench_target "$label: bmaptk / decoder" \
		"${tk:+$(bench_calc 't / d' t="$tk" d="$dec_s")}" "<=" 1.1 x
}

codec zstd "$img.zst" zstd -dcq
codec "zstd (32 MiB frames)" "$img.mf.zst" zstd -dcq
codec gzip "$img.gz" "${gz_dec[@]}"
codec xz "$img.xz" xz -dc -T0
codec "bzip2 (lbzip2)" "$img.lbz.bz2" lbzip2 -dc -n "$c"
codec "bzip2 (pbzip2)" "$img.pbz.bz2" lbzip2 -dc -n "$c"

# Raw image: the yardstick is a sparse copy plus hashing the mapped bytes on
# all cores.
bench_warm "$img" "$BENCH_MAPPED"
time_bmaptk "$img"
tk=$TK_S
bench_row "bmaptk copy raw" "$TK_S" "$TK_RSS"
BENCH_BEFORE='rm -f "$out2"'
bench_time "$runs" cp --sparse=always "$img" "$out2" || bench_die "cp failed"
unset BENCH_BEFORE
rm -f "$out2"
cp_s=$BEST_S
bench_row "  cp --sparse=always" "$BEST_S" "$BEST_RSS"
bench_time "$runs" openssl dgst -sha256 "$BENCH_MAPPED" || bench_die "openssl failed"
yard=$(bench_calc 'c + o / n' c="$cp_s" o="$BEST_S" n="$BENCH_CORES")
bench_row "  openssl dgst -sha256 (mapped bytes)" "$BEST_S" "$BEST_RSS"
bench_row "  cp + openssl ÷ $BENCH_CORES cores" "$yard" ""
time_bmaptool "$img"
bench_row "  bmaptool copy" "$BEST_S" "$BEST_RSS" \
	"${tk:+$(printf '%.1fx bmaptk' "$(bench_calc 'b / t' b="$BEST_S" t="$tk")")}"
bench_target "raw: bmaptk / (cp + openssl ÷ cores)" \
	"${tk:+$(bench_calc 't / y' t="$tk" y="$yard")}" "<=" 1.3 x

rss_mib=
[[ -n $have_copy ]] && rss_mib=$(bench_calc 'r / 1024' r="$max_rss")
bench_target "bmaptk copy peak RSS (largest)" "$rss_mib" "<=" 64 " MiB"
[[ -n $have_copy ]] || BENCH_CHECKS+=("bmaptk copy is not available in $BMAPTK")
bench_print
