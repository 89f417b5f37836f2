# /dev/null as DEST verifies an image without a card, as with bmaptool:
# `bmaptk copy disk.img.xz /dev/null` decodes everything, verifies every
# range and writes nothing (exit 0; the summary and the JSON dest event say
# so), a corrupted image exits 1, another name of /dev/null is the same,
# and what needs a medium (--check, --discard, --removable-device) is
# refused (exit 2); --to null on a real file is refused too. The alias
# does the same. And `bmaptk check BMAP disk.img.xz` is refused (exit 2):
# a compressed file is not a medium; a flashed file still checks.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd xz gzip zstd bzip2 "$PYTHON"

[ -c /dev/null ] || skip "/dev/null is not a character device here"
e2e_ramdir D
cd "$D" || fail "cd $D"
"$PYTHON" - disk.img <<'EOF' || fail "cannot make the image"
import os, random, sys
rng = random.Random(3)
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
size = 16 * 1024 * 1024
os.ftruncate(fd, size)
for off, n in ((0, 1 << 20), (6 << 20, 2 << 20), (size - 4096, 4096)):
    os.pwrite(fd, rng.randbytes(n), off)
os.close(fd)
EOF
"$BMAPTK" -q create -o disk.img.bmap disk.img && xz -0 -k disk.img &&
	gzip -k disk.img && zstd -q disk.img && bzip2 -k disk.img ||
	fail "cannot make the bmap and the compressed images"
cp --sparse=always disk.img bad.img &&
	printf 'X' | dd of=bad.img bs=1 seek=$((6 << 20)) conv=notrunc \
		status=none && xz -0 -k bad.img || fail "cannot corrupt the image"
ln -s /dev/null nothing

bm 0 copy disk.img.xz /dev/null
assert_contains "$RUN_ERR" "copied disk.img.xz to /dev/null (nothing \
written, only verified): image 16.0 MiB" "summary"
assert_contains "$RUN_ERR" "3 ranges verified" "summary: ranges"
assert_not_contains "$RUN_ERR" "cannot write" "no refusal"

bm 0 copy disk.img.xz nothing
assert_contains "$RUN_ERR" "to nothing (nothing written, only verified)" \
	"a symlink"

bm 0 --json copy disk.img.xz /dev/null
"$PYTHON" - "$E2E_TMP/run.err" <<'EOF' || fail "JSON: $RUN_ERR"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
summary = [e for e in ev if e["event"] == "summary"][0]
dest = [e for e in ev if e["event"] == "dest"][0]
assert summary["verified"] is True and summary["ranges_verified"] == 3, summary
assert summary["dests_ok"] == 1, summary
assert dest["dest"] == "/dev/null" and dest["status"] == "ok", dest
assert dest["verify_only"] is True and dest["written_bytes"] == 0, dest
EOF

# A corrupted image does not verify; nothing claims /dev/null was left
# incomplete.
bm 1 copy --bmap disk.img.bmap bad.img.xz /dev/null
assert_contains "$RUN_ERR" "checksum mismatch" "corrupted image"
assert_not_contains "$RUN_ERR" "incomplete" "nothing was written"

# Without verification it says so.
bm 0 copy --no-verify disk.img.xz /dev/null
assert_contains "$RUN_ERR" "copied disk.img.xz to /dev/null (nothing \
written):" "--no-verify"
assert_contains "$RUN_ERR" "(verification off)" "--no-verify"
bm 0 copy --nobmap disk.img.xz /dev/null

# Next to a real DEST: both get the image, /dev/null nothing.
bm 0 copy disk.img.xz /dev/null out.img
assert_same_file disk.img out.img "the other DEST"

# What needs a medium.
bm 2 copy --check disk.img.xz /dev/null
assert_contains "$RUN_ERR" "cannot be read back" "--check"
bm 2 copy --discard disk.img.xz /dev/null
bm 2 copy --removable-device disk.img.xz /dev/null
assert_contains "$RUN_ERR" "not a removable block device" \
	"--removable-device"
cp --sparse=always disk.img keep.img
bm 2 copy --to null disk.img.xz keep.img
assert_contains "$RUN_ERR" "not the null device" "--to null on a file"
assert_same_file disk.img keep.img "--to null: the file untouched"

# The alias: bmaptool's lines, DEST a file named 'null'.
mkdir -p bin && ln -s "$BMAPTK" bin/bmaptool || fail "bmaptool symlink"
run bin/bmaptool copy disk.img.xz /dev/null
assert_rc 0 "bmaptool copy disk.img.xz /dev/null"
assert_contains "$RUN_ERR" "bmaptool: info: copying image 'disk.img.xz' to \
file 'null' using bmap file 'disk.img.bmap'" "alias"
assert_contains "$RUN_ERR" "bmaptool: info: copying time: " "alias"
run bin/bmaptool copy --bmap disk.img.bmap bad.img.xz /dev/null
assert_rc 1 "bmaptool copy bad.img.xz /dev/null"

# check: a compressed DEST is refused, whatever the compressor.
for fz in xz:xz gz:gzip zst:zstd bz2:bzip2; do
	f=disk.img.${fz%:*}
	bm 2 check disk.img.bmap "$f"
	assert_contains "$RUN_ERR" "$f (${fz#*:}): " "check $f"
	assert_contains "$RUN_ERR" "DEST is a compressed image, not a medium; \
\`bmaptk copy IMAGE /dev/null\` verifies an image" "check $f"
done
bm 2 --json check disk.img.bmap disk.img.xz
assert_contains "$RUN_ERR" '"event":"error","exit":2' "check --json"
# A flashed copy still checks, also when the image itself starts with a
# compressor's magic (a file of the image's size is a medium).
bm 0 check disk.img.bmap out.img
cp --sparse=always disk.img magic.img &&
	printf '\375' | dd of=magic.img bs=1 conv=notrunc status=none &&
	printf '7zXZ\0' | dd of=magic.img bs=1 seek=1 conv=notrunc status=none ||
	fail "cannot make magic.img"
# create refuses to map what looks compressed: the bmap of disk.img, its
# checksums redone for magic.img.
"$PYTHON" - disk.img.bmap magic.img magic.bmap <<'EOF' || fail "magic.bmap"
import hashlib, re, sys
text = open(sys.argv[1]).read()
data = open(sys.argv[2], "rb").read()
def rehash(m):
    a, _, b = m.group(2).strip().partition("-")
    chunk = data[int(a) * 4096:(int(b or a) + 1) * 4096]
    return m.group(1) + hashlib.sha256(chunk).hexdigest() + '">' + m.group(2)
text = re.sub(r'(<Range chksum=")[0-9a-f]+">([^<]*)', rehash, text)
old = re.search(r"<BmapFileChecksum> *([0-9a-f]+)", text).group(1)
text = text.replace(old, "0" * len(old), 1)
text = text.replace("0" * len(old),
                    hashlib.sha256(text.encode()).hexdigest(), 1)
open(sys.argv[3], "w").write(text)
EOF
bm 0 check magic.bmap magic.img
note "ok: /dev/null verifies, check refuses compressed files"
