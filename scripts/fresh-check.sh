#!/usr/bin/env bash
# Prove the README's two set-up commands on a fresh Debian 12: in a clean
# bookworm minbase root made with mmdebstrap, entered with chroot, run
# scripts/demo.sh and then scripts/test.sh from nothing.
#
#   scripts/fresh-check.sh [BASE]
#
# Without BASE the root is built in a temporary directory and removed after.
# With BASE, a pristine root is kept there: built by mmdebstrap if BASE does
# not exist yet, and only ever copied (into the temporary directory), so it
# stays fresh for the next run. The working tree (tracked and untracked
# files, not what .gitignore ignores, so no build*/) goes to /src in the root
# and ../shared to /shared. BMAPTK_TEST_FILTER and BMAPTK_DEMO_MIB are passed
# in; nothing else of this environment is. BMAPTK_FRESH_KEEP=1 keeps the
# root. Logs stay in the directory the summary names. Needs root and the
# network to Debian's mirror; takes tens of minutes (not part of CI).
# Exit status: 0 both passed, 1 either failed, 3 set-up failed.
set -uo pipefail

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." || exit 3
repo=$PWD
SUITE=bookworm
MIRRORS=("deb http://deb.debian.org/debian $SUITE main"
	"deb http://deb.debian.org/debian $SUITE-updates main"
	"deb http://deb.debian.org/debian-security $SUITE-security main")

die() {
	echo "fresh-check: $*" >&2
	exit 3
}

