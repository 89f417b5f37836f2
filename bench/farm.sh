#!/usr/bin/env bash
# Benchmark bmaptk's board-farm features.
#
#   bench/farm.sh [--quick] [-n RUNS]
#
# Image: copy.sh's (1 GiB sparse, ~20% mapped in 40 ranges; --quick: 256
# MiB, 12 ranges), and variants with 5% of the mapped bytes changed, made
# once into $BENCH_DIR. Needs root (losetup).
#
# 1. Reflash with --skip-unchanged onto a loop device over a file on disk
#    (next to the images; the loop device uses direct I/O, so its reads hit
#    the disk, not the page cache) that holds the original image. Changes
#    are runs of whole MiB (1 MiB-aligned in the image) inside mapped
#    ranges: "short" runs of 1-4 MiB, and "long" runs of 16-32 MiB (at
#    least one run; long enough for the adaptive mode to stop comparing and
#    write the next 64 MiB blindly). Reported: the bytes
#    the device wrote (sysfs, /sys/block/loopN/stat field 7) against the
#    changed bytes (target for short runs: <= 1.1x), and the wall time
#    against a plain copy of the same image onto the same device.
# 2. One .zst to three file destinations against one destination, on
#    $BENCH_DIR's file system and on /dev/shm (target, both: <= 1.3x).
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

bench_need python3 zstd losetup cmp
[[ $(id -u) == 0 ]] || bench_die "needs root (loop device)"
bench_header "farm: $((size / MIB)) MiB image, ~$((mapped / MIB)) MiB mapped in $ranges ranges, best of $runs"
bench_image "$name" "$size" "$mapped" "$ranges"
img=$BENCH_IMG
bmap=$img.farm.bmap
if [[ ! -s $bmap || $bmap -ot $img ]]; then
	"$BMAPTK" -q create "$img" -o "$bmap" || bench_die "bmaptk create failed"
fi
bench_compress "$img" "$img.zst" zstd -q -T0 -c

