#!/usr/bin/env bash
# Set up, build and run the whole test suite:
#
#   scripts/test.sh
#
# 1. installs missing Debian packages (scripts/deps.sh test),
# 2. checks formatting with clang-format (when installed),
# 3. builds build/ (RelWithDebInfo) and build-asan/ (Debug, ASan + UBSan),
# 4. runs ctest in both,
# 5. runs the static analyzers (scripts/static-analysis.sh: scan-build and
#    cppcheck must report nothing).
# Every step runs even if an earlier one failed; the exit status is non-zero
# if any failed. BMAPTK_TEST_FILTER=REGEX runs only matching tests (ctest -R).
# Tests that need loop devices run only as root and are skipped otherwise.
set -uo pipefail

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." || exit 3
jobs=$(nproc 2>/dev/null || echo 2)
failed=0
summary=()

heading() {
	printf '\n==== %s ====\n' "$*"
}

# Record one step's result for the final summary.
note() {
	summary+=("$1")
	[[ $2 == 0 ]] || failed=1
}

heading "dependencies"
scripts/deps.sh test || {
	echo "test.sh: dependencies missing, cannot go on" >&2
	exit 3
}

format_check() {
	local -a files bad=()
	local f
	if ! command -v clang-format >/dev/null; then
		note "format: skipped (clang-format not installed)" 0
		return
	fi
	mapfile -t files < <(find src include tests/unit plugins \
		-type f \( -name '*.c' -o -name '*.h' \) 2>/dev/null | sort)
	# One file at a time so the report names files, not hundreds of lines.
	for f in "${files[@]}"; do
		clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
	done
	if ((${#bad[@]} == 0)); then
		echo "all ${#files[@]} files formatted"
		note "format: ok (${#files[@]} files)" 0
	else
		printf 'not clang-formatted: %s\n' "${bad[@]}" >&2
		echo "fix with: clang-format -i ${bad[*]}" >&2
		note "format: FAILED (${#bad[@]} files)" 1
	fi
}

# $1 = build dir, rest = extra cmake arguments.
build_and_test() {
	local dir=$1 log rc line
	shift
	heading "$dir: configure and build"
	if ! cmake -S . -B "$dir" "$@" ||
		! make -C "$dir" --no-print-directory -j"$jobs"; then
		note "$dir: BUILD FAILED" 1
		return
	fi

	heading "$dir: ctest"
	local -a args=(--output-on-failure -j2 --no-tests=error
		${CTEST_EXTRA:+$CTEST_EXTRA})
	[[ -n ${BMAPTK_TEST_FILTER:-} ]] && args+=(-R "$BMAPTK_TEST_FILTER")
	log=$(mktemp)
	(cd "$dir" && ctest "${args[@]}" </dev/null) 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	line=$(grep -E '^[0-9]+% tests passed' "$log" | tail -1)
	rm -f "$log"
	if ((rc == 0)); then
		note "$dir: ${line:-ctest ok}" 0
	else
		note "$dir: ${line:-ctest failed (exit $rc)}" 1
	fi
}

start=$SECONDS
heading "clang-format"
format_check
build_and_test build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBMAPTK_SANITIZE=OFF
# Release checks (static binary, Debian package) test what ships, which is
# not the sanitizer build.
CTEST_EXTRA="-LE release" \
	build_and_test build-asan -DCMAKE_BUILD_TYPE=Debug -DBMAPTK_SANITIZE=ON

heading "static analysis"
if scripts/static-analysis.sh; then
	note "static analysis: clean" 0
else
	note "static analysis: FINDINGS (scripts/static-analysis.sh)" 1
fi

heading "summary"
result=PASSED
((failed == 0)) || result=FAILED
line=$(printf '%s; ' "${summary[@]}")
echo "test.sh: $result in $((SECONDS - start)) s: ${line%; }"
exit "$failed"
