# `bmaptk create` on bad input: exit codes (2 usage/bad input, 3 I/O,
# 130 interrupted), one clear line on stderr naming the file, nothing on
# stdout, and no bmap or temporary file left behind.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd timeout mkfifo fallocate

e2e_ext4_dir FS 8G # real extents for the images
T=$E2E_TMP/work
mkdir "$T"
truncate -s 100K "$FS/small.img"
printf 'some data' | dd of="$FS/small.img" conv=notrunc status=none ||
	fail "cannot write $FS/small.img"

# fails_with RC TEXT... -- CMD...: run CMD; it must exit RC with nothing on
# stdout and exactly one line on stderr containing every TEXT.
fails_with() {
	local rc=$1 what texts=() t
	shift
	while [ "$1" != -- ]; do
		texts+=("$1")
		shift
	done
	shift
	what=${*//"$BMAPTK"/bmaptk}
	run "$@"
	assert_rc "$rc" "$what"
	assert_eq "" "$RUN_OUT" "$what: stdout"
	assert_eq 1 "$(wc -l <"$E2E_TMP/run.err")" "$what: lines on stderr [$RUN_ERR]"
	for t in "${texts[@]}"; do
		assert_contains "$RUN_ERR" "$t" "$what: stderr"
	done
}

# Bad IMAGE: exit 2.
fails_with 2 "$T/missing.img" "No such file" -- \
	"$BMAPTK" create "$T/missing.img"
fails_with 2 "$T" "is a directory" -- "$BMAPTK" create "$T"
fails_with 2 /dev/null "not a regular file" -- "$BMAPTK" create /dev/null
mkfifo "$T/fifo" # tried last, below

# Bad usage: exit 2.
fails_with 2 "IMAGE" -- "$BMAPTK" create
fails_with 2 "IMAGE" -- "$BMAPTK" create "$FS/small.img" "$FS/small.img"
fails_with 2 "--bogus" -- "$BMAPTK" create --bogus "$FS/small.img"
fails_with 2 "-o" -- "$BMAPTK" create "$FS/small.img" -o
assert_dir_entries "$T" fifo "usage errors"

# A failed create leaves an existing -o file alone, and no temporary file.
OLD='<?xml version="1.0" ?><bmap version="2.0"><!-- old --></bmap>'
echo "$OLD" >"$T/keep.bmap"
fails_with 2 "$T/missing.img" -- \
	"$BMAPTK" create "$T/missing.img" -o "$T/keep.bmap"
assert_eq "$OLD" "$(cat "$T/keep.bmap")" "-o file after a failed create"
assert_dir_entries "$T" $'fifo\nkeep.bmap' "after a failed create"

# Unwritable -o: exit 3, naming the path, nothing left behind.
fails_with 3 "$T/nodir/x.bmap" "No such file" -- \
	"$BMAPTK" create "$FS/small.img" -o "$T/nodir/x.bmap"
assert_no_file "$T/nodir" "-o in a missing directory"

ro=$T/ro
mkdir "$ro"
how=
if chattr +i "$ro" 2>/dev/null; then
	on_exit "chattr -i '$ro'"
	how="chattr +i"
elif mount --bind "$ro" "$ro" 2>/dev/null; then
	on_exit "umount '$ro'"
	mount -o remount,bind,ro "$ro" 2>/dev/null && how="read-only bind mount"
fi
if [ -z "$how" ] || touch "$ro/probe" 2>/dev/null; then
	rm -f "$ro/probe"
	skip_case "cannot make a read-only directory here (as root)"
else
	fails_with 3 "$ro/x.bmap" -- \
		"$BMAPTK" create "$FS/small.img" -o "$ro/x.bmap"
	assert_dir_entries "$ro" "" "read-only directory ($how)"
fi

# -o naming a directory: found only at the final rename, after hashing.
mkdir "$T/isdir"
run "$BMAPTK" create "$FS/small.img" -o "$T/isdir"
assert_rc 3 "create -o DIRECTORY"
assert_eq "" "$RUN_OUT" "create -o DIRECTORY: stdout"
assert_contains "$(tail -n 1 "$E2E_TMP/run.err")" "$T/isdir" \
	"create -o DIRECTORY: last line of stderr"
assert_dir_entries "$T" $'fifo\nisdir\nkeep.bmap\nro' "after -o DIRECTORY"
assert_dir_entries "$T/isdir" "" "-o DIRECTORY"

# A write error on stdout: exit 3, naming it.
if [ -w /dev/full ]; then
	rc=0
	"$BMAPTK" create "$FS/small.img" >/dev/full 2>"$E2E_TMP/full.err" ||
		rc=$?
	assert_eq 3 "$rc" "create >/dev/full"
	assert_contains "$(tail -n 1 "$E2E_TMP/full.err")" \
		"stdout: write error: No space left on device" "create >/dev/full"
else
	skip_case "no writable /dev/full"
fi

# --help: exit 0, documents the options and the exit codes.
run "$BMAPTK" create --help
assert_rc 0 "create --help"
assert_eq "" "$RUN_ERR" "create --help: stderr"
for t in "-o, --output BMAP" "--no-checksum" "exit codes" "0 success" \
	"1 data does not verify" "2 usage" "3 I/O" "130 interrupted"; do
	assert_contains "$RUN_OUT" "$t" "create --help"
done

# SIGINT while hashing: exit 130, no bmap and no temporary file. 4 GiB of
# preallocated blocks: FIEMAP maps them, reading them costs no disk I/O.
if ! fallocate -l 4G "$FS/big.img" 2>/dev/null; then
	skip_case "SIGINT: cannot preallocate 4 GiB in $FS"
else
	out=$T/int
	mkdir "$out"
	# Background jobs of a script ignore SIGINT; give bmaptk the default.
	env --default-signal=INT "$BMAPTK" create "$FS/big.img" \
		-o "$out/big.bmap" >"$E2E_TMP/int.out" 2>"$E2E_TMP/int.err" &
	pid=$!
	# Its temporary file appears just before the handlers are installed.
	for ((i = 0; i < 500; i++)); do
		[ -n "$(ls -A "$out")" ] && break
		sleep 0.01
	done
	sleep 0.1
	if kill -INT "$pid" 2>/dev/null; then
		for ((i = 0; i < 1000; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.01
		done
		if kill -0 "$pid" 2>/dev/null; then
			kill -KILL "$pid"
			fail "create still runs 10 s after SIGINT"
		fi
		rc=0
		wait "$pid" || rc=$?
		err=$(cat "$E2E_TMP/int.err")
		assert_eq 130 "$rc" "create interrupted by SIGINT; stderr [$err]"
		assert_eq "" "$(cat "$E2E_TMP/int.out")" "SIGINT: stdout"
		assert_contains "$err" "interrupted" "SIGINT: stderr"
		assert_dir_entries "$out" "" "after SIGINT"
		note "SIGINT: stopped within $((i * 10)) ms: $err"
	else
		wait "$pid"
		skip_case "SIGINT: create of 4 GiB finished in under 0.1 s"
	fi
	rm -f "$FS/big.img"
fi

# -o naming a device node: the node must stay (bmaptk may write into it or
# refuse it, but must not rename a regular file over it: think of -o
# /dev/null or /dev/stdout as root).
if mknod "$T/nulldev" c 1 3 2>/dev/null; then
	run "$BMAPTK" create "$FS/small.img" -o "$T/nulldev"
	[ -c "$T/nulldev" ] ||
		fail "create -o CHARDEV (exit $RUN_RC) replaced the device node: $(ls -l "$T/nulldev")"
	expected=$'fifo\nisdir\nkeep.bmap\nnulldev\nro'
	# The SIGINT case above leaves its (empty) output directory.
	[ -d "$T/int" ] && expected=$'fifo\nint\nisdir\nkeep.bmap\nnulldev\nro'
	assert_dir_entries "$T" "$expected" "after -o CHARDEV"
else
	skip_case "-o CHARDEV: cannot mknod in $T"
fi

# A FIFO must be refused, not opened (which blocks until a writer comes).
fails_with 2 "$T/fifo" "not a regular file" -- \
	timeout -s KILL 5 "$BMAPTK" create "$T/fifo"

note "all cases done"
