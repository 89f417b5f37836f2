# shellcheck shell=bash disable=SC2034
# Helpers shared by the benchmarks (source it; do not run it).
#
# Images are generated once, deterministically, into $BENCH_DIR (default
# /var/tmp/bmaptk-bench) and kept between runs. Times are the best of N runs
# (wall clock); peak RSS comes from /usr/bin/time -f %M (KiB, the largest of
# the process and the children it waited for).

set -euo pipefail

BENCH_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/var/tmp/bmaptk-bench}
BMAPTK=${BMAPTK:-$BENCH_REPO/build/bmaptk}
BENCH_CORES=$(nproc)
MIB=$((1024 * 1024))

mkdir -p "$BENCH_DIR"
BENCH_TMP=$(mktemp -d "$BENCH_DIR/run.XXXXXX")
trap 'rm -rf "$BENCH_TMP"' EXIT

bench_die() {
	echo "bench: $*" >&2
	exit 1
}

bench_need() {
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null ||
			bench_die "$t not found (run scripts/deps.sh test)"
	done
	[[ -x /usr/bin/time ]] || bench_die "/usr/bin/time missing (package time)"
}

bench_header() {
	echo "== $1"
	echo "machine: $BENCH_CORES cores, $(grep -m1 'model name' /proc/cpuinfo |
		cut -d: -f2- | sed 's/^ *//'), sha_ni: $(grep -qw sha_ni \
		/proc/cpuinfo && echo yes || echo no)"
	echo "bmaptk: $BMAPTK ($("$BMAPTK" --version 2>/dev/null || echo 'not built'))"
	echo "data: $BENCH_DIR"
	local load
	read -r load _ </proc/loadavg
	if awk -v l="$load" -v c="$BENCH_CORES" 'BEGIN { exit !(l > c / 2) }'; then
		echo "WARNING: load average $load on $BENCH_CORES cores;" \
			"other jobs will skew the times"
	fi
}

# Floating-point helper: bench_calc 'a / b' a=1 b=2
bench_calc() {
	local expr=$1
	shift
	local -a vars=()
	local kv
	for kv in "$@"; do vars+=(-v "$kv"); done
	awk "${vars[@]}" "BEGIN { printf \"%.6f\", $expr }"
}

# bench_time N CMD...: best wall time of N runs in BEST_S (seconds) and the
# largest peak RSS in BEST_RSS (KiB). stdout goes to /dev/null. If
# BENCH_BEFORE is set, it is eval'ed before each run, untimed (e.g. removing
# the output file). Returns 1 (and shows stderr) if a run fails.
bench_time() {
	local n=$1 i t0 t1 s rss
	shift
	BEST_S=
	BEST_RSS=0
	for ((i = 0; i < n; i++)); do
		[[ -z ${BENCH_BEFORE:-} ]] || eval "$BENCH_BEFORE"
		t0=$EPOCHREALTIME
		if ! /usr/bin/time -f '%e %M' -o "$BENCH_TMP/time" "$@" \
			>/dev/null 2>"$BENCH_TMP/stderr"; then
			echo "bench: failed: $*" >&2
			tail -n 20 "$BENCH_TMP/stderr" >&2
			return 1
		fi
		t1=$EPOCHREALTIME
		s=$(bench_calc 'b - a' a="${t0/,/.}" b="${t1/,/.}")
		read -r _ rss <"$BENCH_TMP/time"
		if [[ -z $BEST_S ]] || awk -v a="$s" -v b="$BEST_S" \
			'BEGIN { exit !(a < b) }'; then
			BEST_S=$s
		fi
		((rss > BEST_RSS)) && BEST_RSS=$rss
	done
	return 0
}

# bench_per_run_ms N CMD...: mean wall time of N back-to-back runs, in ms,
# in BEST_MS (for very short commands like --version).
bench_per_run_ms() {
	local n=$1 i t0 t1
	shift
	"$@" >/dev/null 2>&1 || return 1
	t0=$EPOCHREALTIME
	for ((i = 0; i < n; i++)); do
		"$@" >/dev/null 2>&1
	done
	t1=$EPOCHREALTIME
	BEST_MS=$(bench_calc '(b - a) * 1000 / n' a="${t0/,/.}" b="${t1/,/.}" n="$n")
}

# Read the whole file so timed runs see a warm page cache.
bench_warm() {
	cat "$@" >/dev/null
}

