# Shared helpers for the end-to-end tests in tests/e2e/*.sh.
#
# Usage, at the top of a test script:
#
#	. "$(dirname "$0")/lib.sh"
#	e2e_init                # checks $BMAPTK, makes $E2E_TMP, cleanup trap
#
# ctest runs every tests/e2e/*.sh with bash and sets BMAPTK (the CLI binary),
# BMAPTK_SHARED, BMAPTK_SRC and BMAPTK_BUILD; by hand, export BMAPTK yourself.
# Exit status: 0 pass, 1 fail (see `fail`), 77 skipped (see `skip`).
# This file only defines functions and a few variables; it changes no shell
# option, so each script picks its own (the create tests use `set -u`).
#
# Variables it sets:
#   E2E_NAME    the test's name (script file name without .sh), for messages
#   E2E_TMP     a fresh temporary directory, removed on exit (kept if
#               E2E_KEEP=1 is in the environment, for debugging); made under
#               $E2E_TMPDIR, else $TMPDIR, else /tmp
#               (E2E_RAMDIR, if set, is where e2e_ramdir makes its directories
#               instead of /dev/shm: scripts/test.sh points both at
#               directories of its own, to find what a test left behind)
#   PYTHON      the system python3 (bypasses slow pyenv shims)
#   RUN_RC, RUN_OUT, RUN_ERR   set by `run` (see there)

E2E_NAME=$(basename "${0%.sh}")
E2E_TMP=
E2E_CLEANUPS=()
if [ -x /usr/bin/python3 ]; then
	PYTHON=/usr/bin/python3
else
	PYTHON=$(command -v python3 || echo python3)
fi

# note MSG...: a progress line on stderr (ctest shows it on failure or -V).
note() {
	printf '%s: %s\n' "$E2E_NAME" "$*" >&2
}

# fail MSG...: report a failed assertion and exit 1.
fail() {
	printf '%s: FAIL: %s\n' "$E2E_NAME" "$*" >&2
	exit 1
}

# skip REASON...: the test cannot run here; exit 77 (ctest's "skipped").
skip() {
	printf '%s: SKIP: %s\n' "$E2E_NAME" "$*" >&2
	exit 77
}

# skip_case REASON...: one case cannot run here; say so and go on.
skip_case() {
	printf '%s: skipping one case: %s\n' "$E2E_NAME" "$*" >&2
}

# on_exit CMD...: run CMD (one eval'd string) at exit, before the temporary
# directory is removed; the last registered runs first. Use it to undo what
# rm -rf cannot (chattr +i, mounts, loop devices: see e2e_mount and
# e2e_losetup), right after making it. In a case_ subshell it runs when the
# case ends: what the case made goes with it (the main shell never sees it).
on_exit() {
	E2E_CLEANUPS+=("$*")
}

# The index in E2E_CLEANUPS from which this (sub)shell's own cleanups start,
# and whether this shell removes $E2E_TMP: case_ subshells undo only theirs.
E2E_CLEANUP_BASE=0
E2E_OWNS_TMP=1

