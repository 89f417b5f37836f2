# `bmaptk check` and `bmaptk copy --check`: DEST is read back past the page
# cache and compared with the bmap's checksums. A good file or loop device
# exits 0 with "M of M ranges verified, 0 bad"; every corrupted range is
# reported with its blocks, bytes and both hashes (exit 1). A DEST smaller
# than the image, a missing DEST, a directory, a bmap without checksums are
# refused with exit 2 before anything is read; a real read error (a
# corrupted squashfs) exits 3 naming the offset. On a loop device whose
# backing file is changed behind the device's page cache, check must see
# the change. The first operand may be the bmap or the image.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd cmp dd stat sha256sum gzip truncate "$PYTHON"
T=$E2E_TMP

MIB=$((1024 * 1024))
SIZE=$((6 * MIB + 1234))
IMG=$T/disk.img
# Four extents of compressible but varied text (squashfs must compress
# them), the last one ending the image inside a block.
"$PYTHON" - "$IMG" "$SIZE" <<'EOF' || fail "cannot generate the image"
import os
import random
import sys

MIB = 1024 * 1024
path, size = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)


def text(n):
    out = bytearray()
    while len(out) < n:
        out += b"line %d: %x\n" % (len(out), rng.getrandbits(64))
    return bytes(out[:n])


fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, size)
for off, n in ((0, 150000), (MIB, 300000), (3 * MIB + 555, 200000),
               (size - 3000, 3000)):
    assert os.pwrite(fd, text(n), off) == n
os.fsync(fd)
os.close(fd)
EOF
"$BMAPTK" create "$IMG" -o "$IMG.bmap" 2>"$T/create.err" ||
	fail "bmaptk create: $(cat "$T/create.err")"
"$BMAPTK" create --no-checksum "$IMG" -o "$T/nosum.bmap" 2>"$T/create.err" ||
	fail "bmaptk create --no-checksum: $(cat "$T/create.err")"
# The ranges, one per line: FIRST LAST SHA256.
bmap_fields "$IMG.bmap" >"$T/fields" || fail "cannot read $IMG.bmap"
sed -n 's/^Range \([0-9]*\)-\([0-9]*\) chksum=\([0-9a-f]*\)$/\1 \2 \3/p' \
	"$T/fields" >"$T/ranges"
N=$(wc -l <"$T/ranges")
[ "$N" = 4 ] || fail "$IMG.bmap: expected 4 ranges, got: $(cat "$T/fields")"
grep -qx 'BlockSize 4096' "$T/fields" || fail "$IMG.bmap: block size not 4096"

# range I: set FIRST LAST SUM OFF END (bytes OFF-END) of range I (1-based).
range() {
	read -r FIRST LAST SUM < <(sed -n "${1}p" "$T/ranges")
	OFF=$((FIRST * 4096))
	END=$(((LAST + 1) * 4096))
	[ "$END" -le "$SIZE" ] || END=$SIZE
	END=$((END - 1))
}

# flip FILE OFFSET: invert one byte in place, on disk.
flip() {
	"$PYTHON" - "$1" "$2" <<'EOF' || fail "cannot flip byte $2 of $1"
import os
import sys

fd = os.open(sys.argv[1], os.O_RDWR)
off = int(sys.argv[2])
b = os.pread(fd, 1, off)
assert len(b) == 1
os.pwrite(fd, bytes([b[0] ^ 0xFF]), off)
os.fsync(fd)
os.close(fd)
EOF
}

# assert_bad DEST I...: RUN_ERR reports exactly ranges I... of DEST as bad,
# each with the bmap's hash and the hash of DEST's bytes, and the summary.
assert_bad() {
	local dest=$1 i got
	shift
	for i in "$@"; do
		range "$i"
		got=$(tail -c +$((OFF + 1)) "$dest" | head -c $((END - OFF + 1)) |
			sha256sum | cut -d' ' -f1)
		[ "$got" != "$SUM" ] || fail "range $i of $dest is not corrupted"
		assert_contains "$RUN_ERR" "$dest: bad range: blocks $FIRST-$LAST (bytes $OFF-$END): expected sha256 $SUM, got $got" \
			"report of range $i"
	done
	assert_eq "$#" "$(grep -c 'bad range:' "$T/run.err")" \
		"number of bad ranges reported for $dest"
	assert_contains "$RUN_ERR" "$dest: $((N - $#)) of $N ranges verified, $# bad" \
		"summary for $dest"
}