# bench_corpus BYTES: $BENCH_DIR/corpus-BYTES.bin, rootfs-like data: the
# contents of files under /usr/lib and /usr/share (up to 4 MiB each) in a
# fixed shuffled order, cycled if there is not enough.
# Both generators are prefix-stable (a longer file starts with the shorter
# one), so an existing larger file is used instead of making another.
bench_reuse() {
	local prefix=$1 bytes=$2 f n best= best_n=
	for f in "$BENCH_DIR/$prefix"-*.bin; do
		[[ -s $f ]] || continue
		n=${f##*-}
		n=${n%.bin}
		[[ $n =~ ^[0-9]+$ ]] && ((n >= bytes)) || continue
		if [[ -z $best ]] || ((n < best_n)); then
			best=$f best_n=$n
		fi
	done
	echo "${best:-$BENCH_DIR/$prefix-$bytes.bin}"
}

bench_corpus() {
	local bytes=$1 out
	out=$(bench_reuse corpus "$bytes")
	if [[ ! -s $out ]]; then
		echo "bench: generating $out" >&2
		python3 - "$out" "$bytes" <<'PY' || bench_die "corpus generation failed"
import os, random, sys
out, want = sys.argv[1], int(sys.argv[2])
files = []
for top in ("/usr/lib", "/usr/share"):
    for d, _, names in os.walk(top):
        for n in names:
            p = os.path.join(d, n)
            try:
                if os.path.isfile(p) and not os.path.islink(p) and \
                   4096 <= os.path.getsize(p) <= 4 << 20:
                    files.append(p)
            except OSError:
                pass
files.sort()
random.Random(1).shuffle(files)
done = 0
with open(out + ".tmp", "wb") as f:
    while done < want:
        before = done
        for p in files:
            try:
                with open(p, "rb") as g:
                    b = g.read(want - done)
            except OSError:
                continue
            f.write(b)
            done += len(b)
            if done >= want:
                break
        if done == before:
            sys.exit("no readable files under /usr")
os.rename(out + ".tmp", out)
PY
	fi
	BENCH_CORPUS=$out
}

# bench_random BYTES: $BENCH_DIR/random-BYTES.bin, incompressible but
# deterministic (AES-CTR keystream under a fixed key).
bench_random() {
	local bytes=$1 out
	out=$(bench_reuse random "$bytes")
	if [[ ! -s $out ]]; then
		echo "bench: generating $out" >&2
		head -c "$bytes" /dev/zero |
			openssl enc -aes-128-ctr -nosalt -iv 00000000000000000000000000000000 \
				-K 000102030405060708090a0b0c0d0e0f >"$out.tmp" ||
			bench_die "random data generation failed"
		mv "$out.tmp" "$out"
	fi
	BENCH_RANDOM=$out
}

# bench_image NAME SIZE MAPPED RANGES: a sparse image $BENCH_DIR/NAME.img of
# SIZE bytes with about MAPPED bytes of data in RANGES extents (4 KiB aligned,
# lengths and gaps varying, fixed seed). The data is 1 MiB chunks, 4 of 5 from
# the corpus, 1 of 5 random. Also writes NAME.mapped, a regular file holding
# exactly the mapped bytes (the hashing yardstick). Sets BENCH_IMG and
# BENCH_MAPPED. Regenerated only if the parameters changed.
bench_image() {
	local name=$1 size=$2 mapped=$3 ranges=$4
	local img="$BENCH_DIR/$name.img" stamp="$BENCH_DIR/$name.params"
	local params="v1 $size $mapped $ranges"
	BENCH_IMG=$img
	BENCH_MAPPED="$BENCH_DIR/$name.mapped"
	if [[ -f $img && -f $BENCH_MAPPED && $(cat "$stamp" 2>/dev/null) == "$params" ]]; then
		return 0
	fi
	bench_corpus $((mapped * 4 / 5 + 8 * MIB))
	bench_random $((mapped / 5 + 8 * MIB))
	echo "bench: generating $img ($((size / MIB)) MiB, ~$((mapped / MIB)) MiB in $ranges ranges)" >&2
	rm -f "$stamp"
	python3 - "$img" "$BENCH_MAPPED" "$size" "$mapped" "$ranges" \
		"$BENCH_CORPUS" "$BENCH_RANDOM" <<'PY' || bench_die "image generation failed"
import os, random, sys
img, mapped_out = sys.argv[1], sys.argv[2]
size, mapped, nranges = map(int, sys.argv[3:6])
corpus, rnd = open(sys.argv[6], "rb"), open(sys.argv[7], "rb")
B, MIB = 4096, 1 << 20
rng = random.Random(42)
# Range lengths: random weights, scaled to the mapped total, in blocks.
w = [rng.uniform(0.2, 1.8) for _ in range(nranges)]
lens = [max(1, int(mapped / B * x / sum(w))) for x in w]
# Gaps: the rest of the image, split at random, each at least 1 MiB.
free = size // B - sum(lens)
assert free >= (nranges + 1) * (MIB // B), "image too small"
g = [rng.uniform(0.2, 1.8) for _ in range(nranges + 1)]
gaps = [MIB // B + int((free - (nranges + 1) * (MIB // B)) * x / sum(g))
        for x in g]
pos = 0  # offset in the stream of mapped bytes
def data(n):
    global pos
    out = bytearray()
    while len(out) < n:
        take = min(MIB - pos % MIB, n - len(out))
        src = rnd if (pos // MIB) % 5 == 4 else corpus
        b = src.read(take)
        if not b:
            src.seek(0)
            continue
        out += b
        pos += len(b)
    return bytes(out)
with open(img + ".tmp", "wb") as f, open(mapped_out + ".tmp", "wb") as m:
    f.truncate(size)
    blk = 0
    for i in range(nranges):
        blk += gaps[i]
        left = lens[i] * B
        f.seek(blk * B)
        while left:
            b = data(min(left, 8 * MIB))
            f.write(b)
            m.write(b)
            left -= len(b)
        blk += lens[i]
    assert blk * B <= size
    os.fsync(f.fileno())
os.rename(img + ".tmp", img)
os.rename(mapped_out + ".tmp", mapped_out)
PY
	echo "$params" >"$stamp"
}

# bench_compress SRC OUT CMD...: OUT = CMD run with SRC on stdin, once.
bench_compress() {
	local src=$1 out=$2
	shift 2
	[[ -s $out && $out -nt $src ]] && return 0
	echo "bench: compressing $(basename "$out") with $*" >&2
	"$@" <"$src" >"$out.tmp" || bench_die "$* failed"
	mv "$out.tmp" "$out"
}

# Result table. bench_row LABEL SECONDS RSS_KIB [NOTE] (empty SECONDS: n/a,
# empty RSS: -); bench_target LABEL
# VALUE OP LIMIT UNIT (OP is <= or >=) records a target check; bench_print
# shows all rows and checks; bench_print returns 1 if a target was missed.
BENCH_ROWS=()
BENCH_CHECKS=()
BENCH_MISSED=0

bench_row() {
	local label=$1 s=$2 rss=$3 note=${4:-}
	if [[ -z $s ]]; then
		BENCH_ROWS+=("$(printf '%-40s %9s %10s  %s' "$label" n/a n/a "$note")")
	elif [[ -z $rss ]]; then
		BENCH_ROWS+=("$(printf '%-40s %9.3f %10s  %s' "$label" "$s" - \
			"$note")")
	else
		BENCH_ROWS+=("$(printf '%-40s %9.3f %10.1f  %s' "$label" "$s" \
			"$(bench_calc 'r / 1024' r="$rss")" "$note")")
	fi
}

bench_target() {
	local label=$1 value=$2 op=$3 limit=$4 unit=${5:-} verdict
	if [[ -z $value ]]; then
		BENCH_CHECKS+=("$(printf '%-40s %9s   (target %s %s%s)  n/a' \
			"$label" n/a "$op" "$limit" "$unit")")
		return 0
	fi
	if awk -v v="$value" -v l="$limit" -v op="$op" \
		'BEGIN { exit !(op == "<=" ? v <= l : v >= l) }'; then
		verdict=ok
	else
		verdict=MISSED
		BENCH_MISSED=1
	fi
	BENCH_CHECKS+=("$(printf '%-40s %9.2f%s (target %s %s%s)  %s' "$label" \
		"$value" "$unit" "$op" "$limit" "$unit" "$verdict")")
}

bench_print() {
	echo
	printf '%-40s %9s %10s\n' "command" "best s" "RSS MiB"
	printf '%s\n' "${BENCH_ROWS[@]}"
	echo
	printf '%s\n' "${BENCH_CHECKS[@]}"
	return "$BENCH_MISSED"
}
