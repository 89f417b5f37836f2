# `bmaptk --json copy`: every line of stderr is one JSON object (UTF-8,
# strict JSON: no NaN), stdout stays empty, whatever happens:
#   - a copy that succeeds (with --check): start, bmap, progress, summary
#     (mapped_bytes and image_size equal the bmap's), dest ok, no error;
#   - failures: a checksum mismatch (exit 1), an unusable DEST (exit 3),
#     a bmap given as the image (exit 2): an `error` event with that exit
#     code is the last line;
#   - DEST and IMAGE names with a quote, a newline, a backslash, control
#     characters, invalid UTF-8 bytes (each bad byte becomes U+FFFD) and
#     valid UTF-8 (kept), in every event that names them, also in errors.
# Checked with python's strict parser and, when installed, jq.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd zstd "$PYTHON"

MIB=$((1024 * 1024))
SIZE=$((24 * MIB))
e2e_ramdir RAM

IMG=$RAM/disk.img
"$PYTHON" - "$IMG" "$SIZE" <<'EOF' || fail "cannot generate the image"
import os, random, sys
M = 1 << 20
path, size = sys.argv[1], int(sys.argv[2])
rng = random.Random(5)
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, size)
for off, n in [(0, M + 4096), (3 * M, 5 * M), (12 * M + 8192, 3 * M),
               (size - 4096, 4096)]:
    os.pwrite(fd, rng.randbytes(n), off)
os.close(fd)
EOF
"$BMAPTK" -q create "$IMG" -o "$IMG.bmap" || fail "bmaptk create"
zstd -q -T0 -c "$IMG" >"$IMG.zst" || fail "zstd"
ZST=$IMG.zst
read -r IMAGE_SIZE MAPPED < <("$PYTHON" - "$IMG.bmap" <<'EOF'
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
bs, size = int(r.find("BlockSize").text), int(r.find("ImageSize").text)
n = 0
for e in r.find("BlockMap").findall("Range"):
    a, _, b = "".join(e.text.split()).partition("-")
    n += min((int(b or a) + 1) * bs, size) - int(a) * bs
print(size, n)
EOF
)
[ -n "$MAPPED" ] || fail "cannot read $IMG.bmap"

# jcopy WANT_RC ARG...: run `bmaptk --json ARG...`; check the exit status,
# the empty stdout and that every stderr line is a JSON object with a known
# event (python, strict; jq too if present); a failed run must end with
# {"event":"error","exit":WANT_RC}. Leaves the events in $E2E_TMP/ev.json.
jcopy() {
	local want=$1 line
	shift
	run "$BMAPTK" --json "$@"
	assert_rc "$want" "bmaptk --json $*"
	[ -s "$E2E_TMP/run.out" ] && fail "stdout of bmaptk --json $*: [$RUN_OUT]"
	assert_not_contains "$RUN_ERR" "Sanitizer" "stderr of bmaptk $*"
	cp "$E2E_TMP/run.err" "$E2E_TMP/ev.json"
	"$PYTHON" - "$E2E_TMP/ev.json" "$want" <<'EOF' || fail "JSON of bmaptk --json $*"
import json, sys
KNOWN = {"start", "bmap", "progress", "range", "dest", "summary", "log",
         "error"}
data = open(sys.argv[1], "rb").read()
if not data.endswith(b"\n"):
    sys.exit("stderr does not end with a newline")
lines = data[:-1].split(b"\n")
def bad_constant(c):
    raise ValueError("not JSON: %s" % c)
evs = []
for i, raw in enumerate(lines, 1):
    try:
        o = json.loads(raw.decode("utf-8"), parse_constant=bad_constant)
    except ValueError as e:
        sys.exit("line %d is not UTF-8 JSON (%s): %r" % (i, e, raw))
    if not isinstance(o, dict) or o.get("event") not in KNOWN:
        sys.exit("line %d is not an event: %r" % (i, raw))
    evs.append(o)
want = int(sys.argv[2])
errors = [o for o in evs if o["event"] == "error"]
if want == 0 and errors:
    sys.exit("an error event in a successful run: %r" % errors)
if want and (evs[-1]["event"] != "error" or evs[-1].get("exit") != want
             or not isinstance(evs[-1].get("message"), str)):
    sys.exit("the last event is not an error with exit %d: %r"
             % (want, evs[-1]))
EOF
	if command -v jq >/dev/null 2>&1; then
		while IFS= read -r line; do
			printf '%s\n' "$line" | jq -e 'type == "object"' \
				>/dev/null 2>&1 || fail "jq rejects the line [$line]"
		done <"$E2E_TMP/ev.json"
	fi
}
# jq_py EXPR: evaluate a python expression over the events `evs` of the last
# jcopy, with `ev(name)` (the list of those events) and `one(name)`.
jq_py() {
	"$PYTHON" - "$E2E_TMP/ev.json" "$1" <<'EOF'
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
def ev(name):
    return [o for o in evs if o["event"] == name]
def one(name):
    found = ev(name)
    if len(found) != 1:
        sys.exit("%d %s events, expected 1" % (len(found), name))
    return found[0]
r = eval(sys.argv[2])
print(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False))
EOF
}
check_eq() { # EXPECTED PYEXPR
	local got
	got=$(jq_py "$2") || fail "cannot evaluate [$2] over the events"
	assert_eq "$1" "$got" "$2"
}

