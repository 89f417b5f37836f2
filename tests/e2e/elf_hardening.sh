#!/usr/bin/env bash
# The release binary and plugins carry the hardening of cmake/hardening.cmake,
# as readelf sees them:
# - bmaptk is a PIE: ELF type DYN and the PIE bit in DT_FLAGS_1;
# - full RELRO: a GNU_RELRO segment and BIND_NOW (DT_FLAGS or DT_FLAGS_1 NOW);
# - no executable stack: GNU_STACK is RW, not RWE;
# - _FORTIFY_SOURCE: fortified libc calls (__*_chk) are imported;
# - stack protector: __stack_chk_fail is imported;
# - every shared object built here (plugins, libbmaptk.so.N): RELRO,
#   BIND_NOW, no executable stack; libbmaptk also fortified and protected.
# Skipped, saying why, for sanitizer builds (ASan replaces these checks and
# hardening.cmake leaves them alone), Debug builds, and builds configured
# with BMAPTK_HARDENING=OFF or without cmake/hardening.cmake.
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd readelf

cache=${BMAPTK_BUILD:-}/CMakeCache.txt
if [ -z "${BMAPTK_BUILD:-}" ] || [ ! -f "$cache" ]; then
	skip "BMAPTK_BUILD has no CMakeCache.txt; cannot tell how $BMAPTK was built"
fi
cache_value() {
	sed -n "s/^$1:[A-Z]*=//p" "$cache" | head -n 1
}
syms=$E2E_TMP/syms
readelf -sW --dyn-syms "$BMAPTK" >"$syms" 2>/dev/null ||
	fail "readelf cannot read $BMAPTK"
if grep -q '__asan_init' "$syms"; then
	skip "$BMAPTK is a sanitizer build (has __asan_init); it is not hardened"
fi
case $(cache_value CMAKE_BUILD_TYPE) in
Debug) skip "Debug build; hardening is for release builds" ;;
esac
case $(cache_value BMAPTK_HARDENING) in
'') skip "this build does not include cmake/hardening.cmake" ;;
OFF | FALSE | 0 | NO) skip "configured with BMAPTK_HARDENING=OFF" ;;
esac

# check_linking FILE: full RELRO and a stack that is not executable.
check_linking() {
	local f=$1 dyn seg
	dyn=$(readelf -dW "$f") || fail "readelf -d $f"
	seg=$(readelf -lW "$f") || fail "readelf -l $f"
	assert_contains "$seg" "GNU_RELRO" "$f: GNU_RELRO segment (RELRO)"
	if ! grep -qE '\(FLAGS\).*BIND_NOW|\(FLAGS_1\).*NOW' <<<"$dyn"; then
		fail "$f: no BIND_NOW in the dynamic section (-z now): $(
			grep -E 'FLAGS' <<<"$dyn")"
	fi
	local stack
	stack=$(grep -E '^ *GNU_STACK' <<<"$seg") ||
		fail "$f: no GNU_STACK header (the stack would be executable)"
	# The flags column: RW, or RWE for an executable stack.
	if grep -qE ' RWE ' <<<"$stack "; then
		fail "$f: executable stack: $stack"
	fi
}

note "PIE"
hdr=$(readelf -hW "$BMAPTK") || fail "readelf -h $BMAPTK"
assert_contains "$(grep -E '^ *Type:' <<<"$hdr")" "DYN" "ELF type (PIE)"
dyn=$(readelf -dW "$BMAPTK")
grep -qE '\(FLAGS_1\).* PIE' <<<"$dyn" ||
	fail "DT_FLAGS_1 has no PIE bit: $(grep -E 'FLAGS' <<<"$dyn")"

note "RELRO, BIND_NOW, non-executable stack"
check_linking "$BMAPTK"

# check_compiling FILE SYMS: fortified calls and the stack protector.
check_compiling() {
	local chk
	chk=$(grep -oE '__[a-z0-9_]+_chk(@[A-Z_0-9.]+)?' "$2" |
		grep -v '__stack_chk' | sort -u)
	[ -n "$chk" ] ||
		fail "$1: no fortified libc call (__*_chk) imported: built without _FORTIFY_SOURCE?"
	note "$1: fortified: $(tr '\n' ' ' <<<"$chk")"
	grep -q '__stack_chk_fail' "$2" ||
		fail "$1: __stack_chk_fail is not imported: built without -fstack-protector-strong?"
}

note "fortified calls and stack protector"
check_compiling "$BMAPTK" "$syms"

# Shared objects: plugins, and libbmaptk.so.N (our code too: compiled
# checks as well). Test plugins are left out (one is not even ELF).
nso=0
while IFS= read -r -d '' so; do
	note "shared object $so"
	check_linking "$so"
	case $(basename "$so") in
	libbmaptk.so*)
		readelf -sW --dyn-syms "$so" >"$E2E_TMP/so-syms" ||
			fail "readelf cannot read $so"
		check_compiling "$so" "$E2E_TMP/so-syms"
		;;
	esac
	nso=$((nso + 1))
done < <(find "$BMAPTK_BUILD" -path "$BMAPTK_BUILD/tests" -prune -o \
	-path "$BMAPTK_BUILD/fuzz-smoke" -prune -o -type f \
	\( -name '*.so' -o -name '*.so.*' \) -print0 2>/dev/null)
note "checked bmaptk and $nso shared objects"
