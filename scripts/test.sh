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
# A loop device or mount a test leaves behind fails the run (and is undone).
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

# Leaks. The e2e tests attach loop devices and mount filesystems under their
# temporary directories, and undo that on exit; a test killed past its traps
# (ctest's timeout sends SIGKILL) leaves them, and after a few such runs the
# machine has no free loop device. Each ctest run gets fresh parents for the
# tests' directories (lib.sh's E2E_TMPDIR, and E2E_RAMDIR for e2e_ramdir),
# so what is found under them afterwards is this run's, never that of tests
# someone else runs at the same time.

# resources: one line per loop device, "loop DEV BACKING-FILE", and per
# mount, "mount DIR".
resources() {
	local dev back
	if command -v losetup >/dev/null; then
		# --raw writes a space in a name as \x20; " (deleted)" goes.
		losetup -l -n --raw -O NAME,BACK-FILE 2>/dev/null |
			while read -r dev back; do
				back=$(printf '%b' "$back")
				printf 'loop %s %s\n' "$dev" "${back% (deleted)}"
			done
	fi
	# The mount point is field 5, with octal escapes (\040 for a space).
	while read -r _ _ _ _ back _; do
		printf 'mount %b\n' "$back"
	done </proc/self/mountinfo
}

# leaks BEFORE DIR...: the lines of `resources` not in BEFORE (its output
# before the run) whose backing file or mount point is under a DIR.
leaks() {
	local before=$1 line path d
	shift
	resources | grep -vxF -f <(printf '%s\n' "$before") |
		while IFS= read -r line; do
			case $line in
			loop\ *) path=${line#loop * } ;;
			*) path=${line#mount } ;;
			esac
			for d in "$@"; do
				if [[ $path == "$d"/* ]]; then
					printf '%s\n' "$line"
					break
				fi
			done
		done
}

# undo_leaks LINE...: unmount the mounts (deepest first, lazily if busy),
# then detach the loop devices, each by its exact name.
undo_leaks() {
	local line dev
	while IFS= read -r line; do
		line=${line#mount }
		umount "$line" 2>/dev/null || umount -l "$line"
	done < <(printf '%s\n' "$@" | grep '^mount ' | sort -r)
	for line in "$@"; do
		[[ $line == loop\ * ]] || continue
		dev=${line#loop }
		dev=${dev%% *}
		# Gone already if it was mounted with -o loop (autoclear).
		[[ -e /sys/block/${dev#/dev/}/loop ]] || continue
		losetup -d "$dev"
	done
}

# $1 = build dir, rest = extra cmake arguments.
build_and_test() {
	local dir=$1 log rc line tmp ram before
	local -a leaked
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
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/bmaptk-suite.XXXXXX") || {
		note "$dir: cannot make a temporary directory" 1
		return
	}
	ram=
	[[ $(stat -f -c %T /dev/shm 2>/dev/null) == tmpfs ]] &&
		ram=$(mktemp -d /dev/shm/bmaptk-suite.XXXXXX 2>/dev/null)
	before=$(resources)
	log=$(mktemp)
	# Without a directory in /dev/shm, e2e_ramdir falls back into $tmp.
	(cd "$dir" && E2E_TMPDIR=$tmp E2E_RAMDIR=${ram:-$tmp} \
		ctest "${args[@]}" </dev/null) 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	line=$(grep -E '^[0-9]+% tests passed' "$log" | tail -1)
	rm -f "$log"
	if ((rc == 0)); then
		note "$dir: ${line:-ctest ok}" 0
	else
		note "$dir: ${line:-ctest failed (exit $rc)}" 1
	fi

	mapfile -t leaked < <(leaks "$before" "$tmp" ${ram:+"$ram"})
	if ((${#leaked[@]} > 0)); then
		printf 'test.sh: leaked: %s\n' "${leaked[@]}" >&2
		# Undone here, so that the machine keeps its loop devices.
		undo_leaks "${leaked[@]}"
		mapfile -t leaked < <(leaks "$before" "$tmp" ${ram:+"$ram"})
		if ((${#leaked[@]} > 0)); then
			printf 'test.sh: still there (busy?): %s\n' "${leaked[@]}" >&2
		fi
		note "$dir: LEAKED loop devices or mounts (see \"leaked:\" above)" 1
	fi
	if [[ ${E2E_KEEP:-0} == 1 ]]; then
		echo "test.sh: kept $tmp${ram:+ and $ram}"
	else
		# Left by tests killed before their cleanup; --one-file-system
		# keeps rm out of anything still mounted there.
		rm -rf --one-file-system -- "$tmp" ${ram:+"$ram"}
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
