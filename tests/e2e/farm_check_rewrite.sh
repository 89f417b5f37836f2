# `bmaptk copy --check`: after the copy each DEST is read back from the
# medium; ranges that do not verify are written again (the image decoded
# again) and re-checked, up to --rewrite-tries (default 2). The test-only
# switch BMAPTK_TEST_LOSE_WRITE=OFFSET makes bmaptk drop, once, the write of
# the chunk holding image byte OFFSET to the first DEST (OFFSET:always:
# every time), as a card that loses writes would.
#   - without --check the loss goes unnoticed (so the switch works);
#   - with --check the range is found, rewritten, verified: exit 0, the
#     device equals the image, stderr names the rewrite (and --json gives a
#     `range` event and rewritten_ranges 1);
#   - with :always: exit 1 naming the range that never verified, after
#     --rewrite-tries tries (0, default 2, 3);
#   - on a regular file, and only the first of two DESTs loses the write.
# Needs root and loop devices; skipped (77) without them.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd losetup zstd cmp "$PYTHON"
[ "$(id -u)" = 0 ] || skip "needs root for loop devices"

MIB=$((1024 * 1024))
SIZE=$((40 * MIB))
LOSE=$((20 * MIB + 12345)) # inside the third range
e2e_ramdir RAM

IMG=$RAM/disk.img
"$PYTHON" - "$IMG" "$SIZE" <<'EOF' || fail "cannot generate the image"
import os, random, sys
M = 1 << 20
path, size = sys.argv[1], int(sys.argv[2])
rng = random.Random(99)
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, size)
for off, n in [(0, 2 * M + 4096), (4 * M, 9 * M), (16 * M + 8192, 7 * M),
               (30 * M, 3 * M), (size - 8192, 8192)]:
    os.pwrite(fd, rng.randbytes(n), off)
os.close(fd)
EOF
"$BMAPTK" -q create "$IMG" -o "$IMG.bmap" || fail "bmaptk create"
zstd -q -T0 -c "$IMG" >"$IMG.zst" || fail "zstd"
ZST=$IMG.zst
NRANGES=$(grep -c '<Range ' "$IMG.bmap")
# The bmap range holding byte LOSE, as "first-last" blocks.
RANGE=$("$PYTHON" - "$IMG.bmap" "$LOSE" <<'EOF'
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
bs, at = int(r.find("BlockSize").text), int(sys.argv[2])
for e in r.find("BlockMap").findall("Range"):
    a, _, b = "".join(e.text.split()).partition("-")
    a, b = int(a), int(b or a)
    if a * bs <= at < (b + 1) * bs:
        print("%d-%d" % (a, b))
EOF
)
[ -n "$RANGE" ] || fail "byte $LOSE is not in a mapped range"
note "the lost write is in blocks $RANGE"

loop() { # FILE: attach it to a new loop device (DEV), detached at exit
	e2e_losetup DEV "$1" ||
		skip "cannot make a loop device: $(cat "$E2E_TMP/losetup.err")"
}
zero_span() { # zeros where the image goes: a lost chunk then reads wrong
	head -c "$SIZE" /dev/zero | dd of="$L" bs=1M iflag=fullblock \
		oflag=direct status=none || fail "cannot zero $L"
}
# jdest FILE DEST: "status exit rewritten_ranges check" of DEST's event
jdest() {
	"$PYTHON" - "$@" <<'EOF'
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    o = json.loads(line)
    if o["event"] == "dest" and o["dest"] == sys.argv[2]:
        print(o["status"], o["exit"], o["rewritten_ranges"],
              o.get("check", "-"))
EOF
}

head -c $((SIZE + MIB)) /dev/zero >"$RAM/backing" || fail "no backing file"
loop "$RAM/backing"
L=$DEV

# Without --check the lost write goes unnoticed: the switch works.
zero_span
BMAPTK_TEST_LOSE_WRITE=$LOSE bm 0 copy "$ZST" "$L"
if cmp -s -n "$SIZE" "$IMG" "$L"; then
	fail "BMAPTK_TEST_LOSE_WRITE=$LOSE lost no write on $L"
fi

# A plain --check: read back, nothing to rewrite.
zero_span
bm 0 copy --check "$ZST" "$L"
assert_contains "$RUN_ERR" \
	"$L: $NRANGES of $NRANGES ranges verified, 0 bad" "--check"
