#!/usr/bin/env bash
# The fuzz harnesses (tests/fuzz) build and hold:
# - every input in tests/fuzz/regressions/<harness>/ (each once crashed,
#   leaked or broke a check) replays cleanly through its harness;
# - the seed corpus (tests/fuzz/make-seeds.sh: compat bmaps, files from the
#   real compressors) replays cleanly;
# - each harness then fuzzes for BMAPTK_FUZZ_SMOKE_SECONDS (default 2; CI:
#   30) with a fixed seed and finds nothing, one harness per core.
# A finding fails the test with its sanitizer summary; the input is kept in
# $BMAPTK_BUILD/fuzz-smoke/artifacts/. scripts/fuzz.sh is the long run.
#
# Building the harnesses takes clang and a second build of the library, so
# this runs once per CI run: in the sanitizer build (whose $BMAPTK has
# __asan_init), or in a build configured with BMAPTK_FUZZ=ON, whose
# harnesses it uses as they are. Elsewhere, and without clang, it skips.
. "$(dirname "$0")/lib.sh"
e2e_init

SRC=${BMAPTK_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
[ -n "${BMAPTK_BUILD:-}" ] || skip "BMAPTK_BUILD is not set"
SECS=${BMAPTK_FUZZ_SMOKE_SECONDS:-2}
# shellcheck source=../fuzz/harness-options.sh
. "$SRC/tests/fuzz/harness-options.sh"

if [ -x "$BMAPTK_BUILD/tests/fuzz/fuzz_bmap" ]; then
	HDIR=$BMAPTK_BUILD/tests/fuzz
	OUT=$BMAPTK_BUILD/fuzz-smoke
	mkdir -p "$OUT" || fail "cannot make $OUT"
	note "using the harnesses of this build ($HDIR)"
else
	readelf -sW --dyn-syms "$BMAPTK" 2>/dev/null | grep -q __asan_init ||
		skip "runs in the sanitizer build only (BMAPTK_SANITIZE=ON), so CI builds the harnesses once"
	require_cmd clang cmake
	printf 'int LLVMFuzzerTestOneInput(const char *d, long n)\n{ return (int)(d && n); }\n' >"$E2E_TMP/probe.c"
	clang -fsanitize=fuzzer,address,undefined "$E2E_TMP/probe.c" \
		-o "$E2E_TMP/probe" >/dev/null 2>&1 ||
		skip "clang cannot link libFuzzer with ASan (Debian: libclang-rt-dev)"
	OUT=$BMAPTK_BUILD/fuzz-smoke
	HDIR=$OUT/build/tests/fuzz
	mkdir -p "$OUT" || fail "cannot make $OUT"
	note "building the harnesses in $OUT/build"
	if ! CC=clang cmake -S "$SRC" -B "$OUT/build" \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo -DBMAPTK_SANITIZE=ON \
		-DBMAPTK_FUZZ=ON -DBMAPTK_TESTS=OFF >"$OUT/cmake.log" 2>&1; then
		tail -n 20 "$OUT/cmake.log" >&2
		fail "configuring the fuzz build failed (log: $OUT/cmake.log)"
	fi
	[ -f "$HDIR/Makefile" ] ||
		skip "CMakeLists.txt does not add tests/fuzz (option BMAPTK_FUZZ)"
	if ! cmake --build "$OUT/build" --target fuzz -- -j2 \
		>"$OUT/build.log" 2>&1; then
		grep -E 'error|Error' "$OUT/build.log" | head -n 20 >&2
		fail "building the harnesses failed (log: $OUT/build.log)"
	fi
fi
ART=$OUT/artifacts
mkdir -p "$ART" || fail "cannot make $ART"

mapfile -t harnesses < <(find "$HDIR" -maxdepth 1 -type f -name 'fuzz_*' \
	-perm -u+x -printf '%f\n' | sort)
[ "${#harnesses[@]}" -gt 0 ] || fail "no harnesses in $HDIR"

SEEDS=$E2E_TMP/seeds
"$SRC/tests/fuzz/make-seeds.sh" "$SEEDS" >"$E2E_TMP/seeds.log" 2>&1 ||
	fail "make-seeds.sh failed: $(cat "$E2E_TMP/seeds.log")"

export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1

# report HARNESS WHAT LOG: fail with the sanitizer's summary.
report() {
	local what
	what=$(grep -m1 -E 'SUMMARY:|fuzz check failed|ERROR: libFuzzer' "$3")
	fail "$1: $2: ${what:-exit status $RUN_RC}; inputs kept in $ART; log $3"
}

# Regression inputs first, each harness once.
nreg=0
for h in "${harnesses[@]}"; do
	regs=()
	if [ -d "$SRC/tests/fuzz/regressions/$h" ]; then
		mapfile -t regs < <(find "$SRC/tests/fuzz/regressions/$h" \
			-type f | sort)
	fi
	[ "${#regs[@]}" -gt 0 ] || continue
	run "$HDIR/$h" -timeout=10 -rss_limit_mb=2048 "${regs[@]}"
	cp "$E2E_TMP/run.err" "$ART/$h.log"
	[ "$RUN_RC" = 0 ] || report "$h" "a regression input fails again" "$ART/$h.log"
	nreg=$((nreg + ${#regs[@]}))
done

# fuzz_one HARNESS: seeds, then SECS of fuzzing; its exit status.
fuzz_one() {
	local h=$1 opts
	mapfile -t opts < <(fuzz_options "$h" "$SRC")
	mkdir -p "$E2E_TMP/corpus-$h"
	"$HDIR/$h" "${opts[@]}" -seed=1 -max_total_time="$SECS" -timeout=10 \
		-rss_limit_mb=2048 -artifact_prefix="$ART/$h-" \
		"$E2E_TMP/corpus-$h" "$SEEDS/$h" >/dev/null 2>"$ART/$h.log"
}

# Then the fuzzing, as many harnesses at once as there are cores (CI gives
# each 30 s: BMAPTK_FUZZ_SMOKE_SECONDS in .ci/run).
par=$(nproc 2>/dev/null || echo 2)
declare -A pid_of=()
for h in "${harnesses[@]}"; do
	while [ "$(jobs -rp | wc -l)" -ge "$par" ]; do
		wait -n || true
	done
	fuzz_one "$h" &
	pid_of[$h]=$!
done
for h in "${harnesses[@]}"; do
	RUN_RC=0
	wait "${pid_of[$h]}" || RUN_RC=$?
	log=$ART/$h.log
	[ "$RUN_RC" = 0 ] || report "$h" "seeds or ${SECS}s of fuzzing" "$log"
	runs=$(grep -oE '^#[0-9]+' "$log" | tail -n 1)
	note "$h: seeds and ${runs#\#} runs, nothing found"
done
for h in "$SRC"/tests/fuzz/regressions/*/; do
	[ -d "$h" ] || continue
	h=$(basename "$h")
	[ -x "$HDIR/$h" ] || note "regressions for $h not replayed: harness not built here"
done
note "${#harnesses[@]} harnesses, $nreg regression inputs"
