# The command line as a person meets it: every --help fits an 80-column
# serial console; usage lines name every option they summarise; an
# unknown option and a missing argument get different messages; -q with
# -d is refused, as the man page's [-q | -d] says; one range is "1 range";
# -d prints the decisions made.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init

for c in "" create copy check pack plugins; do
	# shellcheck disable=SC2086 # "" is no command
	run "$BMAPTK" $c --help
	assert_rc 0 "bmaptk $c --help"
	long=$(printf '%s\n' "$RUN_OUT" | awk 'length > 80')
	assert_eq "" "$long" "lines of bmaptk $c --help over 80 columns"
done
run "$BMAPTK" --help
assert_contains "$RUN_OUT" "[--json]" "global usage line"
run "$BMAPTK" create --help
assert_contains "$RUN_OUT" "usage: bmaptk create [-o BMAP] [--no-checksum] [--scan-zeros] [--fs]
                     [--map OFFSET:LENGTH]... [--force] [--split SIZE] IMAGE"

bm 2 copy --bogus a b
assert_contains "$RUN_ERR" "copy: unknown option '--bogus'"
bm 2 copy a b --bmap
assert_contains "$RUN_ERR" "copy: option '--bmap' needs an argument"
bm 2 -q copy -d a b
assert_contains "$RUN_ERR" "-q and -d cannot be used together"
bm 2 check -q -d a b
assert_contains "$RUN_ERR" "-q and -d cannot be used together"

e2e_ramdir R
"$PYTHON" -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
os.ftruncate(fd, 1 << 20); os.pwrite(fd, b"x" * 4096, 0)' "$R/one.img"
"$BMAPTK" create "$R/one.img" -o "$R/one.img.bmap" 2>/dev/null || fail "create"
bm 0 copy "$R/one.img" "$R/out"
assert_contains "$RUN_ERR" ", 1 range verified"

# plugins: one version format; says when the default directory is missing.
run "$BMAPTK" plugins
assert_rc 0 "bmaptk plugins"
assert_not_contains "$RUN_OUT" " 1.0 " "built-in versions in one format"
dir=$(printf '%s\n' "$RUN_OUT" | sed -n 's/^plugin directory: \([^ ]*\).*/\1/p')
if [ -d "$dir" ]; then
	assert_not_contains "$RUN_OUT" "(does not exist)"
else
	assert_contains "$RUN_OUT" "plugin directory: $dir (does not exist)"
fi

# -d says what was decided: bmap names tried, modules picked with their
# bids, how DEST was opened, where the time went; without -d, nothing.
gzip -kn "$R/one.img"
rm -f "$R/out"
bm 0 -d copy "$R/one.img.gz" "$R/out"
for want in "debug: bmap discovery: $R/one.img.gz.bmap: not there" \
	"debug: bmap discovery: $R/one.img.bmap: found" \
	"debug: source for $R/one.img.gz: file" \
	"debug: codec for the stream's first bytes: gzip (gzip bids" \
	"debug: sink for $R/out: file" \
	"debug: $R/out: regular file, created" \
	"debug: copy: ring of 8 slots of 1024 KiB" \
	"debug: copy: hashing: " "debug: copy: writing $R/out: "; do
	assert_contains "$RUN_ERR" "$want" "-d output"
done
rm -f "$R/out"
bm 0 copy "$R/one.img.gz" "$R/out"
assert_not_contains "$RUN_ERR" "debug:" "output without -d"
rm -f "$R/out"
bm 0 -d --json copy "$R/one.img.gz" "$R/out"
assert_contains "$RUN_ERR" '{"event":"log","level":"debug","message":"copy: ring of 8 slots'
note "help fits 80 columns; option errors say which kind; -d explains"
