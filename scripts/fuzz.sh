#!/usr/bin/env bash
# Fuzz bmaptk with libFuzzer (clang, ASan + UBSan):
#
#   scripts/fuzz.sh [SECONDS] [HARNESS...]
#
# 1. builds the harnesses of tests/fuzz in build-fuzz/ (clang, RelWithDebInfo,
#    BMAPTK_SANITIZE=ON, BMAPTK_FUZZ=ON),
# 2. makes fresh seed corpora (tests/fuzz/make-seeds.sh),
# 3. runs each HARNESS (default: all, one after the other, one core) for
#    SECONDS (default 600), with -timeout=10 -rss_limit_mb=2048 and a
#    -max_len fitting its input; it goes on after a crash (fork mode), so
#    one run can find several,
# 4. replays what it found and prints one line per harness and per finding.
#
# Corpora grow in build-fuzz/fuzz-corpus/<harness>/ and are kept between
# runs; findings (crash-*, leak-*, timeout-*, oom-*) and each run's log go
# to build-fuzz/fuzz-artifacts/<harness>/. A finding that is a real bug
# becomes a regression input: copy it to tests/fuzz/regressions/<harness>/.
#
# Environment: BMAPTK_FUZZ_BUILD=DIR (build directory), BMAPTK_FUZZ_SOURCE=DIR
# (source tree, default this one), BMAPTK_SHARED (compat data for seeds).
# Exit status: 0 nothing found, 1 findings, 2 usage, 3 build or setup failed.
set -uo pipefail

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." || exit 3
ROOT=$PWD
BUILD=${BMAPTK_FUZZ_BUILD:-$ROOT/build-fuzz}
SOURCE=${BMAPTK_FUZZ_SOURCE:-$ROOT}

usage() {
	echo "usage: $0 [SECONDS] [HARNESS...]" >&2
	exit 2
}

die() {
	echo "fuzz.sh: $*" >&2
	exit 3
}

# shellcheck source=tests/fuzz/harness-options.sh
. "$ROOT/tests/fuzz/harness-options.sh"

build() {
	local probe
	command -v clang >/dev/null || die "clang is not installed (apt-get install clang)"
	probe=$(mktemp -d)
	printf 'int LLVMFuzzerTestOneInput(const char *d, long n)\n{ return (int)(d && n); }\n' >"$probe/p.c"
	clang -fsanitize=fuzzer,address,undefined "$probe/p.c" -o "$probe/p" \
		>/dev/null 2>&1 || {
		rm -rf "$probe"
		die "clang cannot link libFuzzer with ASan (apt-get install libclang-rt-dev)"
	}
	rm -rf "$probe"
	echo "fuzz.sh: building in $BUILD"
	CC=clang cmake -S "$SOURCE" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DBMAPTK_SANITIZE=ON -DBMAPTK_FUZZ=ON -DBMAPTK_TESTS=OFF \
		>"$BUILD.cmake.log" 2>&1 ||
		die "cmake failed, see $BUILD.cmake.log"
	[[ -f $BUILD/tests/fuzz/Makefile ]] ||
		die "$SOURCE/CMakeLists.txt does not add tests/fuzz when BMAPTK_FUZZ is ON"
	cmake --build "$BUILD" --target fuzz -- -j"$(nproc 2>/dev/null || echo 2)" \
		>"$BUILD.build.log" 2>&1 ||
		die "build failed, see $BUILD.build.log"
	rm -f "$BUILD.cmake.log" "$BUILD.build.log"
}

# The last status line of a libFuzzer log, shortened: runs, coverage,
# corpus size, speed.
stats() {
	local line runs cov corp speed
	line=$(grep -E '^#[0-9]+' "$1" | tail -1)
	runs=$(grep -oE '^#[0-9]+' <<<"$line")
	cov=$(grep -oE 'cov: [0-9]+' <<<"$line")
	corp=$(grep -oE 'corp: [0-9]+' <<<"$line")
	speed=$(grep -oE 'exec/s:? [0-9]+' <<<"$line")
	echo "${runs:-#0} runs, ${cov:-cov: ?}, ${corp:-corp: ?}, ${speed:-exec/s ?}"
}

