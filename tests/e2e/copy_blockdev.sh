# `bmaptk copy` onto real loop devices: the raw image and its gzip, xz,
# bzip2 and zstd forms must land byte for byte in the device's first
# ImageSize bytes, and nothing past them may change (the image ends inside
# a block). Refusals, each with exit 2 and the device untouched: a device
# smaller than the image, a mounted one (also through a symlink), one held
# open exclusively by another program, and any loop device with
# --removable-device. A checksum mismatch says the device is incomplete.
# Needs root and loop devices; skipped (77) without them.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd losetup bmaptool cmp sha256sum gzip xz bzip2 zstd mkfs.ext4 \
	mount umount "$PYTHON"
[ "$(id -u)" = 0 ] || skip "needs root for loop devices"

MIB=$((1024 * 1024))
IMG=$E2E_TMP/img
SIZE=$((20 * MIB + 1234))
"$PYTHON" - "$IMG" "$SIZE" <<'EOF' || fail "cannot generate the image"
import os
import random
import sys

MIB = 1024 * 1024
rng = random.Random(20240613)
path, size = sys.argv[1], int(sys.argv[2])
text = b"".join(b"block device line %d\n" % i for i in range(60000))
extents = [
    (0, rng.randbytes(1500000)),
    (6 * MIB, text),
    (13 * MIB + 555, rng.randbytes(500000)),
    (size - 3000, rng.randbytes(3000)),
]
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, size)
for off, data in extents:
    assert os.pwrite(fd, data, off) == len(data)
os.fsync(fd)
os.close(fd)
EOF
bmaptool create "$IMG" -o "$IMG.bmap" 2>"$E2E_TMP/bmaptool.err" ||
	fail "bmaptool create: $(cat "$E2E_TMP/bmaptool.err")"
NRANGES=$(grep -c '<Range ' "$IMG.bmap")
gzip -c "$IMG" >"$IMG.gz" && xz -1 -T0 -c "$IMG" >"$IMG.xz" &&
	bzip2 -1 -c "$IMG" >"$IMG.bz2" && zstd -q -c "$IMG" >"$IMG.zst" ||
	fail "cannot compress the image"

# loop SIZE: set DEV to a new loop device over a fresh backing file of SIZE
# random bytes; detached at exit.
LOOPS=0
loop() {
	local back=$E2E_TMP/backing.$LOOPS
	LOOPS=$((LOOPS + 1))
	head -c "$1" /dev/urandom >"$back" || fail "cannot make $back"
	e2e_losetup DEV "$back" ||
		skip "losetup -f --show failed: $(cat "$E2E_TMP/losetup.err")"
}

devsum() { # DEV: checksum of the whole device, read past the page cache
	dd if="$1" bs=1M iflag=direct status=none | sha256sum | cut -d' ' -f1
}
tailsum() { # DEV: checksum of what follows the image on the device
	tail -c +$((SIZE + 1)) "$1" | sha256sum | cut -d' ' -f1
}

# Copies: zero the image's span first so every byte must come from the copy;
# the random bytes after it must stay.
loop $((32 * MIB))
L=$DEV
note "copies onto $L"
TAIL=$(tailsum "$L")
for f in img img.gz img.xz img.bz2 img.zst; do
	head -c "$SIZE" /dev/zero | dd of="$L" bs=1M iflag=fullblock \
		conv=fsync status=none || fail "cannot zero $L"
	bm 0 copy "$E2E_TMP/$f" "$L"
	assert_contains "$RUN_ERR" "bmap $IMG.bmap: format version 2.0" "$f"
	assert_contains "$RUN_ERR" ", $NRANGES ranges verified" "$f"
	cmp -n "$SIZE" "$IMG" "$L" || fail "$f: $L does not hold the image"
	assert_eq "$TAIL" "$(tailsum "$L")" "$f: bytes after the image on $L"
	note "ok: $f"