# A good file, with the bmap or the image as first operand.
GOOD=$T/good.img
cp "$IMG" "$GOOD"
bm 0 check "$IMG.bmap" "$GOOD"
assert_contains "$RUN_ERR" "$GOOD: $N of $N ranges verified, 0 bad" "check BMAP"
assert_not_contains "$RUN_ERR" "bad range" "check BMAP"
bm 0 check "$IMG" "$GOOD"
assert_contains "$RUN_ERR" "discovered bmap file '$IMG.bmap'" "check IMAGE"
assert_contains "$RUN_ERR" "$GOOD: $N of $N ranges verified, 0 bad" \
	"check IMAGE"
gzip -1 -c "$IMG" >"$IMG.gz" || fail "gzip failed"
bm 0 check "$IMG.gz" "$GOOD"
assert_contains "$RUN_ERR" "discovered bmap file '$IMG.bmap'" \
	"check IMAGE.gz (bmap found without .gz)"
bm 0 check --bmap "$IMG.bmap" "$IMG.gz" "$GOOD"
assert_contains "$RUN_ERR" "$GOOD: $N of $N ranges verified, 0 bad" \
	"check --bmap"
bm 0 check --cached "$IMG.bmap" "$GOOD"
assert_contains "$RUN_ERR" "$GOOD: $N of $N ranges verified, 0 bad" \
	"check --cached"
note "ok: good file"

# Corrupted ranges: every one is reported, the others still verified.
BADF=$T/bad.img
cp "$IMG" "$BADF"
range 2
flip "$BADF" $((OFF + 12345))
bm 1 check "$IMG.bmap" "$BADF"
assert_bad "$BADF" 2
cp "$IMG" "$BADF"
for i in 1 3 4; do
	range $i
	flip "$BADF" "$END" # the last byte: for range 4, the image's last
done
bm 1 check "$IMG" "$BADF"
assert_bad "$BADF" 1 3 4
note "ok: 1 and 3 bad ranges"

# Refused before reading: DEST smaller than the image (by one byte),
# missing, a directory; a bmap without checksums; a usage error.
cp "$IMG" "$T/short.img"
truncate -s $((SIZE - 1)) "$T/short.img"
bm 2 check "$IMG.bmap" "$T/short.img"
assert_contains "$RUN_ERR" "$T/short.img: has $((SIZE - 1)) bytes, smaller than the image ($SIZE bytes)" \
	"short DEST"
assert_not_contains "$RUN_ERR" "ranges verified" "short DEST"
bm 2 check "$IMG.bmap" "$T/missing.img"
assert_contains "$RUN_ERR" "$T/missing.img: cannot open: No such file" \
	"missing DEST"
assert_no_file "$T/missing.img" "check of a missing DEST"
mkdir "$T/dir"
bm 2 check "$IMG.bmap" "$T/dir"
assert_contains "$RUN_ERR" "$T/dir: not a regular file or block device" \
	"directory DEST"
bm 2 check "$T/nosum.bmap" "$GOOD"
assert_contains "$RUN_ERR" "cannot check: the bmap has no checksums" \
	"bmap without checksums"
assert_not_contains "$RUN_ERR" "ranges verified" "bmap without checksums"
bm 2 check --bmap "$T/nosum.bmap" "$IMG" "$GOOD"
assert_contains "$RUN_ERR" "cannot check: the bmap has no checksums" \
	"--bmap without checksums"
bm 2 check "$IMG.bmap"
assert_contains "$RUN_ERR" "expected IMAGE-or-BMAP and DEST" "one operand"
note "ok: refusals"

# copy --check onto a file: both phases.
rm -f "$T/copied.img"
bm 0 copy --check "$IMG" "$T/copied.img"
assert_contains "$RUN_ERR" "copied $IMG to $T/copied.img" "copy --check"
assert_contains "$RUN_ERR" "$T/copied.img: $N of $N ranges verified, 0 bad" \
	"copy --check"
assert_same_file "$IMG" "$T/copied.img" "copy --check"
note "ok: copy --check onto a file"

# Loop devices (root only).
if [ "$(id -u)" != 0 ] || ! command -v losetup >/dev/null; then
	skip_case "loop devices: needs root and losetup"
	note "all runnable cases passed"
	exit 0