# One line saying what a finding is: the sanitizer's or check's summary and
# the first frame in bmaptk's own code.
describe() {
	local bin=$1 input=$2 out what frame
	out=$(ASAN_OPTIONS=detect_leaks=1 "$bin" -timeout=10 -rss_limit_mb=2048 \
		"$input" 2>&1)
	what=$(grep -m1 -E 'SUMMARY:|fuzz check failed|ERROR: libFuzzer' <<<"$out")
	# The first frame in the library, else in the harness.
	frame=$(grep -m1 -E '#[0-9]+ .* in [^ ]+ [^ ]*/src/[^ ]+\.c:[0-9]+' <<<"$out" ||
		grep -m1 -E '#[0-9]+ .* in [^ ]+ [^ ]*/tests/fuzz/[^ ]+\.c:[0-9]+' <<<"$out")
	frame=$(sed -E 's/.* in ([^ ]+) [^ ]*\/((src|tests\/fuzz)\/[^ ]+).*/\1 \2/' <<<"$frame")
	[[ -n $what ]] || what="does not reproduce alone"
	echo "${what#*SUMMARY: } @ ${frame:-?}"
}

run_one() {
	local h=$1 bin=$BUILD/tests/fuzz/$1 corpus art log
	local -a args dirs found
	corpus=$BUILD/fuzz-corpus/$h
	art=$BUILD/fuzz-artifacts/$h
	log=$art/log-$(date +%Y%m%d-%H%M%S)
	mkdir -p "$corpus" "$art"
	mapfile -t args < <(fuzz_options "$h" "$ROOT")
	args+=(-max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048
		-artifact_prefix="$art/" -print_final_stats=1 -fork=1
		-ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
	dirs=("$corpus")
	[[ -d $SEEDS/$h ]] && dirs+=("$SEEDS/$h")
	[[ -d $ROOT/tests/fuzz/regressions/$h ]] &&
		dirs+=("$ROOT/tests/fuzz/regressions/$h")
	touch "$art/.start"
	echo "fuzz.sh: $h for ${SECS}s (log $log)"
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
		"$bin" "${args[@]}" "${dirs[@]}" >"$log" 2>&1
	mapfile -t found < <(find "$art" -maxdepth 1 -type f \
		\( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
		-o -name 'oom-*' \) -newer "$art/.start" | sort)
	SUMMARY+=("$h: $(stats "$log"), ${#found[@]} new findings")
	local f
	for f in "${found[@]}"; do
		FINDINGS+=("$h: $f: $(describe "$bin" "$f")")
	done
}

SECS=${1:-600}
[[ $SECS =~ ^[0-9]+$ ]] || usage
shift $(($# > 0 ? 1 : 0))
build
mapfile -t ALL < <(find "$BUILD/tests/fuzz" -maxdepth 1 -type f -name 'fuzz_*' \
	-perm -u+x -printf '%f\n' | sort)
((${#ALL[@]})) || die "no harnesses were built in $BUILD/tests/fuzz"
HARNESSES=("$@")
((${#HARNESSES[@]})) || HARNESSES=("${ALL[@]}")
for h in "${HARNESSES[@]}"; do
	[[ -x $BUILD/tests/fuzz/$h ]] || die "no harness $h (have: ${ALL[*]})"
done
SEEDS=$BUILD/fuzz-seeds
"$ROOT/tests/fuzz/make-seeds.sh" "$SEEDS" >/dev/null || die "seeds failed"

SUMMARY=()
FINDINGS=()
start=$SECONDS
for h in "${HARNESSES[@]}"; do
	run_one "$h"
done

echo
echo "fuzz.sh: $((SECONDS - start)) s"
printf '  %s\n' "${SUMMARY[@]}"
if ((${#FINDINGS[@]})); then
	echo "fuzz.sh: FINDINGS (replay: BUILD/tests/fuzz/HARNESS FILE):"
	printf '  %s\n' "${FINDINGS[@]}"
	exit 1
fi
echo "fuzz.sh: no findings"
