# bmaptk run through a symlink named "bmaptool" takes bmaptool 3.9's command
# line. One script of bmaptool commands is run twice, with Debian's real
# bmaptool and with the alias: the bmaps it creates must have the same
# fields and checksums, the copies the same bytes (the image's), and the
# same commands must fail. Then what only the alias does: --version, -h,
# argparse-style parsing (abbreviations, "=", options after operands), and
# clear refusals (exit 2) of what bmaptool 3.9 does not take.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd cmp truncate dd gzip "$PYTHON"

e2e_ext4_dir IMG 256M # FIEMAP needs a real filesystem (not tmpfs)
BIN=$E2E_TMP/bin
mkdir -p "$BIN" && ln -s "$BMAPTK" "$BIN/bmaptool" ||
	fail "cannot make the bmaptool symlink"
ALIAS=$BIN/bmaptool

# A sparse image: data in three places, a partial last block, holes.
"$PYTHON" - "$IMG/disk.img" <<'EOF' || fail "cannot make the image"
import os, random, sys
rng = random.Random(39)
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
size = 40 * 1024 * 1024 + 1000
os.ftruncate(fd, size)
for off, n in ((0, 70000), (5 << 20, 300000), (size - 5000, 5000)):
    os.pwrite(fd, rng.randbytes(n), off)
os.close(fd)
EOF

# The real bmaptool, if Debian's is installed (and is not our alias).
REAL=
if [ -x /usr/bin/bmaptool ] && ! /usr/bin/bmaptool --version 2>&1 |
	grep -q bmaptk; then
	REAL=/usr/bin/bmaptool
fi

# run_script TOOL DIR: the bmaptool user's script, in DIR; writes each
# command's exit status to DIR/status (one "name rc" a line).
run_script() {
	local t=$1 d=$2 rc
	mkdir -p "$d" && cp --sparse=always "$IMG/disk.img" "$d/disk.img" &&
		cp --sparse=always "$IMG/disk.img" "$d/other.img" &&
		gzip -c "$d/disk.img" >"$d/disk.img.gz" ||
		fail "cannot prepare $d"
	: >"$d/status"
	step() {
		local name=$1
		shift
		rc=0
		(cd "$d" && "$@") >"$d/$name.out" 2>"$d/$name.err" || rc=$?
		echo "$name $((rc != 0))" >>"$d/status"
	}
	step create "$t" create -o disk.bmap disk.img
	step create_stdout "$t" create disk.img
	step create_nosum "$t" create --no-checksum -o nosum.bmap disk.img
	step copy_bmap "$t" copy --bmap disk.bmap disk.img out.bmap.img
	# Found by stripping extensions: disk.img.bmap, then disk.bmap.
	step copy_found "$t" copy disk.img out.found.img
	step copy_gz "$t" copy disk.img.gz out.gz.img
	step copy_none "$t" copy other.img out.none.img
	step copy_nobmap "$t" copy --nobmap disk.img out.nobmap.img
	step copy_noverify "$t" copy --no-verify --bmap disk.bmap disk.img \
		out.noverify.img
	step copy_quiet "$t" -q copy --bmap disk.bmap disk.img out.quiet.img
	step copy_nosum "$t" copy --bmap nosum.bmap disk.img out.nosum.img
	step both "$t" copy --nobmap --bmap disk.bmap disk.img out.both.img
}

run_script "$ALIAS" "$E2E_TMP/alias"
A=$E2E_TMP/alias
# What the script must give, whatever the real bmaptool does.
assert_eq "create 0
create_stdout 0
create_nosum 0
copy_bmap 0
copy_found 0
copy_gz 0
copy_none 1
copy_nobmap 0
copy_noverify 0
copy_quiet 0
copy_nosum 0
both 1" "$(cat "$A/status")" "exit statuses of the alias"
assert_same_file "$A/disk.bmap" "$A/create_stdout.out" "create: -o vs stdout"
bmap_check_self "$A/disk.bmap" || fail "alias create: bad bmap checksum"
for o in bmap found gz nobmap noverify quiet nosum; do
	assert_same_file "$IMG/disk.img" "$A/out.$o.img" "copy ($o)"
done
assert_eq "" "$(cat "$A/copy_quiet.err")" "-q copy: stderr"
assert_contains "$(cat "$A/copy_none.err")" "bmap file not found" \
	"no bmap: bmaptool's message"
assert_contains "$(cat "$A/copy_none.err")" "--nobmap" "no bmap: advice"
assert_no_file "$A/out.none.img" "no bmap: nothing written"
assert_contains "$(cat "$A/both.err")" \
	"--nobmap and --bmap cannot be used together" "--nobmap --bmap"

# The same bmaps as bmaptk's own command line, byte for byte.
run "$BMAPTK" create -o "$E2E_TMP/bmaptk.bmap" "$A/disk.img"
assert_rc 0 "bmaptk create"
assert_same_file "$E2E_TMP/bmaptk.bmap" "$A/disk.bmap" "alias vs bmaptk"
run "$BMAPTK" create --no-checksum -o "$E2E_TMP/nosum.bmap" "$A/disk.img"
assert_same_file "$E2E_TMP/nosum.bmap" "$A/nosum.bmap" "alias vs bmaptk"

if [ -n "$REAL" ]; then
	note "comparing with $("$REAL" --version 2>&1)"
	run_script "$REAL" "$E2E_TMP/real"
	R=$E2E_TMP/real
	assert_eq "$(cat "$R/status")" "$(cat "$A/status")" \
		"exit statuses: real bmaptool vs alias"
	for b in disk nosum; do
		[ "$(bmap_fields "$R/$b.bmap")" = "$(bmap_fields "$A/$b.bmap")" ] ||
			fail "$b.bmap: fields differ from bmaptool's"
	done
	for o in bmap found gz nobmap noverify quiet nosum; do
		assert_same_file "$R/out.$o.img" "$A/out.$o.img" "copy ($o)"
	done
