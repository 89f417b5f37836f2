#!/usr/bin/env bash
# `bmaptk pack` against `zstd -T0 -3` of the same raw image: wall time,
# CPU time, output size and peak RSS.
#
#   bench/pack.sh [--quick] [-n RUNS] [-o DIR]
#
# Image: copy.sh's (1 GiB sparse, ~20 % mapped in 40 ranges of rootfs-like
# data, 1 MiB in 5 random; --quick: 256 MiB, 12 ranges), generated once
# into $BENCH_DIR. Outputs go to DIR (default /dev/shm), removed untimed
# before each run. On a disk, pack's fsync would count and zstd's missing
# one would not: there the yardstick is `zstd ... && sync OUT`.
#
# Times are the median of RUNS rounds (default 5) after one untimed
# warm-up round; the commands take turns within each round, so a burst of
# load hits them alike. Once after timing, the packed file is checked:
# `zstd -dc` gives the image, and its sidecar bmap equals the one embedded
# (bytes at the offsets docs/pack.md gives).
#
# Targets (the pack issue): time(pack) <= 1.1 x time(zstd -T0 -3);
# size(pack) <= 1.10 x size(zstd -T0 -3); pack's peak RSS <= 64 MiB.
# PASS/FAIL per target; exit status 1 if one fails.
#
# The copy part (bmaptk copy of the packed file against `zstd -dc` of it
# and against copy of the single-frame .zst) plugs in at copy_part below:
# it gets $packed (the packed image, kept until exit) and $img.
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/common.sh"

runs=5
outdir=/dev/shm
size=$((1024 * MIB)) ranges=40 name=copy-1g
while (($#)); do
	case $1 in
	--quick) size=$((256 * MIB)) ranges=12 name=copy-256m ;;
	-n) runs=$2 && shift ;;
	-o) outdir=$2 && shift ;;
	*) echo "usage: $0 [--quick] [-n RUNS] [-o DIR]" >&2 && exit 2 ;;
	esac
	shift
done
((runs >= 1)) || bench_die "-n needs at least 1"
mapped=$((size / 5))

bench_need zstd cmp python3 taskset
bench_header "pack: $((size / MIB)) MiB image, ~$((mapped / MIB)) MiB mapped in $ranges ranges, median of $runs, outputs in $outdir"
bench_image "$name" "$size" "$mapped" "$ranges"
img=$BENCH_IMG
bench_warm "$img"
work=$(mktemp -d "$outdir/bmaptk-bench.XXXXXX")
trap 'rm -rf "$BENCH_TMP" "$work"' EXIT
packed=$work/pack.zst
yard=$work/yard.zst
yard_cmd=(zstd -q -T0 -3 -f "$img" -o "$yard")
yard_label="zstd -T0 -3"
if [[ $(stat -f -c %T "$work") != tmpfs ]]; then
	# shellcheck disable=SC2016 # expanded by that sh
	yard_cmd=(sh -c 'zstd -q -T0 -3 -f "$1" -o "$2" && sync "$2"' sh "$img" "$yard")
	yard_label="zstd -T0 -3 && sync"
fi

