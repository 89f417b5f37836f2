#!/usr/bin/env bash
# Install the Debian packages bmaptk needs, only those that are missing.
#
#   scripts/deps.sh build   build dependencies only
#   scripts/deps.sh demo    build + what scripts/demo.sh runs
#   scripts/deps.sh test    build + demo + test dependencies (default)
#
# Exit status: 0 all present (or installed), 2 usage, 3 packages missing and
# we cannot install them (not root, or apt-get failed).
set -euo pipefail

# Everything needed to configure and compile (CMakeLists.txt, plugins/).
BUILD_PKGS=(
	build-essential cmake pkg-config
	libxml2-dev libssl-dev libzstd-dev liblzma-dev zlib1g-dev libbz2-dev
	libisal-dev libcmocka-dev
	libcurl4-openssl-dev libgpgme-dev libjansson-dev # remote, signatures
	libarchive-dev liblz4-dev liblzo2-dev            # plugins
	libblkid-dev libext2fs-dev                       # create --fs
)

# Tools scripts/demo.sh runs besides the build: scripts/make-sample-image.sh
# (sfdisk, mkfs.vfat, mcopy, mkfs.ext4, openssl) and zstd. A minbase system
# lacks all but e2fsprogs.
DEMO_PKGS=(fdisk dosfstools mtools e2fsprogs openssl zstd)

# Tools the test suite and benchmarks run (besides DEMO_PKGS): reference
# tools, compressors, image makers, helpers of tests/e2e/*.sh.
TEST_PKGS=(
	bmap-tools
	gzip pigz xz-utils bzip2 pbzip2 lbzip2 isal
	lz4 lzop lzip ncompress zip unzip tar
	gnupg openssh-client
	util-linux squashfs-tools
	android-sdk-libsparse-utils
	time python3 python3-pyftpdlib jq curl file
	mandoc zsh bash-completion # man page lint, completion tests
	fiu-utils libfiu0          # injected I/O faults
	strace                     # plugins_archive.sh: no input runs a program
	tmux                       # progress_tty.sh: a real terminal
	musl-tools debhelper lintian # static binary, Debian package
	clang libclang-rt-dev        # fuzz harnesses (tests/e2e/fuzz_smoke.sh)
	clang-tools cppcheck         # scripts/static-analysis.sh
	clang-format # the format check in scripts/test.sh
)

# Servers the remote tests start on their own ports. Their packages start a
# system-wide daemon when installed, so they are installed only in CI
# (CI=true), with service start-up blocked; elsewhere those cases skip.
CI_PKGS=(nginx openssh-server)

usage() {
	echo "usage: $0 [build|demo|test]" >&2
	exit 2
}

is_installed() {
	local status
	status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
	[[ $status == "install ok installed" ]]
}

# In CI, keep package scripts from starting daemons (policy-rc.d exit 101 is
# Debian's "action forbidden"); the file is removed when we exit.
block_services() {
	local policy=/usr/sbin/policy-rc.d
	[[ -e $policy ]] && return 0
	printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" &&
		trap "rm -f '$policy'" EXIT # expands now: policy is local
}

main() {
	local what=${1:-test}
	local -a want missing=()
	case $what in
	build) want=("${BUILD_PKGS[@]}") ;;
	demo) want=("${BUILD_PKGS[@]}" "${DEMO_PKGS[@]}") ;;
	test)
		want=("${BUILD_PKGS[@]}" "${DEMO_PKGS[@]}" "${TEST_PKGS[@]}")
		[[ ${CI:-} != true ]] || want+=("${CI_PKGS[@]}")
		;;
	-h | --help) usage ;;
	*) usage ;;
	esac

	if ! command -v dpkg-query >/dev/null; then
		echo "deps: dpkg-query not found; this script supports Debian" \
			"and derivatives only. Needed: ${want[*]}" >&2
		exit 3
	fi

	local p
	for p in "${want[@]}"; do
		is_installed "$p" || missing+=("$p")
	done
	if ((${#missing[@]} == 0)); then
		echo "deps: all ${#want[@]} $what packages present"
		return 0
	fi

	echo "deps: missing: ${missing[*]}"
	if ((EUID != 0)); then
		echo "deps: not root; install them with:" >&2
		echo "  sudo apt-get update && sudo apt-get install -y" \
			"--no-install-recommends ${missing[*]}" >&2
		exit 3
	fi

	export DEBIAN_FRONTEND=noninteractive
	[[ ${CI:-} != true ]] || block_services
	# stdin from /dev/null: CI runs with no terminal and apt must never ask.
	if ! apt-get update </dev/null; then
		echo "deps: apt-get update failed (see above)" >&2
		exit 3
	fi
	if ! apt-get install -y --no-install-recommends "${missing[@]}" \
		</dev/null; then
		echo "deps: apt-get install failed for: ${missing[*]}" >&2
		exit 3
	fi

	# A package apt "installed" but dpkg does not list means a wrong name.
	local still=()
	for p in "${missing[@]}"; do
		is_installed "$p" || still+=("$p")
	done
	if ((${#still[@]} != 0)); then
		echo "deps: still missing after apt-get: ${still[*]}" >&2
		exit 3
	fi
	echo "deps: installed ${missing[*]}"
}

main "$@"