# variant KIND MIN MAX: $img.KIND, the image with runs of MIN..MAX MiB
# changed (random bytes) until 5% of the mapped bytes (at least MIN MiB)
# differ; sets VAR_IMG and VAR_CHANGED (bytes).
variant() {
	local out=$img.$1 stamp=$img.$1.params params="v2 $2 $3"
	VAR_IMG=$out
	if [[ ! -f $out || $out -ot $img || $(cat "$stamp" 2>/dev/null) != "$params" ]]; then
		echo "bench: generating $out" >&2
		cp --sparse=always "$img" "$out.tmp" || bench_die "cp failed"
		python3 - "$out.tmp" "$bmap" "$2" "$3" <<'PY' >"$out.changed" ||
import os, random, sys
import xml.etree.ElementTree as ET
path, bmap, lo, hi = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
M = 1 << 20
r = ET.parse(bmap).getroot()
bs = int(r.find("BlockSize").text)
spans, mapped = [], 0
for e in r.find("BlockMap").findall("Range"):
    a, _, b = "".join(e.text.split()).partition("-")
    s, t = int(a) * bs, (int(b or a) + 1) * bs
    mapped += t - s
    first, last = -(-s // M), t // M  # whole MiB inside the range
    if last > first:
        spans.append((first, last))
rng = random.Random(lo)
want, changed, used = max(mapped // 20, lo * M), 0, set()
fd = os.open(path, os.O_WRONLY)
while changed < want:
    first, last = rng.choice(spans)
    n = min(rng.randint(lo, hi), last - first, -(-(want - changed) // M))
    at = rng.randint(first, last - n)
    if any(m in used for m in range(at - 1, at + n + 1)):
        continue  # keep runs apart, so each is one run
    used.update(range(at, at + n))
    os.pwrite(fd, rng.randbytes(n * M), at * M)
    changed += n * M
os.fsync(fd)
os.close(fd)
print(changed)
PY
			bench_die "generating $out failed"
		"$BMAPTK" -q create "$out.tmp" -o "$out.bmap" ||
			bench_die "bmaptk create $out failed"
		mv "$out.tmp" "$out"
		echo "$params" >"$stamp"
	fi
	VAR_CHANGED=$(cat "$out.changed")
}

# --- 1. --skip-unchanged on a loop device ----------------------------------
loopdev='' ramdir=''
cleanup() {
	[[ -z $loopdev ]] || losetup -d "$loopdev" || true
	[[ -z $ramdir ]] || rm -rf "$ramdir"
	rm -rf "$BENCH_TMP"
}
trap cleanup EXIT
backing=$BENCH_TMP/device.bin
truncate -s "$size" "$backing"
loopdev=$(losetup -f --show --direct-io=on "$backing") ||
	bench_die "losetup failed"
stat=/sys/block/$(basename "$loopdev")/stat
echo "device: $loopdev over $backing ($(findmnt -n -o FSTYPE,SOURCE -T "$BENCH_DIR")), direct I/O $(cat "/sys/block/$(basename "$loopdev")/loop/dio")"
sectors() { awk '{ print $7 }' "$stat"; }
"$BMAPTK" -q copy --bmap "$bmap" "$img" "$loopdev" ||
	bench_die "bmaptk copy onto $loopdev failed"

for kind in short long; do
	if [[ $kind == short ]]; then variant changed-short 1 4; else variant changed-long 16 32; fi
	v=$VAR_IMG
	changed=$VAR_CHANGED
	# Bytes written by one reflash over the original.
	"$BMAPTK" -q copy --skip-unchanged --bmap "$bmap" "$img" "$loopdev" ||
		bench_die "cannot put the original back onto $loopdev"
	s0=$(sectors)
	"$BMAPTK" --json copy --skip-unchanged --bmap "$v.bmap" "$v" \
		"$loopdev" 2>"$BENCH_TMP/skip.json" ||
		bench_die "--skip-unchanged onto $loopdev failed"
	s1=$(sectors)
	said=$(python3 -c 'import json, sys
for l in open(sys.argv[1]):
    o = json.loads(l)
    if o["event"] == "dest":
        print(o["written_bytes"])' "$BENCH_TMP/skip.json")
	cmp -s -n "$size" "$v" "$loopdev" ||
		bench_die "$loopdev does not hold $v after --skip-unchanged"
	wrote=$(((s1 - s0) * 512))
	# Times: the device is put back to the original (untimed) before each.
	# shellcheck disable=SC2016 # eval'ed by bench_time
	BENCH_BEFORE='"$BMAPTK" -q copy --skip-unchanged --bmap "$bmap" "$img" "$loopdev"'
	bench_time "$runs" "$BMAPTK" copy --skip-unchanged --bmap "$v.bmap" \
		"$v" "$loopdev" || bench_die "timing --skip-unchanged failed"
	skip_s=$BEST_S skip_rss=$BEST_RSS
	bench_time "$runs" "$BMAPTK" copy --bmap "$v.bmap" "$v" "$loopdev" ||
		bench_die "timing a plain copy failed"
	plain_s=$BEST_S
	BENCH_BEFORE=
	bench_row "copy (plain), $kind variant" "$plain_s" "$BEST_RSS"
	bench_row "copy --skip-unchanged, $kind variant" "$skip_s" "$skip_rss" \
		"$((changed / MIB)) MiB changed; wrote $(bench_calc 'w / m' w="$wrote" m="$MIB" | sed 's/0*$//; s/\.$//') MiB (bmaptk: $(bench_calc 'w / m' w="$said" m="$MIB" | sed 's/0*$//; s/\.$//'))"
	ratio=$(bench_calc 'w / c' w="$wrote" c="$changed")
	if [[ $kind == short ]]; then
		bench_target "written / changed ($kind runs)" "$ratio" "<=" 1.1 x
	else
		BENCH_CHECKS+=("$(printf '%-40s %9.2fx (no target)' \
			"written / changed ($kind runs)" "$ratio")")
	fi
	BENCH_CHECKS+=("$(printf '%-40s %9.2fx (no target)' \
		"time: skip-unchanged / plain ($kind)" \
		"$(bench_calc 's / p' s="$skip_s" p="$plain_s")")")
done
losetup -d "$loopdev" && loopdev=

# --- 2. one .zst to three files --------------------------------------------
for where in disk ram; do
	if [[ $where == disk ]]; then
		dir=$BENCH_TMP
	else
		ramdir=$(mktemp -d /dev/shm/bmaptk-bench.XXXXXX) ||
			bench_die "no /dev/shm"
		dir=$ramdir
	fi
	# shellcheck disable=SC2016 # eval'ed by bench_time
	BENCH_BEFORE='rm -f "$dir"/out1 "$dir"/out2 "$dir"/out3'
	bench_time "$runs" "$BMAPTK" copy --bmap "$bmap" "$img.zst" "$dir/out1" ||
		bench_die "timing one destination failed"
	one_s=$BEST_S
	bench_row "bmaptk copy .zst to 1 file ($where)" "$BEST_S" "$BEST_RSS"
	bench_time "$runs" "$BMAPTK" copy --bmap "$bmap" "$img.zst" \
		"$dir/out1" "$dir/out2" "$dir/out3" ||
		bench_die "timing three destinations failed"
	bench_row "bmaptk copy .zst to 3 files ($where)" "$BEST_S" "$BEST_RSS"
	for f in out1 out2 out3; do
		cmp -s "$img" "$dir/$f" || bench_die "$dir/$f differs from the image"
	done
	BENCH_BEFORE=
	rm -f "$dir"/out1 "$dir"/out2 "$dir"/out3
	[[ $where == disk ]] || rm -rf "$dir"
	bench_target "3 files / 1 file ($where)" \
		"$(bench_calc 't / o' t="$BEST_S" o="$one_s")" "<=" 1.3 x
done
bench_print
