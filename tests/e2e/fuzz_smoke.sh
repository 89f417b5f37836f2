#!/usr/bin/env bash
# The fuzz harnesses (tests/fuzz) build and hold:
# - every input in tests/fuzz/regressions/<harness>/ (each once crashed,
#   leaked or broke a check) replays cleanly through its harness;
# - the seed corpus (tests/fuzz/make-seeds.sh: compat bmaps, files from the
#   real compressors) replays cleanly;
# - each harness then fuzzes for BMAPTK_FUZZ_SMOKE_SECONDS (default 2) with a
#   fixed seed and finds nothing.
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

nreg=0
for h in "${harnesses[@]}"; do
	bin=$HDIR/$h
	log=$ART/$h.log
	mapfile -t opts < <(fuzz_options "$h" "$SRC")

	regs=()
	if [ -d "$SRC/tests/fuzz/regressions/$h" ]; then
		mapfile -t regs < <(find "$SRC/tests/fuzz/regressions/$h" \
			-type f | sort)
	fi
	if [ "${#regs[@]}" -gt 0 ]; then
		run "$bin" -timeout=10 -rss_limit_mb=2048 "${regs[@]}"
		cp "$E2E_TMP/run.err" "$log"
		[ "$RUN_RC" = 0 ] || report "$h" "a regression input fails again" "$log"
		nreg=$((nreg + ${#regs[@]}))
	fi

	mkdir -p "$E2E_TMP/corpus-$h"
	run "$bin" "${opts[@]}" -seed=1 -max_total_time="$SECS" -timeout=10 \
		-rss_limit_mb=2048 -artifact_prefix="$ART/$h-" \
		"$E2E_TMP/corpus-$h" "$SEEDS/$h"
	cp "$E2E_TMP/run.err" "$log"
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