done

# Through a symlink, as with /dev/disk/by-id names.
ln -s "$L" "$E2E_TMP/disk"
head -c "$SIZE" /dev/zero | dd of="$L" bs=1M iflag=fullblock conv=fsync \
	status=none || fail "cannot zero $L"
bm 0 copy "$E2E_TMP/img.zst" "$E2E_TMP/disk"
cmp -n "$SIZE" "$IMG" "$L" || fail "symlink: $L does not hold the image"
note "ok: symlink"

# --removable-device: a loop device is not removable.
before=$(devsum "$L")
bm 2 copy --removable-device "$E2E_TMP/img.gz" "$L"
assert_contains "$RUN_ERR" "$L is not a removable block device" \
	"--removable-device"
assert_eq "$before" "$(devsum "$L")" "$L after --removable-device"
note "ok: --removable-device refused"

# A checksum mismatch on a device: exit 1, the device is said incomplete.
cp "$IMG" "$E2E_TMP/bad"
printf 'X' | dd of="$E2E_TMP/bad" bs=1 seek=$((6 * MIB + 10)) conv=notrunc \
	status=none
cp "$IMG.bmap" "$E2E_TMP/bad.bmap"
bm 1 copy "$E2E_TMP/bad" "$L"
assert_contains "$RUN_ERR" "checksum mismatch for blocks 1536-" "bad image"
assert_contains "$RUN_ERR" "$L: the device holds an incomplete image" \
	"bad image"
note "ok: checksum mismatch on a device"

# Too small: refused before any write.
loop $((8 * MIB))
S=$DEV
before=$(devsum "$S")
bm 2 copy "$E2E_TMP/img.xz" "$S"
assert_contains "$RUN_ERR" "$S is smaller than the image" "small device"
assert_contains "$RUN_ERR" "the image needs $SIZE bytes" "small device"
assert_eq "$before" "$(devsum "$S")" "$S after a refused copy"
note "ok: too small"

# Held open with O_EXCL by another program.
loop $((32 * MIB))
H=$DEV
before=$(devsum "$H")
"$PYTHON" -c 'import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_EXCL)
open(sys.argv[2], "w").close()
time.sleep(60)' "$H" "$E2E_TMP/held" &
holder=$!
on_exit "kill $holder"
for _ in $(seq 100); do
	[ -e "$E2E_TMP/held" ] && break
	sleep 0.05
done
[ -e "$E2E_TMP/held" ] || fail "the holder could not claim $H"
bm 2 copy "$E2E_TMP/img.gz" "$H"
assert_contains "$RUN_ERR" "$H: device is in use" "claimed device"
kill "$holder"
wait "$holder" 2>/dev/null
assert_eq "$before" "$(devsum "$H")" "$H after a refused copy"
note "ok: in use"

# Mounted: refused by name and through a symlink; the device is unchanged.
# No lazy init: nothing may write to the idle file system meanwhile.
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$H" \
	>/dev/null 2>&1 || fail "mkfs.ext4 $H failed"
mkdir "$E2E_TMP/mnt"
if ! e2e_mount "$H" "$E2E_TMP/mnt"; then
	skip_case "cannot mount $H: $(cat "$E2E_TMP/mount.err")"
	note "all other cases passed"
	exit 0
fi
sync
before=$(devsum "$H")
bm 2 copy "$E2E_TMP/img.gz" "$H"
assert_contains "$RUN_ERR" "$H is mounted" "mounted device"
ln -s "$H" "$E2E_TMP/mounted"
bm 2 copy "$E2E_TMP/img.gz" "$E2E_TMP/mounted"
assert_contains "$RUN_ERR" "is mounted" "mounted device via a symlink"
assert_eq "$before" "$(devsum "$H")" "$H after refused copies"
umount "$E2E_TMP/mnt" || fail "cannot unmount $H"
note "ok: mounted"
note "all cases passed"