else
	skip_case "no Debian bmaptool (apt-get install bmap-tools)"
fi

# --version: bmaptool's form first, so "awk '{print $2}'" still works.
ver=$("$BMAPTK" --version | awk '{print $2}')
run "$ALIAS" --version
assert_rc 0 "--version"
assert_eq "bmaptool 3.9.0 (bmaptk $ver)" "$RUN_OUT" "--version"
run env PATH="$BIN:$PATH" bmaptool --vers # found on PATH, abbreviated
assert_eq "bmaptool 3.9.0 (bmaptk $ver)" "$RUN_OUT" "bmaptool --vers"
# Other names are bmaptk.
ln -s "$BMAPTK" "$BIN/bmaptool-old"
run "$BIN/bmaptool-old" --version
assert_eq "bmaptk $ver" "$RUN_OUT" "a symlink with another name"

# Help, on stdout, exit 0.
for args in "-h" "--help" "create -h" "copy --help"; do
	# shellcheck disable=SC2086 # split on purpose
	run "$ALIAS" $args
	assert_rc 0 "bmaptool $args"
	assert_contains "$RUN_OUT" "usage: bmaptool" "bmaptool $args"
done
run "$ALIAS" copy -h
for o in --bmap --nobmap --bmap-sig --no-sig-verify --keyring --fingerprint \
	--no-verify --psplash-pipe --removable-device; do
	assert_contains "$RUN_OUT" "$o" "copy -h lists $o"
done

# argparse's ways: "=", abbreviations, options after the operands, -oFILE.
cd "$A" || fail "cd $A"
run "$ALIAS" copy disk.img eq.img --bmap=disk.bmap --no-v
assert_rc 0 "copy IMAGE DEST --bmap=BMAP --no-v"
assert_same_file "$IMG/disk.img" eq.img "options after operands"
run "$ALIAS" create -oshort.bmap disk.img
assert_rc 0 "create -oFILE"
assert_same_file disk.bmap short.bmap "create -oFILE"
run "$ALIAS" -d copy --bmap disk.bmap disk.img dbg.img
assert_rc 0 "-d copy"
assert_contains "$RUN_ERR" \
	"running: bmaptk copy -d --bmap disk.bmap -- disk.img dbg.img" "-d"

# bmaptool's ssh:// is read over SFTP (port 1: refused at once, exit 3).
run "$ALIAS" -d copy --bmap ssh://127.0.0.1:1/d.bmap ssh://127.0.0.1:1/d.img \
	ssh.img
assert_rc 3 "copy from ssh://127.0.0.1:1"
assert_contains "$RUN_ERR" "running: bmaptk copy -d --bmap \
sftp://127.0.0.1:1/d.bmap -- sftp://127.0.0.1:1/d.img ssh.img" "ssh:// URLs"
assert_no_file "$A/ssh.img" "copy from ssh://: DEST"

# Refusals: exit 2, argparse's wording, and where bmaptk has it.
refuse() {
	local want=$1
	shift
	run "$ALIAS" "$@"
	assert_rc 2 "bmaptool $*"
	assert_contains "$RUN_ERR" "$want" "bmaptool $*"
	assert_no_file "$A/no.img" "bmaptool $*: nothing written"
}
refuse "unrecognized arguments: --check" copy --check --bmap disk.bmap \
	disk.img no.img
assert_contains "$RUN_ERR" "'bmaptk copy --help'" "--check: points to bmaptk"
refuse "unrecognized arguments: --scan-zeros" create --scan-zeros disk.img
refuse "unrecognized arguments: --json" --json copy disk.img no.img
refuse "unrecognized arguments: no2.img" copy --bmap disk.bmap disk.img \
	no.img no2.img
assert_contains "$RUN_ERR" "bmaptk copy IMAGE DEST DEST" "several DESTs"
refuse "invalid choice: 'check'" check disk.bmap disk.img
refuse "ambiguous option: --no could match" copy --no disk.img no.img
refuse "ambiguous option: --bm could match" copy --bm x disk.img no.img
refuse "argument --bmap: expected one argument" copy disk.img no.img --bmap
refuse "argument -o/--output: expected one argument" create disk.img -o
refuse "argument --nobmap: ignored explicit argument '1'" \
	copy --nobmap=1 disk.img no.img
refuse "the following arguments are required: dest" copy disk.img
refuse "the following arguments are required: command"
refuse "--quiet and --debug cannot be used together" -q -d copy --nobmap \
	disk.img no.img
refuse "--no-sig-verify and --keyring cannot be used together" \
	copy --no-sig-verify --keyring k disk.img no.img
refuse "--no-sig-verify and --fingerprint cannot be used together" \
	copy --no-sig-verify --fingerprint F disk.img no.img
refuse "--bmap-sig and --no-sig-verify cannot be used together" \
	copy --bmap-sig s --no-sig-verify disk.img no.img
refuse "the bmap signature file was specified, but bmap file was not found" \
	copy --nobmap --bmap-sig s disk.img no.img
refuse "unrecognized arguments: -q" copy -q --nobmap disk.img no.img

# A corrupted image fails verification with exit 1, as bmaptool's does.
cp --sparse=always disk.img bad.img &&
	printf 'X' | dd of=bad.img bs=1 seek=5242890 conv=notrunc status=none ||
	fail "cannot corrupt the image"
run "$ALIAS" copy --bmap disk.bmap bad.img bad.out
assert_rc 1 "copy of a corrupted image"
assert_contains "$RUN_ERR" "bad.img" "checksum mismatch names the image"
exit 0
