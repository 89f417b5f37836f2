# Destinations that must not be written, for board farms where a card may
# not have been detected or a path may be mistyped:
#   - a DEST directly in /dev that does not exist: exit 2, "no such device;
#     was the card detected?", nothing created (also when other DESTs are
#     fine: the run is refused before anything is written); with --force the
#     regular file is created (and removed by this test);
#   - an IMAGE that is itself a bmap file: exit 2, "this is a bmap file, not
#     an image", DEST not created;
#   - a mounted device, and a device one of whose partitions is mounted:
#     exit 2, "is mounted", the device unchanged; among several DESTs the
#     mounted one drops out and the others are written.
# Needs root and loop devices; skipped (77) without them.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd losetup mount umount mkfs.ext4 cmp sha256sum "$PYTHON"
[ "$(id -u)" = 0 ] || skip "needs root for /dev and loop devices"

MIB=$((1024 * 1024))
SIZE=$((12 * MIB))
e2e_ramdir RAM

IMG=$RAM/disk.img
"$PYTHON" - "$IMG" "$SIZE" <<'EOF' || fail "cannot generate the image"
import os, random, sys
path, size = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, size)
for off, n in [(0, 1 << 20), (5 << 20, 3 << 20), (size - 4096, 4096)]:
    os.pwrite(fd, rng.randbytes(n), off)
os.close(fd)
EOF
"$BMAPTK" -q create "$IMG" -o "$IMG.bmap" || fail "bmaptk create"

loop() { # [-P] FILE: attach FILE to a new loop device (DEV), detached at exit
	e2e_losetup DEV "$@" ||
		skip "cannot make a loop device: $(cat "$E2E_TMP/losetup.err")"
}
devsum() { dd if="$1" bs=1M iflag=direct status=none | sha256sum; }

# --- a card that was not detected -----------------------------------------
NX=/dev/bmaptk-test-nonexistent-$$
[ ! -e "$NX" ] || fail "$NX exists before the test"
on_exit "rm -f '$NX'"
bm 2 copy "$IMG" "$NX"
assert_contains "$RUN_ERR" \
	"$NX: no such device; was the card detected?" "missing /dev node"
assert_no_file "$NX" "a refused /dev path"
# Among other destinations: refused before anything is written.
bm 2 copy "$IMG" "$RAM/other.img" "$NX"
assert_contains "$RUN_ERR" "$NX: no such device" "missing /dev node, 2 DESTs"
assert_no_file "$NX" "a refused /dev path"
assert_no_file "$RAM/other.img" "the other DEST of a refused run"
bm 2 --json copy "$IMG" "$NX"
assert_contains "$RUN_ERR" '{"event":"error","exit":2,' "JSON error event"
assert_no_file "$NX" "a refused /dev path (--json)"
# --force: the user means it.
bm 0 copy --force "$IMG" "$NX"
[ -f "$NX" ] || fail "--force: $NX was not created as a regular file"
cmp "$IMG" "$NX" || fail "--force: $NX is not the image"
rm -f "$NX" || fail "cannot remove $NX"
note "ok: a missing /dev node is refused, --force creates the file"

# --- a bmap given as the image -----------------------------------------------
D=$RAM/dest.img
bm 2 copy "$IMG.bmap" "$D"
assert_contains "$RUN_ERR" "$IMG.bmap: this is a bmap file, not an image" \
	"bmap as IMAGE"
assert_no_file "$D" "DEST of a bmap given as IMAGE"
bm 2 copy --bmap "$IMG.bmap" "$IMG.bmap" "$D"
assert_contains "$RUN_ERR" "this is a bmap file, not an image" \
	"bmap as IMAGE with --bmap"
assert_no_file "$D" "DEST of a bmap given as IMAGE (--bmap)"
# Also after blank lines, and from <bmap> on (no XML declaration).
{ printf '\n  \n' && cat "$IMG.bmap"; } >"$RAM/blank.bmap"
sed -n '/^<bmap/,$p' "$IMG.bmap" >"$RAM/bare.bmap"
for b in blank bare; do
	bm 2 copy --bmap "$IMG.bmap" "$RAM/$b.bmap" "$D"
	assert_contains "$RUN_ERR" "this is a bmap file, not an image" \
		"$b.bmap as IMAGE"
	assert_no_file "$D" "DEST of $b.bmap given as IMAGE"
done
note "ok: a bmap given as the image is refused"

# --- mounted devices ---------------------------------------------------------
head -c $((SIZE + 4 * MIB)) /dev/zero >"$RAM/back.fs" || fail "no backing"
loop "$RAM/back.fs"
M=$DEV
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0,nodiscard "$M" \
	>/dev/null 2>&1 || fail "mkfs.ext4 $M failed"
mkdir "$E2E_TMP/mnt" || fail "mkdir"
e2e_mount "$M" "$E2E_TMP/mnt" ||
	skip "cannot mount $M: $(cat "$E2E_TMP/mount.err")"
sync
before=$(devsum "$M")
bm 2 copy "$IMG" "$M"
assert_contains "$RUN_ERR" "$M is mounted" "mounted device"
assert_eq "$before" "$(devsum "$M")" "$M after a refused copy"
# Among several DESTs the mounted one drops out, the others are written.
run "$BMAPTK" copy "$IMG" "$RAM/a.img" "$M" "$RAM/b.img"
assert_rc 2 "mounted device among 3 DESTs"
assert_contains "$RUN_ERR" "$M is mounted" "mounted device among 3 DESTs"
assert_contains "$RUN_ERR" "bmaptk: $M: FAILED" "mounted device among 3"
cmp "$IMG" "$RAM/a.img" || fail "a.img next to a mounted DEST"
cmp "$IMG" "$RAM/b.img" || fail "b.img next to a mounted DEST"
assert_eq "$before" "$(devsum "$M")" "$M after a refused copy (3 DESTs)"
umount "$E2E_TMP/mnt" || fail "cannot unmount $M"
note "ok: a mounted device is refused"

# A partition mounted: the whole disk is refused.
mounted_partition() {
	truncate -s $((SIZE + 8 * MIB)) "$RAM/back.part" || fail "truncate"
	printf 'label: dos\nstart=2048, type=83\n' |
		sfdisk -q "$RAM/back.part" >/dev/null 2>&1 || fail "sfdisk failed"
	loop -P "$RAM/back.part"
	P=$DEV
	for _ in $(seq 20); do
		[ -b "${P}p1" ] && break
		sleep 0.1
	done
	if [ ! -b "${P}p1" ]; then
		skip_case "no ${P}p1 after losetup -P (no partition support?)"
		return 0
	fi
	mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0,nodiscard \
		"${P}p1" >/dev/null 2>&1 || fail "mkfs.ext4 ${P}p1 failed"
	# Unmounted at exit before $P is detached: registered after it.
	e2e_mount "${P}p1" "$E2E_TMP/mnt" ||
		fail "cannot mount ${P}p1: $(cat "$E2E_TMP/mount.err")"
	sync
	before=$(devsum "$P")
	bm 2 copy "$IMG" "$P"
	assert_contains "$RUN_ERR" "$P is mounted (/dev/$(basename "$P")p1 on" \
		"disk with a mounted partition"
	assert_eq "$before" "$(devsum "$P")" "$P after a refused copy"
	umount "$E2E_TMP/mnt" || fail "cannot unmount ${P}p1"
	note "ok: a disk with a mounted partition is refused"
}
if command -v sfdisk >/dev/null 2>&1; then
	mounted_partition
else
	skip_case "sfdisk is not installed"
fi
note "all cases passed"