e2e_cleanup() {
	local i
	# A second signal (ctest, an impatient ^C) must not cut the undoing
	# short: an exit from a trap run inside this one would skip the rest.
	trap '' HUP INT PIPE TERM
	for ((i = ${#E2E_CLEANUPS[@]} - 1; i >= E2E_CLEANUP_BASE; i--)); do
		eval "${E2E_CLEANUPS[i]}" >/dev/null 2>&1 || true
	done
	[ "$E2E_OWNS_TMP" = 1 ] || return 0
	if [ -n "$E2E_TMP" ] && [ -d "$E2E_TMP" ]; then
		if [ "${E2E_KEEP:-0}" = 1 ]; then
			note "kept $E2E_TMP"
		else
			# --one-file-system: should an unmount have failed, leave
			# that filesystem alone rather than empty it.
			rm -rf --one-file-system -- "$E2E_TMP"
		fi
	fi
}

# e2e_traps: run e2e_cleanup at exit, and exit (so through it) on the
# signals that end a test early: ^C, a hangup, a closed pipe, kill. (ctest's
# timeout sends SIGKILL, which no trap sees: scripts/test.sh checks for
# what is left.) Subshells do not inherit traps; case_ calls it again.
e2e_traps() {
	trap e2e_cleanup EXIT
	trap 'exit 129' HUP
	trap 'exit 130' INT
	trap 'exit 141' PIPE
	trap 'exit 143' TERM
}

# e2e_init: check $BMAPTK, make $E2E_TMP, install the cleanup trap.
e2e_init() {
	[ -n "${BMAPTK:-}" ] ||
		fail "BMAPTK is not set (path to the bmaptk binary)"
	[ -x "$BMAPTK" ] || fail "BMAPTK=$BMAPTK is not an executable"
	E2E_TMP=$(mktemp -d "${E2E_TMPDIR:-${TMPDIR:-/tmp}}/bmaptk-$E2E_NAME.XXXXXX") ||
		fail "cannot make a temporary directory"
	e2e_traps
}

# e2e_losetup VAR [OPT...] FILE: attach FILE to a free loop device (losetup
# -f --show OPT... FILE), detached by its name at exit, and store the
# device in VAR. Returns 1 if that fails, losetup's message in
# $E2E_TMP/losetup.err. Tries a few times: tests running at the same time
# race for the same free device.
e2e_losetup() {
	# Odd local names: VAR may well be "dev", which a local would hide.
	local _e2e_var=$1 _e2e_dev _e2e_try
	shift
	for _e2e_try in 1 2 3 4 5; do
		if _e2e_dev=$(losetup -f --show "$@" 2>"$E2E_TMP/losetup.err"); then
			on_exit "losetup -d '$_e2e_dev'"
			printf -v "$_e2e_var" '%s' "$_e2e_dev"
			return 0
		fi
		sleep 0.2
	done
	return 1
}

# e2e_mount [OPT...] SOURCE DIR: mount, unmounted (DIR, by its name) at
# exit; lazily if it is still busy then. Returns mount's status, its
# message in $E2E_TMP/mount.err. A test may unmount DIR itself earlier.
e2e_mount() {
	local dir=${!#}
	mount "$@" 2>"$E2E_TMP/mount.err" || return
	on_exit "umount '$dir' || umount -l '$dir'"
}

# e2e_ramdir VAR: make a new directory in RAM (in /dev/shm, or $E2E_RAMDIR,
# if it is a writable tmpfs; else in $E2E_TMP), removed at exit, and store
# its path in the variable VAR. For outputs whose filesystem does not
# matter: it spares the disk (the test machine's root is mounted with
# `discard`, where freeing a file of many extents takes seconds). Not for
# images that need FIEMAP.
e2e_ramdir() {
	local d parent=${E2E_RAMDIR:-/dev/shm}
	if [ "$(stat -f -c %T "$parent" 2>/dev/null)" = tmpfs ] &&
		d=$(mktemp -d "$parent/bmaptk-$E2E_NAME.XXXXXX" 2>/dev/null); then
		on_exit "rm -rf -- '$d'"
	else
		d=$(mktemp -d "$E2E_TMP/ram.XXXXXX") ||
			fail "cannot make a directory in $E2E_TMP"
	fi
	printf -v "$1" '%s' "$d"
}

# e2e_ext4_dir VAR [SIZE]: make a directory on a fresh ext4 filesystem
# (block size 4096, SIZE default 1G, sparse) in a file in RAM, loop-mounted,
# unmounted at exit, and store its path in VAR. Tests that need FIEMAP and
# real extents get them without touching the disk or waiting for its
# discards, and unaffected by other disk users. Needs root, mkfs.ext4 and a
# free loop device; otherwise (or with E2E_NO_LOOP=1) it says so and falls
# back to a directory in $E2E_TMP, whatever filesystem that is.
e2e_ext4_dir() {
	local var=$1 size=${2:-1G} ram mnt
	mnt=$(mktemp -d "$E2E_TMP/ext4.XXXXXX") ||
		fail "cannot make a directory in $E2E_TMP"
	if [ "${E2E_NO_LOOP:-0}" != 1 ] && [ "$(id -u)" = 0 ] &&
		command -v mkfs.ext4 >/dev/null 2>&1; then
		e2e_ramdir ram
		if truncate -s "$size" "$ram/fs.ext4" &&
			mkfs.ext4 -q -F -b 4096 -E nodiscard "$ram/fs.ext4" \
				>/dev/null 2>&1 &&
			e2e_mount -o loop "$ram/fs.ext4" "$mnt"; then
			printf -v "$var" '%s' "$mnt"
			return 0
		fi
		rm -f "$ram/fs.ext4"
	fi
	note "no loop-mounted ext4; using $mnt ($(stat -f -c %T "$mnt"))"
	printf -v "$var" '%s' "$mnt"
}

# start_server NAME [ARGS...]: tests/e2e/remote_server.py ($SERVER),
# serving the directory $D on 127.0.0.1, in the background until exit;
# sets PORT_<NAME>. Its log is $E2E_TMP/NAME.log; a server that does not
# start skips the test.
start_server() {
	local name=$1 i pid
	shift
	"$PYTHON" "$SERVER" --dir "$D" --port-file "$E2E_TMP/$name.port" \
		--log "$E2E_TMP/$name.log" "$@" 2>"$E2E_TMP/$name.err" &
	pid=$!
	on_exit "kill $pid; wait $pid"
	for ((i = 0; i < 100; i++)); do
		[ -s "$E2E_TMP/$name.port" ] && break
		kill -0 "$pid" 2>/dev/null ||
			skip "the test server did not start: $(cat "$E2E_TMP/$name.err")"
		sleep 0.1
	done
	[ -s "$E2E_TMP/$name.port" ] || skip "the test server did not start"
	printf -v "PORT_$name" '%s' "$(cat "$E2E_TMP/$name.port")"
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
	"$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port PORT PID: until something listens on 127.0.0.1:PORT (or PID
# died); returns 1 if it never did.
wait_port() {
	local i
	for ((i = 0; i < 100; i++)); do
		"$PYTHON" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' \
			"$1" 2>/dev/null && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# start_sshd DIR HOME: an sshd of the test's own on 127.0.0.1 (config, host
# key DIR/host_key and log in DIR, nothing from /etc/ssh) that takes the key
# HOME/.ssh/id_rsa made here; stopped at exit. Sets SSHD_PORT. Without
# libcurl's sftp or openssh-server it says so (skip_case) and returns 1.
start_sshd() {
	local s=$1 home=$2 sshd=/usr/sbin/sshd protos pid
	protos=$(curl-config --protocols 2>/dev/null || curl -V 2>/dev/null)
	grep -qiw sftp <<<"$protos" || {
		skip_case "libcurl has no sftp"
		return 1
	}
	[ -x "$sshd" ] || {
		skip_case "openssh-server is not installed"
		return 1
	}
	mkdir -p "$s" "$home/.ssh"
	chmod 700 "$home/.ssh"
	ssh-keygen -q -t ed25519 -N '' -f "$s/host_key" &&
		ssh-keygen -q -t rsa -b 2048 -N '' -f "$home/.ssh/id_rsa" ||
		fail "ssh-keygen failed"
	cp "$home/.ssh/id_rsa.pub" "$s/authorized_keys"
	SSHD_PORT=$(free_port)
	# libssh2 1.10 signs with ssh-rsa (SHA-1), which OpenSSH 9 refuses
	# unless told otherwise.
	cat >"$s/sshd_config" <<EOF
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $s/host_key
PidFile $s/sshd.pid
AuthorizedKeysFile $s/authorized_keys
PubkeyAuthentication yes
PubkeyAcceptedAlgorithms +ssh-rsa
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
EOF
	# sshd run by root wants /run/sshd; rather than create it, give sshd
	# a private /run in its own mount namespace.
	if ((EUID == 0)) && [ ! -d /run/sshd ]; then
		unshare -m sh -c 'mount -t tmpfs -o mode=755 tmpfs /run &&
			mkdir -m 755 /run/sshd && exec "$@"' sh \
			"$sshd" -f "$s/sshd_config" -D -E "$s/log" &
	else
		"$sshd" -f "$s/sshd_config" -D -E "$s/log" &
	fi
	pid=$!
	on_exit "kill $pid; wait $pid"
	wait_port "$SSHD_PORT" "$pid" || {
		skip_case "sshd did not start: $(cat "$s/log" 2>/dev/null)"
		return 1
	}
}

# require_cmd CMD...: skip the whole test unless every CMD is installed.
require_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip "$c is not installed"
	done
}

# run CMD [ARG...]: run a command without stopping the script whatever it
# returns. Sets RUN_RC (exit status), RUN_OUT and RUN_ERR (its stdout and
# stderr as text; trailing newlines dropped). The exact bytes stay in
# $E2E_TMP/run.out and $E2E_TMP/run.err until the next `run`.
run() {
	RUN_RC=0
	"$@" >"$E2E_TMP/run.out" 2>"$E2E_TMP/run.err" || RUN_RC=$?
	# shellcheck disable=SC2034 # for the caller
	RUN_OUT=$(cat "$E2E_TMP/run.out")
	RUN_ERR=$(cat "$E2E_TMP/run.err")
}

# assert_eq EXPECTED ACTUAL [WHAT]: fail unless the strings are equal.
assert_eq() {
	[ "$1" = "$2" ] ||
		fail "${3:-value}: expected [$1], got [$2]"
}

# assert_contains HAYSTACK NEEDLE [WHAT]: fail unless NEEDLE is a substring.
assert_contains() {
	case "$1" in
	*"$2"*) ;;
	*) fail "${3:-text}: [$2] not found in [$1]" ;;
	esac
}

# assert_not_contains HAYSTACK NEEDLE [WHAT]
assert_not_contains() {
	case "$1" in
	*"$2"*) fail "${3:-text}: [$2] unexpectedly found in [$1]" ;;
	*) ;;
	esac
}

# assert_rc EXPECTED [WHAT]: check RUN_RC from the last `run`, showing its
# stderr on failure.
assert_rc() {
	[ "$RUN_RC" = "$1" ] ||
		fail "${2:-exit status}: expected $1, got $RUN_RC; stderr: [$RUN_ERR]"
}

# assert_no_sanitizer [WHAT]: the last `run` printed no ASan/UBSan report.
assert_no_sanitizer() {
	assert_not_contains "$RUN_ERR" "Sanitizer" "${1:-stderr}"
	assert_not_contains "$RUN_ERR" "runtime error:" "${1:-stderr}"
}

# bm WANT_RC ARG...: run bmaptk; check its exit status, that stdout stays
# empty (bmaptk, like bmaptool, prints everything on stderr) and that no
# sanitizer reported anything. RUN_ERR has its stderr.
bm() {
	local want=$1
	shift
	run "$BMAPTK" "$@"
	assert_rc "$want" "bmaptk $*"
	assert_eq "" "$RUN_OUT" "stdout of bmaptk $*"
	assert_no_sanitizer "stderr of bmaptk $*"
}

# fault_image PATH SEED: the 64 MiB image of the fault tests, its ranges
# (MiB) [0,1) [4,16) [20,40) [50,58) and the last 8 KiB, random bytes
# from SEED; and PATH.bmap made by bmaptk.
fault_image() {
	"$PYTHON" - "$1" "$2" <<'EOF' || fail "cannot generate $1"
import os
import random
import sys

MIB = 1024 * 1024
rng = random.Random(int(sys.argv[2]))
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, 64 * MIB)
for off, n in [(0, MIB), (4 * MIB, 12 * MIB), (20 * MIB, 20 * MIB),
               (50 * MIB, 8 * MIB), (64 * MIB - 8192, 8192)]:
    assert os.pwrite(fd, rng.randbytes(n), off) == n
os.close(fd)
EOF
	"$BMAPTK" create "$1" -o "$1.bmap" 2>"$E2E_TMP/create.err" ||
		fail "bmaptk create: $(cat "$E2E_TMP/create.err")"
}

# case_ NAME FUNC [ARG...]: run one case in a subshell, so a failing case
# does not hide the others; cases_done MESSAGE then fails the script
# naming every failed case, or notes MESSAGE.
E2E_FAILED_CASES=()
case_() {
	local name=$1
	shift
	# The subshell has its own traps, so that what the case made (on_exit)
	# is undone when it ends, however it ends.
	if (
		E2E_CLEANUP_BASE=${#E2E_CLEANUPS[@]}
		E2E_OWNS_TMP=0
		e2e_traps
		"$@"
	); then
		note "ok: $name"
	else
		E2E_FAILED_CASES+=("$name")
	fi
}
cases_done() {
	[ ${#E2E_FAILED_CASES[@]} = 0 ] ||
		fail "failed cases: ${E2E_FAILED_CASES[*]}"
	note "$1"
}

# assert_same_file EXPECTED ACTUAL [WHAT]: fail unless byte-identical; for
# text files show the first lines of the diff.
assert_same_file() {
	cmp -s -- "$1" "$2" && return 0
	diff -u -- "$1" "$2" 2>/dev/null | head -n 20 >&2
	fail "${3:-files}: $2 differs from $1"
}

# assert_no_file PATH [WHAT]: fail if PATH exists (even a dangling link).
assert_no_file() {
	if [ -e "$1" ] || [ -L "$1" ]; then
		fail "${2:-file}: $1 should not exist"
	fi
}

# assert_dir_entries DIR EXPECTED [WHAT]: the sorted names in DIR (with dot
# files), one per line, must equal EXPECTED ("" for an empty directory).
assert_dir_entries() {
	local got
	# shellcheck disable=SC2012 # a newline in a name would only fail
	got=$(ls -A -- "$1" | LC_ALL=C sort)
	[ "$got" = "$2" ] ||
		fail "${3:-directory} $1: expected entries [$2], got [$got]"
}

# bmap_fields FILE: print the meaning of a bmap in a normalized text form,
# for diffing two bmaps made by different tools:
#
#	Version 2.0
#	ImageSize 821752
#	BlockSize 4096
#	BlocksCount 201
#	MappedBlocksCount 117
#	ChecksumType sha256
#	Range 0-1 chksum=<hex>
#	Range 7-7                       (a single block, no checksum)
#
# Comments, whitespace and BmapFileChecksum/BmapFileSHA1 are ignored (they
# differ between tools; check the file checksum with bmap_check_self).
# Ranges keep the file's order; "X" is written "X-X", so "5" and "5 - 5"
# compare equal; each range's attributes follow, sorted, hex lowercased.
# A missing field prints "<absent>". Fails (status 1, message on stderr)
# on a file that is not XML or whose root is not <bmap>.
bmap_fields() {
	"$PYTHON" - "$1" <<'EOF'
import sys
import xml.etree.ElementTree as ET

try:
    root = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError) as e:
    sys.exit("bmap_fields: %s: %s" % (sys.argv[1], e))
if root.tag != "bmap":
    sys.exit("bmap_fields: %s: root element is <%s>, not <bmap>"
             % (sys.argv[1], root.tag))
print("Version", root.get("version", "<absent>"))
for name in ("ImageSize", "BlockSize", "BlocksCount", "MappedBlocksCount",
             "ChecksumType"):
    el = root.find(name)
    print(name, "<absent>" if el is None else (el.text or "").strip())
bm = root.find("BlockMap")
for r in ([] if bm is None else bm.findall("Range")):
    text = "".join((r.text or "").split())
    first, _, last = text.partition("-")
    attrs = " ".join("%s=%s" % (k, v.strip().lower())
                     for k, v in sorted(r.attrib.items()))
    print(("Range %s-%s %s" % (first, last or first, attrs)).rstrip())
EOF
}

# bmap_check_self FILE: verify a bmap's own checksum (BmapFileChecksum with
# ChecksumType, or BmapFileSHA1 in format 1.3) the way bmaptool does: hash
# the file with the checksum's hex text replaced by as many '0'. Fails with
# a message if it is missing or wrong.
bmap_check_self() {
	"$PYTHON" - "$1" <<'EOF'
import hashlib
import re
import sys

path = sys.argv[1]
data = open(path, "rb").read()
m = re.search(rb"<BmapFileChecksum>\s*([0-9a-fA-F]+)\s*</BmapFileChecksum>",
              data)
algo = "sha1"
if m:
    t = re.search(rb"<ChecksumType>\s*(\w+)\s*</ChecksumType>", data)
    if not t:
        sys.exit("bmap_check_self: %s: no ChecksumType" % path)
    algo = t.group(1).decode()
else:
    m = re.search(rb"<BmapFileSHA1>\s*([0-9a-fA-F]+)\s*</BmapFileSHA1>", data)
if not m:
    sys.exit("bmap_check_self: %s: no file checksum" % path)
stored = m.group(1)
zeroed = data.replace(stored, b"0" * len(stored), 1)
actual = hashlib.new(algo, zeroed).hexdigest()
if actual != stored.decode().lower():
    sys.exit("bmap_check_self: %s: file checksum %s, computed %s"
             % (path, stored.decode(), actual))
EOF
}