(($# <= 1)) || die "usage: $0 [BASE]"
base=${1:-}
((EUID == 0)) || die "must run as root (mmdebstrap, chroot, mounts)"

work=
root=
mounted=() # mount points made here, in order

# Undo, deepest first, every mount under the root: ours, and any a test left
# inside the chroot; detach loop devices backed by files in the root.
cleanup() {
	local i m dev back
	trap '' HUP INT PIPE TERM
	[[ -n $root ]] || return 0
	# Processes still in the chroot (this script was killed, not ^C'ed)
	# are its own children: end them, or the mounts stay busy.
	for m in /proc/[0-9]*/root; do
		[[ $(readlink "$m" 2>/dev/null) == "$root" ]] || continue
		m=${m#/proc/}
		kill -KILL "${m%/root}" 2>/dev/null
	done
	while read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m"
	done < <(while read -r _ _ _ _ m _; do
		m=$(printf '%b' "$m")
		[[ $m == "$root"/* ]] && printf '%s\n' "$m"
	done </proc/self/mountinfo | sort -r)
	for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
		mountpoint -q "${mounted[i]}" && umount -l "${mounted[i]}"
	done
	if command -v losetup >/dev/null; then
		losetup -l -n --raw -O NAME,BACK-FILE 2>/dev/null |
			while read -r dev back; do
				back=$(printf '%b' "$back")
				[[ $back == "$root"/* ]] && losetup -d "$dev"
			done
	fi
	if [[ ${BMAPTK_FRESH_KEEP:-0} == 1 ]]; then
		echo "fresh-check: kept $root"
	elif [[ -n $work ]]; then
		# --one-file-system: never into a mount that would not go.
		rm -rf --one-file-system -- "$work"
	fi
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

if ! command -v mmdebstrap >/dev/null; then
	echo "fresh-check: installing mmdebstrap"
	{ apt-get update && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends mmdebstrap; } \
		</dev/null || die "cannot install mmdebstrap"
fi

# mmdebstrap DIR: a bookworm minbase root in DIR.
debstrap() {
	echo "fresh-check: mmdebstrap --variant=minbase $SUITE $1"
	mmdebstrap --variant=minbase "$SUITE" "$1" "${MIRRORS[@]}" </dev/null ||
		die "mmdebstrap failed"
}

# Not tmpfs: the demo and the tests need FIEMAP and room.
work=$(mktemp -d /var/tmp/bmaptk-fresh.XXXXXX) || die "no temporary directory"
logs=$(mktemp -d "${TMPDIR:-/tmp}/bmaptk-fresh-logs.XXXXXX") ||
	die "no log directory"
if [[ -z $base ]]; then
	root=$work/root
	debstrap "$root"
else
	base=$(readlink -f "$base")
	if [[ ! -e $base ]]; then
		debstrap "$base"
	fi
	[[ -x $base/usr/bin/apt-get ]] || die "$base is not a Debian root"
	root=$work/root
	echo "fresh-check: copying $base"
	cp -a "$base" "$root" || die "cannot copy $base"
fi

echo "fresh-check: copying the working tree to $root/src"
mkdir -p "$root/src" "$root/shared" || die "cannot make $root/src"
if git -C "$repo" rev-parse --git-dir >/dev/null 2>&1; then
	# Tracked (with uncommitted changes) and untracked files, not ignored
	# ones; files deleted in the work tree are left out.
	git -C "$repo" ls-files -z -c -o --exclude-standard --deduplicate |
		while IFS= read -r -d '' f; do
			[[ -e $f || -L $f ]] && printf '%s\0' "$f"
		done | tar -C "$repo" --null -T - -cf - | tar -C "$root/src" -xf - ||
		die "cannot copy the tree"
else
	tar -C "$repo" --exclude='./build*' -cf - . | tar -C "$root/src" -xf - ||
		die "cannot copy the tree"
fi
if [[ -d $repo/../shared ]]; then
	cp -a "$repo/../shared/." "$root/shared/" || die "cannot copy ../shared"
fi
cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true

# mnt ARGS... DIR: mount, remember DIR for cleanup, and make it private:
# were the host's mounts shared, a mount under a bind of /dev (dev/shm here,
# or a test's) would show up in the host's /dev too.
mnt() {
	mount "$@" || die "mount $* failed"
	mounted+=("${!#}")
	mount --make-private "${!#}" || die "mount --make-private ${!#} failed"
}
mnt --bind /proc "$root/proc"
mnt --bind /sys "$root/sys"
mnt --bind /dev "$root/dev"
mnt --bind /dev/pts "$root/dev/pts"
# A tmpfs of its own, so tests' RAM directories stay in the chroot.
mnt -t tmpfs -o mode=1777,size=4g tmpfs "$root/dev/shm"

# in_root CMD LOG: run CMD (bash -c) in /src of the chroot with a fresh
# login's environment, output to the terminal and LOG; returns its status.
in_root() {
	local -a env=(HOME=/root USER=root LOGNAME=root SHELL=/bin/bash
		TERM=${TERM:-dumb} LANG=C.UTF-8
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
	[[ -n ${BMAPTK_TEST_FILTER:-} ]] &&
		env+=("BMAPTK_TEST_FILTER=$BMAPTK_TEST_FILTER")
	[[ -n ${BMAPTK_DEMO_MIB:-} ]] && env+=("BMAPTK_DEMO_MIB=$BMAPTK_DEMO_MIB")
	printf '\n######## fresh-check: %s ########\n' "$1"
	chroot "$root" /usr/bin/env -i "${env[@]}" /bin/bash -c "cd /src && $1" \
		</dev/null 2>&1 | tee "$2"
	return "${PIPESTATUS[0]}"
}

start=$SECONDS
in_root scripts/demo.sh "$logs/demo.log"
demo_rc=$?
demo_s=$((SECONDS - start))
in_root scripts/test.sh "$logs/test.log"
test_rc=$?
test_s=$((SECONDS - start - demo_s))
test_line=$(grep -E '^test\.sh: (PASSED|FAILED)' "$logs/test.log" | tail -1)
[[ -n $test_line ]] || test_line="(no summary) $(tail -n 1 "$logs/test.log")"
# ctest shows no output of skipped tests; its own logs have the reasons.
for d in build build-asan; do
	cp "$root/src/$d/Testing/Temporary/LastTest.log" "$logs/ctest-$d.log" \
		2>/dev/null
done
skipped=$(grep -oE 'Test +#[0-9]+: [^ ]+ \.*\*\*\*Skipped' "$logs/test.log" |
	sed -E 's/.*: ([^ ]+) .*/\1/' | sort | uniq -c |
	awk '{ printf "%s%s%s", (NR > 1 ? ", " : ""), $2, ($1 > 1 ? " x" $1 : "") }')

printf '\n==== fresh-check summary (Debian %s minbase, chroot) ====\n' "$SUITE"
echo "scripts/demo.sh: exit $demo_rc ($demo_s s)"
echo "scripts/test.sh: exit $test_rc ($test_s s)${BMAPTK_TEST_FILTER:+ (BMAPTK_TEST_FILTER=$BMAPTK_TEST_FILTER)}"
echo "  $test_line"
echo "  skipped: ${skipped:-none}"
if [[ -n $skipped ]]; then
	echo "  reasons (ctest logs):"
	cat "$logs"/ctest-*.log 2>/dev/null | grep -E ': (SKIP|skipping one case): ' | sort -u |
		sed 's/^/    /'
fi
echo "logs: $logs"
if ((demo_rc == 0 && test_rc == 0)); then
	echo "fresh-check: PASSED"
	exit 0
fi
echo "fresh-check: FAILED"
exit 1
