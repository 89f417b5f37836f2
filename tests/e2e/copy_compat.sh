# `bmaptk copy` with bmaptool's own test image and its bmap in every format
# version bmaptool has written (1.2: SHA-1 ranges; 1.3: + BmapFileSHA1;
# 1.4, 2.0: sha256 + BmapFileChecksum), from ../shared/compat (read there,
# never copied into the repository). Each copy must equal the image and
# verify all 48 ranges; a corrupted image must fail the range's check in
# every version, and an edited bmap its own checksum from 1.3 on.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd gzip cmp od dd "$PYTHON"

C=${BMAPTK_SHARED:-}/compat
[ -n "${BMAPTK_SHARED:-}" ] && [ -f "$C/test.image.gz" ] ||
	skip "no compat vectors (\$BMAPTK_SHARED/compat/test.image.gz missing)"
VERSIONS="1.2 1.3 1.4 2.0"
for v in $VERSIONS; do
	[ -f "$C/test.image.bmap.v$v" ] || fail "$C/test.image.bmap.v$v missing"
done

REF=$E2E_TMP/test.image
gzip -dc "$C/test.image.gz" >"$REF" || fail "cannot gunzip $C/test.image.gz"
SIZE=$(stat -c %s "$REF")
NRANGES=48

for v in $VERSIONS; do
	bmap=$C/test.image.bmap.v$v
	[ "$(grep -c '<Range ' "$bmap")" = $NRANGES ] ||
		fail "$bmap: expected $NRANGES ranges"
	out=$E2E_TMP/out.v$v
	bm 0 copy --bmap "$bmap" "$C/test.image.gz" "$out"
	assert_same_file "$REF" "$out" "copy with bmap v$v"
	assert_contains "$RUN_ERR" "format version $v," "bmap v$v"
	assert_contains "$RUN_ERR" ", $NRANGES ranges verified" "bmap v$v"
	alloc=$(($(stat -c %b "$out") * 512))
	[ "$alloc" -lt "$SIZE" ] ||
		fail "copy with bmap v$v is not sparse ($alloc bytes allocated)"
	rm -f "$out"
	note "ok: bmap v$v"
done

# One flipped byte in block 16 (range 15-18): every version's range
# checksum (SHA-1 or SHA-256) must catch it.
BAD=$E2E_TMP/bad.image
cp "$REF" "$BAD"
old=$(od -An -tu1 -j $((16 * 4096 + 100)) -N1 "$BAD" | tr -d ' ')
printf '%b' "\\$(printf %03o $(((old + 1) % 256)))" |
	dd of="$BAD" bs=1 seek=$((16 * 4096 + 100)) conv=notrunc status=none
cmp -s "$REF" "$BAD" && fail "cannot corrupt the image"
gzip -c "$BAD" >"$BAD.gz"
for v in $VERSIONS; do
	out=$E2E_TMP/bad.v$v
	bm 1 copy --bmap "$C/test.image.bmap.v$v" "$BAD.gz" "$out"
	assert_contains "$RUN_ERR" "checksum mismatch" "corrupt image, v$v"
	assert_contains "$RUN_ERR" "blocks 15-18" "corrupt image, v$v"
	assert_contains "$RUN_ERR" "removed the partially written file" \
		"corrupt image, v$v"
	assert_no_file "$out" "copy of a corrupt image, v$v"
	note "ok: corrupt image caught with bmap v$v"
done

# The bmap's own checksum (1.3 on): change one range checksum's first hex
# digit and nothing else. Version 1.2 has none, so the range check fails.
for v in $VERSIONS; do
	edited=$E2E_TMP/edited.v$v.bmap
	"$PYTHON" - "$C/test.image.bmap.v$v" "$edited" <<'EOF' ||
import re
import sys

text = open(sys.argv[1]).read()
m = re.search(r'(?:sha1|chksum)="([0-9a-f])', text)
digit = "1" if m.group(1) == "0" else "0"
open(sys.argv[2], "w").write(text[:m.start(1)] + digit + text[m.end(1):])
EOF
		fail "cannot edit the bmap v$v"
	cmp -s "$edited" "$C/test.image.bmap.v$v" && fail "cannot edit $v"
	out=$E2E_TMP/edited.v$v
	if [ "$v" = 1.2 ]; then
		bm 1 copy --bmap "$edited" "$C/test.image.gz" "$out"
		assert_contains "$RUN_ERR" "checksum mismatch for blocks 0-1" \
			"edited bmap v$v"
	else
		bm 1 copy --bmap "$edited" "$C/test.image.gz" "$out"
		assert_contains "$RUN_ERR" \
			"$edited: checksum mismatch for the bmap file" \
			"edited bmap v$v"
	fi
	assert_no_file "$out" "copy with an edited bmap v$v"
	note "ok: edited bmap v$v"
done
note "all cases passed"