# --- a copy that succeeds ----------------------------------------------------
D=$RAM/card.img
jcopy 0 copy --check "$ZST" "$D"
cmp "$IMG" "$D" || fail "$D is not the image"
check_eq "$MAPPED" 'one("summary")["mapped_bytes"]'
check_eq "$IMAGE_SIZE" 'one("summary")["image_size"]'
check_eq "$MAPPED" 'one("start")["mapped_bytes"]'
check_eq "[\"$D\"]" 'one("start")["dests"]'
check_eq "[true, 1, 0]" \
	'[one("summary")[k] for k in ("verified", "dests_ok", "dests_failed")]'
check_eq "[\"$D\", \"ok\", 0, $MAPPED, \"ok\"]" \
	'[one("dest")[k] for k in ("dest", "status", "exit", "written_bytes", "check")]'
check_eq "[\"2.0\", true]" '[one("bmap")[k] for k in ("version", "checksums")]'
check_eq "true" 'all(o["done"] <= o["total"] for o in ev("progress"))'
check_eq "[$MAPPED, $MAPPED]" \
	'[[o["done"], o["total"]] for o in ev("progress") if o["what"] == "copying"][-1]'
check_eq "start" '[o["event"] for o in evs if o["event"] in ("start", "summary", "dest")][0]'
note "ok: a successful copy"

# --- failures -----------------------------------------------------------------
cp "$IMG" "$RAM/bad.img"
printf 'X' | dd of="$RAM/bad.img" bs=1 seek=$((4 * MIB)) conv=notrunc \
	status=none || fail "cannot corrupt"
cp "$IMG.bmap" "$RAM/bad.img.bmap"
jcopy 1 copy "$RAM/bad.img" "$RAM/bad.out"
check_eq "failed 1" 'one("dest")["status"] + " " + str(one("dest")["exit"])'
assert_contains "$(jq_py '[o["message"] for o in ev("log") if o["level"] == "error"]')" \
	"checksum mismatch for blocks 768-" "error log of a checksum mismatch"
jcopy 3 copy "$ZST" "$RAM/no/such/dir/card.img"
check_eq "failed 3" 'one("dest")["status"] + " " + str(one("dest")["exit"])'
assert_contains "$(jq_py 'ev("error")[-1]["message"]')" \
	"cannot create $RAM/no/such/dir/card.img" "error event of a bad DEST"
jcopy 2 copy "$IMG.bmap" "$RAM/x.img"
assert_contains "$(jq_py 'ev("error")[-1]["message"]')" \
	"this is a bmap file, not an image" "error event of a bmap as IMAGE"
note "ok: failures end with an error event"