assert_not_contains "$RUN_ERR" "rewriting" "--check without a loss"
cmp -n "$SIZE" "$IMG" "$L" || fail "--check: $L is not the image"

# One lost write: found, rewritten, verified.
zero_span
BMAPTK_TEST_LOSE_WRITE=$LOSE bm 0 copy --check "$ZST" "$L"
cmp -n "$SIZE" "$IMG" "$L" || fail "after the rewrite $L is not the image"
assert_contains "$RUN_ERR" "$L: bad range: blocks $RANGE " "lost write"
assert_contains "$RUN_ERR" "$L: $((NRANGES - 1)) of $NRANGES ranges verified, 1 bad" \
	"lost write"
assert_contains "$RUN_ERR" \
	"$L: rewriting 1 range(s) that did not read back right (try 1 of 2)" \
	"lost write"
assert_contains "$RUN_ERR" "$L: 1 of 1 ranges verified, 0 bad" "lost write"
note "ok: a lost write is rewritten"

# The same in JSON.
zero_span
BMAPTK_TEST_LOSE_WRITE=$LOSE bm 0 --json copy --check "$ZST" "$L"
printf '%s\n' "$RUN_ERR" >"$E2E_TMP/rewrite.json"
cmp -n "$SIZE" "$IMG" "$L" || fail "JSON run: $L is not the image"
assert_eq "ok 0 1 ok" "$(jdest "$E2E_TMP/rewrite.json" "$L")" \
	"dest event after a rewrite"
assert_contains "$RUN_ERR" \
	"{\"event\":\"range\",\"dest\":\"$L\",\"first_block\":${RANGE%-*},\"last_block\":${RANGE#*-}," \
	"range event"
assert_not_contains "$RUN_ERR" '"event":"error"' "JSON run"
note "ok: the rewrite in JSON"

# Lost every time: exit 1 naming the range, after each number of tries.
for tries in default 0 3; do
	zero_span
	opt=()
	n=2
	if [ "$tries" != default ]; then
		opt=(--rewrite-tries "$tries")
		n=$tries
	fi
	BMAPTK_TEST_LOSE_WRITE=$LOSE:always bm 1 copy --check "${opt[@]}" \
		"$ZST" "$L"
	assert_contains "$RUN_ERR" \
		"$L: 1 range(s) never verified (blocks $RANGE)" "$tries tries"
	if [ "$n" = 0 ]; then
		assert_not_contains "$RUN_ERR" "rewriting" "0 tries"
	else
		assert_contains "$RUN_ERR" "right (try $n of $n)" "$tries tries"
		assert_not_contains "$RUN_ERR" "(try $((n + 1)) of" "$tries tries"
	fi
done
BMAPTK_TEST_LOSE_WRITE=$LOSE:always bm 1 --json copy --check "$ZST" "$L"
printf '%s\n' "$RUN_ERR" >"$E2E_TMP/always.json"
assert_eq "failed 1 2 bad" "$(jdest "$E2E_TMP/always.json" "$L")" \
	"dest event after 2 failed rewrites"
assert_contains "$(tail -n 1 "$E2E_TMP/always.json")" \
	'{"event":"error","exit":1,' "last JSON event"
note "ok: a range that never verifies fails the copy"

# A regular file, and two DESTs: only the first loses the write.
F=$RAM/card.img
BMAPTK_TEST_LOSE_WRITE=$LOSE bm 0 copy --check "$ZST" "$F"
cmp "$IMG" "$F" || fail "file: $F is not the image after the rewrite"
assert_contains "$RUN_ERR" "$F: rewriting 1 range(s)" "file"
rm -f "$F"
zero_span
BMAPTK_TEST_LOSE_WRITE=$LOSE bm 0 --json copy --check "$ZST" "$F" "$L"
printf '%s\n' "$RUN_ERR" >"$E2E_TMP/two.json"
cmp "$IMG" "$F" || fail "2 DESTs: $F is not the image"
cmp -n "$SIZE" "$IMG" "$L" || fail "2 DESTs: $L is not the image"
assert_eq "ok 0 1 ok" "$(jdest "$E2E_TMP/two.json" "$F")" "first DEST"
assert_eq "ok 0 0 ok" "$(jdest "$E2E_TMP/two.json" "$L")" "second DEST"
note "ok: files and several DESTs"
note "all cases passed"
