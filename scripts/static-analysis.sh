#!/usr/bin/env bash
# Static analysis of bmaptk's C code:
#
#   scripts/static-analysis.sh [scan-build] [cppcheck]     (default: both)
#
# scan-build   the clang static analyzer over a Debug build of the library,
#              the CLI and the plugins, in build-scan/ (BMAPTK_SCAN_BUILD=DIR
#              to change); HTML reports in DIR/report/. The build force-
#              includes tests/static/analyzer.h, which lets the analyzer see
#              that bmaptk_set_error() returns its non-zero status.
# cppcheck     cppcheck --enable=warning,performance,portability over src/
#              and include/, every preprocessor configuration, with the
#              suppressions (one reason each) in tests/static/cppcheck.supp.
#
# Findings are printed as FILE:LINE: what. Exit status: 0 clean, 1 findings,
# 2 usage, 3 a tool is missing (apt-get install clang-tools cppcheck) or
# the build failed.
set -uo pipefail

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." || exit 3
ROOT=$PWD
BUILD=${BMAPTK_SCAN_BUILD:-$ROOT/build-scan}
failed=0

need() {
	command -v "$1" >/dev/null && return 0
	echo "static-analysis: $1 is not installed (Debian package $2)" >&2
	exit 3
}

run_scan_build() {
	local log=$BUILD/scan-build.log rc
	need scan-build clang-tools
	echo "==== scan-build (build in $BUILD)"
	rm -rf "$BUILD"
	mkdir -p "$BUILD"
	# CFLAGS reach the analyzer and the compiler both; unused-value: the
	# shim's "(call, status)" is unused where a caller drops the result.
	if ! CFLAGS="-include $ROOT/tests/static/analyzer.h -I$ROOT/include -Wno-unused-value" \
		scan-build cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Debug \
		-DBMAPTK_TESTS=OFF >"$BUILD/cmake.log" 2>&1; then
		echo "static-analysis: cmake failed, see $BUILD/cmake.log" >&2
		exit 3
	fi
	scan-build -o "$BUILD/report" --status-bugs \
		make -C "$BUILD" -j"$(nproc 2>/dev/null || echo 2)" >"$log" 2>&1
	rc=$?
	# Findings: "file:line:col: warning: what [checker]".
	grep -E '^/.*: warning: .*\[[a-zA-Z.]+\]$' "$log" |
		sed "s|^$ROOT/||" | sort -u
	if grep -q 'scan-build: No bugs found' "$log"; then
		echo "scan-build: no findings"
	elif ((rc == 1)); then
		echo "scan-build: findings above; report: $(grep -o "scan-view [^']*" "$log" | tail -1)"
		failed=1
	else
		echo "static-analysis: the build failed, see $log" >&2
		exit 3
	fi
}

run_cppcheck() {
	local out rc
	need cppcheck cppcheck
	echo "==== cppcheck $(cppcheck --version | awk '{print $2}')"
	out=$(cppcheck --enable=warning,performance,portability --std=c11 \
		--library=posix --quiet --error-exitcode=1 -j2 \
		-I include -I src/core \
		--suppressions-list=tests/static/cppcheck.supp \
		--template='{file}:{line}: {severity}: {message} [{id}]' \
		src include 2>&1)
	rc=$?
	[[ -n $out ]] && echo "$out"
	if ((rc == 0)); then
		echo "cppcheck: no findings"
	else
		echo "cppcheck: findings above (false positive? add it with a reason to tests/static/cppcheck.supp)"
		failed=1
	fi
}

tools=("$@")
((${#tools[@]})) || tools=(scan-build cppcheck)
for t in "${tools[@]}"; do
	case $t in
	scan-build) run_scan_build ;;
	cppcheck) run_cppcheck ;;
	*)
		echo "usage: $0 [scan-build] [cppcheck]" >&2
		exit 2
		;;
	esac
done
exit "$failed"