fi
# loop BACKING SIZE: DEV = a new loop device over BACKING (SIZE random
# bytes); detached at exit. Returns 1 if losetup fails.
loop() {
	head -c "$2" /dev/urandom >"$1" || fail "cannot make $1"
	e2e_losetup DEV "$1"
}
if ! loop "$T/back" $((8 * MIB)); then
	skip_case "losetup failed: $(cat "$E2E_TMP/losetup.err")"
	note "all runnable cases passed"
	exit 0
fi
L=$DEV

# The image written through the device's page cache, then checked.
dd if="$IMG" of="$L" bs=1M conv=fsync status=none || fail "cannot write $L"
bm 0 check "$IMG.bmap" "$L"
assert_contains "$RUN_ERR" "$L: $N of $N ranges verified, 0 bad" "loop device"
assert_contains "$RUN_ERR" "read from the medium" "loop device"
note "ok: good loop device"

# Change the backing file behind the device: the device's page cache
# (filled again here: check dropped it; kept while fd 9 holds the device
# open, as the last close drops it) still holds the old byte, what a
# cached read sees; the medium holds the new one.
exec 9<"$L" || fail "cannot open $L"
cat "$L" >/dev/null || fail "cannot read $L"
range 3
flip "$T/back" $((OFF + 777))
if cmp -s -n "$SIZE" "$IMG" "$L"; then
	note "the page cache of $L holds stale data, as wanted"
else
	note "the page cache of $L was dropped; the case proves less"
fi
bm 1 check "$IMG.bmap" "$L"
assert_bad "$L" 3
exec 9<&-
note "ok: loop device changed behind its page cache"

# copy --check onto the device: both phases; bytes past the image kept.
tail -c +$((SIZE + 1)) "$T/back" | sha256sum >"$T/tail.sum"
bm 0 copy --check "$IMG" "$L"
assert_contains "$RUN_ERR" "copied $IMG to $L" "copy --check onto $L"
assert_contains "$RUN_ERR" "$L: $N of $N ranges verified, 0 bad" \
	"copy --check onto $L"
cmp -n "$SIZE" "$IMG" "$L" || fail "copy --check: $L does not hold the image"
tail -c +$((SIZE + 1)) "$L" | sha256sum | cmp -s - "$T/tail.sum" ||
	fail "copy --check changed $L past the image"
note "ok: copy --check onto a loop device"

# A device smaller than the image.
if loop "$T/small" $((4 * MIB)); then
	bm 2 check "$IMG.bmap" "$DEV"
	assert_contains "$RUN_ERR" "$DEV: has $((4 * MIB)) bytes, smaller than the image" \
		"small device"
	assert_not_contains "$RUN_ERR" "ranges verified" "small device"
	note "ok: small device"
else
	skip_case "second loop device: $(cat "$E2E_TMP/losetup.err")"
fi

# A real read error: the image in a squashfs whose first compressed block
# is damaged; reading its first 128 KiB fails with EIO.
if ! command -v mksquashfs >/dev/null || ! command -v mount >/dev/null; then
	skip_case "read error: mksquashfs (squashfs-tools) or mount missing"
	note "all runnable cases passed"
	exit 0
fi
mkdir "$T/sqsrc" "$T/mnt"
cp "$IMG" "$T/sqsrc/disk.img"
mksquashfs "$T/sqsrc" "$T/sq" -noappend -quiet -no-progress -comp gzip \
	>"$T/mksquashfs.log" 2>&1 ||
	fail "mksquashfs: $(cat "$T/mksquashfs.log")"
# Data blocks follow the 96-byte superblock; damage the first one.
printf '%0128d' 0 | dd of="$T/sq" bs=1 seek=200 conv=notrunc status=none ||
	fail "cannot damage $T/sq"
if ! e2e_losetup SQ -r "$T/sq"; then
	skip_case "read error: losetup: $(cat "$E2E_TMP/losetup.err")"
elif ! e2e_mount -t squashfs -o ro "$SQ" "$T/mnt"; then
	skip_case "read error: cannot mount squashfs: $(cat "$E2E_TMP/mount.err")"
else
	cat "$T/mnt/disk.img" >/dev/null 2>&1 &&
		fail "reading the damaged squashfs gave no error"
	bm 3 check "$IMG.bmap" "$T/mnt/disk.img"
	assert_contains "$RUN_ERR" "$T/mnt/disk.img: read error at offset 0:" \
		"read error"
	assert_contains "$RUN_ERR" "Input/output error" "read error"
	umount "$T/mnt" || fail "cannot unmount $T/mnt"
	note "ok: read error"
fi
note "all cases passed"