# --- awkward names -------------------------------------------------------------
# name_json NAME: NAME as bmaptk must report it: invalid UTF-8 bytes each
# replaced by U+FFFD (python's decoder does that for these), as JSON.
name_json() {
	"$PYTHON" -c 'import json, os, sys
print(json.dumps(os.fsencode(sys.argv[1]).decode("utf-8", "replace"),
                 ensure_ascii=False))' "$1"
}
Q=$RAM/$'q"uo\nte'
X=$RAM/$'bad\xffname'
C=$RAM/$'c\\tl\x01\x1f\t\x7f caf\xc3\xa9 \xc0\xaf'
jcopy 0 copy "$ZST" "$Q" "$X" "$C"
for f in "$Q" "$X" "$C"; do
	cmp "$IMG" "$f" || fail "$(printf %q "$f") is not the image"
done
check_eq "[$(name_json "$Q"), $(name_json "$X"), $(name_json "$C")]" \
	'one("start")["dests"]'
check_eq "[$(name_json "$Q"), $(name_json "$X"), $(name_json "$C")]" \
	'[o["dest"] for o in ev("dest")]'
check_eq "\"$RAM/bad\\ufffdname\"" \
	'json.dumps(ev("dest")[1]["dest"])'
note "ok: odd DEST names"

# The same bytes in IMAGE's name (its bmap found next to it) and in errors.
I=$RAM/$'im"g\n\xff.img'
cp "$ZST" "$I.zst" || fail "cp"
cp "$IMG.bmap" "$I.bmap" || fail "cp"
jcopy 0 copy "$I.zst" "$RAM/out.img"
cmp "$IMG" "$RAM/out.img" || fail "odd IMAGE name: out.img is not the image"
check_eq "[$(name_json "$I.zst"), $(name_json "$I.bmap")]" \
	'[one("start")["image"], one("start")["bmap"]]'
BADDIR=$RAM/$'no\xff"dir\n'
jcopy 3 copy "$I.zst" "$BADDIR/card.img"
assert_contains "$(jq_py 'ev("error")[-1]["message"]')" \
	"cannot create $RAM/no"$'\xef\xbf\xbd''"dir' "error naming an odd DEST"
note "ok: odd IMAGE names and errors"

# A plugin that fails to load warns as a JSON event, whether the plugin
# directory comes from --plugin-dir or BMAPTK_PLUGIN_PATH; --json late on
# the command line still makes the first message JSON.
BADPLUG=$RAM/badplug
mkdir "$BADPLUG" && printf 'not an ELF file\n' >"$BADPLUG/broken.so" ||
	fail "cannot make the broken plugin"
jcopy 0 --plugin-dir "$BADPLUG" copy "$ZST" "$RAM/out.img"
assert_contains "$(jq_py '[o["message"] for o in ev("log") if o["level"] == "warning"]')" \
	"broken.so" "warning event of a broken plugin"
BMAPTK_PLUGIN_PATH=$BADPLUG jcopy 0 copy "$ZST" "$RAM/out.img"
assert_contains "$(jq_py '[o["message"] for o in ev("log")]')" "broken.so" \
	"warning event of a broken plugin in BMAPTK_PLUGIN_PATH"
run "$BMAPTK" --plugin-dir "$BADPLUG" copy --bogus "$ZST" "$RAM/out.img" --json
assert_rc 2 "--json last, a bad option"
"$PYTHON" -c '
import json, sys
for line in open(sys.argv[1], "rb").read().splitlines():
    json.loads(line)
' "$E2E_TMP/run.err" || fail "--json last: stderr is not JSON lines: [$RUN_ERR]"
note "ok: plugin warnings and early errors are JSON"

# Every summary describes the image, even when no DEST could be written.
jcopy 3 copy "$ZST" "$RAM/no/such/dir/card.img"
check_eq "$MAPPED" 'one("summary")["mapped_bytes"]'
check_eq "$IMAGE_SIZE" 'one("summary")["image_size"]'
note "all cases passed"