# one_run CMD...: "WALL CPU RSS" of one run (seconds, seconds, KiB).
one_run() {
	local t0 t1 u s m
	t0=$EPOCHREALTIME
	/usr/bin/time -f '%U %S %M' -o "$BENCH_TMP/time" "$@" \
		>/dev/null 2>"$BENCH_TMP/stderr" ||
		{ tail -n 20 "$BENCH_TMP/stderr" >&2 && bench_die "failed: $*"; }
	t1=$EPOCHREALTIME
	read -r u s m <"$BENCH_TMP/time"
	echo "$(bench_calc 'b - a' a="${t0/,/.}" b="${t1/,/.}")" \
		"$(bench_calc 'u + s' u="$u" s="$s")" "$m"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
column_of() { cut -d' ' -f"$1" "$2"; }

: >"$BENCH_TMP/pack" && : >"$BENCH_TMP/zstd"
for ((i = 0; i <= runs; i++)); do
	rm -f "$packed" "$packed.bmap" "$yard"
	tk=$(one_run "$BMAPTK" pack -q "$img" -o "$packed")
	zs=$(one_run "${yard_cmd[@]}")
	((i == 0)) && continue # warm-up
	echo "$tk" >>"$BENCH_TMP/pack"
	echo "$zs" >>"$BENCH_TMP/zstd"
done

# The packed image must be right for the times to mean anything.
zstd -q -dc "$packed" | cmp -s - "$img" || bench_die "zstd -dc $packed is not the image"
python3 - "$packed" <<'PY' || bench_die "$packed: the embedded bmap is not the sidecar"
import struct, sys
d = open(sys.argv[1], "rb").read(1 << 26)
n, blen = struct.unpack_from("<II", d, 32)
at = 48 + 4 * n
sys.exit(d[at:at + blen] != open(sys.argv[1] + ".bmap", "rb").read())
PY

tk_s=$(column_of 1 "$BENCH_TMP/pack" | median)
tk_c=$(column_of 2 "$BENCH_TMP/pack" | median)
tk_rss=$(column_of 3 "$BENCH_TMP/pack" | sort -g | tail -n 1)
zs_s=$(column_of 1 "$BENCH_TMP/zstd" | median)
zs_c=$(column_of 2 "$BENCH_TMP/zstd" | median)
zs_rss=$(column_of 3 "$BENCH_TMP/zstd" | sort -g | tail -n 1)
tk_size=$(stat -c %s "$packed")
zs_size=$(stat -c %s "$yard")

echo
printf '%-30s %9s %9s %9s %8s   %s\n' command "median s" "cpu s" "MiB out" \
	"RSS MiB" "runs (s)"
row() { # LABEL WALL CPU BYTES RSS_KIB RUNSFILE
	printf '%-30s %9.3f %9.3f %9.1f %8.1f   [%s]\n' "$1" "$2" "$3" \
		"$(bench_calc 'b / m' b="$4" m="$MIB")" \
		"$(bench_calc 'r / 1024' r="$5")" \
		"$(column_of 1 "$6" | sort -g | xargs printf '%.3f ' | sed 's/ $//')"
}
row "bmaptk pack" "$tk_s" "$tk_c" "$tk_size" "$tk_rss" "$BENCH_TMP/pack"
row "$yard_label" "$zs_s" "$zs_c" "$zs_size" "$zs_rss" \
	"$BENCH_TMP/zstd"
echo "packed: $("$BMAPTK" --version), $(python3 -c '
import struct, sys
d = open(sys.argv[1], "rb").read(48)
print("%d chunks of %d KiB" % (struct.unpack_from("<I", d, 32)[0],
                               struct.unpack_from("<I", d, 20)[0] >> 10))' \
	"$packed"), mapped:packed $(bench_calc 'm / p' \
	m="$(stat -c %s "$BENCH_MAPPED")" p="$tk_size"):1"

verdict() { # LABEL VALUE LIMIT UNIT
	local v
	v=$(awk -v a="$2" -v l="$3" 'BEGIN { print (a <= l) ? "PASS" : "FAIL" }')
	[[ $v == PASS ]] || BENCH_MISSED=1
	printf '%-44s %8.3f%s (target <= %s%s)  %s\n' "$1" "$2" "$4" "$3" "$4" "$v"
}
echo
verdict "time: pack / zstd -T0 -3" "$(bench_calc 'a / b' a="$tk_s" b="$zs_s")" 1.1 x
verdict "size: pack / zstd -T0 -3" \
	"$(bench_calc 'a / b' a="$tk_size" b="$zs_size")" 1.10 x
verdict "peak RSS of pack" "$(bench_calc 'r / 1024' r="$tk_rss")" 64 " MiB"

# copy_part: bmaptk copy of $packed with its embedded bmap (the sidecar
# moved away), verified, to a file in $work, on 1 core and on all
# (taskset), against `zstd -dc $packed > /dev/null` in the same rounds.
copy_part() {
	local cpus last dest=$work/dest.img c
	cpus=$(nproc)
	last=$((cpus - 1))
	mv "$packed.bmap" "$work/sidecar.bmap"
	: >"$BENCH_TMP/dc"
	for c in 1 "$cpus"; do : >"$BENCH_TMP/copy$c"; done
	for ((i = 0; i <= runs; i++)); do
		for c in 1 "$cpus"; do
			rm -f "$dest"
			r=$(one_run taskset -c "0-$((c - 1))" "$BMAPTK" copy -q \
				"$packed" "$dest")
			((i == 0)) || echo "$r" >>"$BENCH_TMP/copy$c"
		done
		r=$(one_run sh -c 'zstd -q -dc "$1" >/dev/null' sh "$packed")
		((i == 0)) || echo "$r" >>"$BENCH_TMP/dc"
	done
	cmp -s "$dest" "$img" || bench_die "copy of $packed is not the image"
	mv "$work/sidecar.bmap" "$packed.bmap"
	echo
	local dc_s cp1 cpn rss
	dc_s=$(column_of 1 "$BENCH_TMP/dc" | median)
	cp1=$(column_of 1 "$BENCH_TMP/copy1" | median)
	cpn=$(column_of 1 "$BENCH_TMP/copy$cpus" | median)
	rss=$(column_of 3 "$BENCH_TMP/copy$cpus" | sort -g | tail -n 1)
	row "zstd -dc pack >/dev/null" "$dc_s" \
		"$(column_of 2 "$BENCH_TMP/dc" | median)" 0 \
		"$(column_of 3 "$BENCH_TMP/dc" | sort -g | tail -n 1)" "$BENCH_TMP/dc"
	row "bmaptk copy pack, 1 core" "$cp1" \
		"$(column_of 2 "$BENCH_TMP/copy1" | median)" 0 \
		"$(column_of 3 "$BENCH_TMP/copy1" | sort -g | tail -n 1)" \
		"$BENCH_TMP/copy1"
	row "bmaptk copy pack, $cpus cores" "$cpn" \
		"$(column_of 2 "$BENCH_TMP/copy$cpus" | median)" 0 "$rss" \
		"$BENCH_TMP/copy$cpus"
	echo
	echo "copy scaling: 1 core $(bench_calc 'a / b' a="$cp1" b="$dc_s")x," \
		"$cpus cores $(bench_calc 'a / b' a="$cpn" b="$dc_s")x of zstd -dc" \
		"(cores 0-$last)"
	verdict "copy of pack ($cpus cores) / zstd -dc" \
		"$(bench_calc 'a / b' a="$cpn" b="$dc_s")" 0.75 x
	verdict "peak RSS of copy" "$(bench_calc 'r / 1024' r="$rss")" 64 " MiB"
}
copy_part

read -r load _ </proc/loadavg
echo "load average after: $load"
exit "$BENCH_MISSED"
