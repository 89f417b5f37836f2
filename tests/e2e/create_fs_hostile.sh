# Hostile review of create --fs / --map / --split, block-device IMAGEs and
# copy --skip-unchanged by checksums. Each case is a defect found on
# 0733144; each fails on that binary. Needs root and loop devices.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd sfdisk mkfs.ext4 mkfs.vfat debugfs e2fsck losetup mount umount \
	cmp sha256sum truncate timeout "$PYTHON"
[ "$(id -u)" = 0 ] || skip "needs root for loop devices and mounts"
MIB=$((1024 * 1024))

e2e_ext4_dir D 4G # FIEMAP and 1 TiB sparse files
e2e_ramdir R

# covers BMAP OFF LEN: every block of [OFF, OFF+LEN) is mapped.
covers() {
	"$PYTHON" - "$@" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
bs = int(re.search(r"<BlockSize>\s*(\d+)", text).group(1))
off, n = int(sys.argv[2]), int(sys.argv[3])
want = set(range(off // bs, (off + n - 1) // bs + 1))
for m in re.finditer(r"<Range[^>]*>\s*(\d+)(?:-(\d+))?\s*</Range>", text):
    a = int(m.group(1)); b = int(m.group(2) or a)
    want -= set(range(a, b + 1))
sys.exit(1 if want else 0)
EOF
}

# random_dest VAR SIZE: a loop device over SIZE random bytes ("a card full
# of old data"); a regular-file DEST would be made sparse by copy.
random_dest() {
	head -c "$2" /dev/urandom >"$R/card.$1" || fail "cannot fill a card"
	e2e_losetup "$1" "$R/card.$1" || fail "losetup: $(cat "$E2E_TMP/losetup.err")"
}

# --- 1. A whole-disk FAT boot sector under an MBR partition table --------
# mkfs.vfat on the whole card, then sfdisk (scripted: no wipe): the boot
# sector keeps its BPB, the table lands at 446. The kernel and sfdisk see
# two partitions; libblkid says "vfat, no table", and --fs maps only the
# 64 MiB FAT's few used clusters - not a byte of the partitions.
case_ "MBR over a stale superfloppy FAT boot sector" eval '
	img=$D/sf.img
	truncate -s 64M "$img"
	mkfs.vfat "$img" >/dev/null
	printf "label: dos\nstart=2048, size=32768, type=83\nstart=34816, type=83\n" |
		sfdisk -q "$img" || fail "sfdisk"
	truncate -s 16M "$R/p1"
	mkfs.ext4 -q -F "$R/p1"
	dd if="$R/p1" of="$img" bs=512 seek=2048 conv=notrunc,sparse status=none
	sfdisk -d "$img" | grep -q "start=        2048" || fail "sfdisk reads no table"
	bm 0 create --fs "$img" -o "$R/sf.bmap"
	covers "$R/sf.bmap" $((2048 * 512 + 1024)) 1024 ||
		fail "p1 (ext4) superblock not mapped: $RUN_ERR"'

# --- 2. Data past the end of the filesystem --------------------------------
# A whole-image ext4 of 32 MiB in a 64 MiB image with 1 MiB of data at
# 40 MiB (what lies after the filesystem: a verity tree, a second blob): no
# filesystem accounts for it, so it must be mapped by data; it is dropped
# (and the summary calls it "free space" of a "64.0 MiB" ext4).
case_ "data after a whole-image filesystem" eval '
	img=$D/tail.img
	truncate -s 32M "$img"
	mkfs.ext4 -q -F "$img"
	truncate -s 64M "$img"
	head -c 1M /dev/urandom | dd of="$img" bs=1M seek=40 conv=notrunc status=none
	bm 0 create --fs "$img" -o "$R/tail.bmap"
	covers "$R/tail.bmap" $((40 * MIB)) $MIB ||
		fail "the 1 MiB at 40 MiB, outside the filesystem, is not mapped: $RUN_ERR"'

# --- 3. A block-device IMAGE: "by data" means non-zero blocks ------------
# A LUKS2 partition (or btrfs, xfs, an ext4 not cleanly unmounted) on a
# golden card: its zero-filled 4 KiB blocks (LUKS2 JSON-area padding,
# covered by the header checksum) are not mapped, so on a card with old
# data the clone is "not a valid LUKS device". The same image as a file
# (mapped by extents) clones fine.
if command -v cryptsetup >/dev/null; then
	case_ "LUKS2 on a block-device IMAGE" eval '
		img=$R/luks.img
		truncate -s 64M "$img"
		echo -n pw | cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 \
			--pbkdf-force-iterations 1000 "$img" - || fail "luksFormat"
		e2e_losetup src "$img" || fail "losetup"
		bm 0 create --fs "$src" -o "$R/luks.bmap"
		random_dest dst $((64 * MIB))
		bm 0 copy --bmap "$R/luks.bmap" "$src" "$dst"
		cryptsetup luksDump "$dst" >/dev/null 2>&1 ||
			fail "the clone is no LUKS device any more"'
else
	skip_case "cryptsetup is not installed"
fi

# The same with nothing but e2fsprogs: an ext4 without a journal that was
# not cleanly unmounted (e.g. a card pulled out) is, rightly, not mapped by
# its bitmaps - but on a block device "by data" drops its zero-filled
# blocks, so a 4 MiB file of zeros comes out as the card's old bytes.
case_ "unclean ext4 on a block-device IMAGE" eval '
	img=$R/unclean.img
	truncate -s 64M "$img"
	mkfs.ext4 -q -F -O ^has_journal "$img"
	mkdir -p "$R/um"
	e2e_mount -o loop "$img" "$R/um" || fail "mount"
	dd if=/dev/zero of="$R/um/zeros" bs=1M count=4 conv=fsync status=none
	head -c 1M /dev/urandom >"$R/um/rand"
	umount "$R/um"
	debugfs -w -R "ssv state 0" "$img" >/dev/null 2>&1
	e2e_losetup src "$img" || fail "losetup"
	bm 0 create --fs "$src" -o "$R/unclean.bmap"
	random_dest dst $((64 * MIB))
	bm 0 copy --bmap "$R/unclean.bmap" "$src" "$dst"
	debugfs -R "dump /zeros $R/zeros.out" "$dst" >/dev/null 2>&1
	cmp -s "$R/zeros.out" <(head -c 4M /dev/zero) ||
		fail "the zero-filled file holds the old card bytes on the clone"'

# --- 4. A block-device IMAGE read through a stale page cache -------------
# While a partition is mounted (read-only: allowed), the whole disk stays
# open, so its page cache outlives bmaptk. A file written after a first
# create (remount rw, write, remount ro) is missing from the second bmap:
# the bitmaps come from the cache. The copy reads the same stale cache.
case_ "stale page cache of the whole disk" eval '
	img=$D/pc.img
	truncate -s 96M "$img"
	printf "label: gpt\nstart=2048, size=131072, type=linux\n" | sfdisk -q "$img"
	truncate -s 64M "$R/pc.p1"
	mkfs.ext4 -q -F -b 4096 "$R/pc.p1"
	dd if="$R/pc.p1" of="$img" bs=1M seek=1 conv=notrunc,sparse status=none
	e2e_losetup disk "$img" || fail "losetup"
	[ -e "${disk}p1" ] || addpart "$disk" 1 2048 131072 2>/dev/null ||
		{ skip_case "no BLKPG partitions on loop devices"; exit 0; }
	on_exit "delpart $disk 1"
	mkdir -p "$R/mnt"
	e2e_mount -o ro "${disk}p1" "$R/mnt" || fail "mount"
	bm 0 create --fs "$disk" -o "$R/pc1.bmap"
	mount -o remount,rw "$R/mnt"
	head -c 8M /dev/urandom >"$R/mnt/late"
	sync
	mount -o remount,ro "$R/mnt"
	bm 0 create --fs "$disk" -o "$R/pc2.bmap"
	first=$(debugfs -R "bmap /late 0" "${disk}p1" 2>/dev/null)
	last=$(debugfs -R "bmap /late 2047" "${disk}p1" 2>/dev/null)
	[ -n "$first" ] && [ -n "$last" ] || fail "debugfs cannot place /late"
	covers "$R/pc2.bmap" $((MIB + first * 4096)) 4096 &&
		covers "$R/pc2.bmap" $((MIB + last * 4096)) 4096 ||
		fail "a file written before this create (blocks $first..$last) is not mapped: $RUN_ERR"'

# --- 5. --skip-unchanged by checksums compares DEST through the cache -----
# copy of a raw image at a URL hashes DEST with .cached = 1: a DEST whose
# page cache is stale (its device held open, changed underneath - a card
# muxed to a board, an NBD/iSCSI LUN) is judged unchanged and left wrong,
# exit 0. The compare-while-writing path (local image) reads the medium
# and gets it right.
case_ "--skip-unchanged by checksums trusts the page cache" eval '
	img=$D/su.img
	head -c 8M /dev/urandom >"$img"
	bm 0 create --split 1M "$img" -o "$img.bmap"
	cp "$img" "$R/su.card"
	e2e_losetup dev "$R/su.card" || fail "losetup"
	exec 7<"$dev"
	cat "$dev" >/dev/null
	dd if=/dev/urandom of="$R/su.card" bs=1M seek=3 count=1 conv=notrunc status=none
	bm 0 copy --skip-unchanged "file://$img" "$dev"
	exec 7<&-
	cmp -s "$img" "$R/su.card" || fail "exit 0, but DEST differs from the image: $RUN_ERR"'

# --- 6. SIGINT during --fs mapping ----------------------------------------
# The FAT and ext mappers never look at the interrupt flag; with
# --no-checksum nothing after them does either: SIGINT is ignored, exit 0,
# a bmap is written. (A crafted 512-byte boot sector with 255 FATs keeps
# the FAT mapper busy for ~8 minutes.)
case_ "SIGINT while mapping a large FAT" eval '
	img=$D/bigfat.img
	"$PYTHON" - "$img" <<"PY"
import os, struct, sys
bps, spc, rsvd, nfats, fatsz = 4096, 1, 32, 2, 262144
totsec = rsvd + nfats * fatsz + 268435440
bs = bytearray(512)
bs[0:3] = b"\xeb\x58\x90"; bs[3:11] = b"MSWIN4.1"
struct.pack_into("<HBHBHHBHHHII", bs, 11, bps, spc, rsvd, nfats, 0, 0, 0xF8, 0, 32, 64, 0, totsec)
struct.pack_into("<IHHIHH", bs, 36, fatsz, 0, 0, 2, 1, 6)
bs[66] = 0x29; bs[71:82] = b"NO NAME    "; bs[82:90] = b"FAT32   "
bs[510:512] = b"\x55\xaa"
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, totsec * bps)
os.pwrite(fd, bytes(bs), 0)
for k in range(nfats):
    os.pwrite(fd, struct.pack("<III", 0x0FFFFFF8, 0x0FFFFFFF, 0x0FFFFFFF), (rsvd + k * fatsz) * bps)
os.close(fd)
PY
	echo 3 >/proc/sys/vm/drop_caches
	"$BMAPTK" create --fs --no-checksum "$img" -o "$R/bigfat.bmap" 2>"$R/bigfat.err" &
	pid=$!
	sleep 0.5
	kill -INT $pid
	rc=0; wait $pid || rc=$?
	[ "$rc" = 130 ] || fail "SIGINT: expected exit 130, got $rc: $(cat "$R/bigfat.err")"
	assert_no_file "$R/bigfat.bmap" "a bmap after SIGINT"'

# --- 7. A read error hidden by libblkid -------------------------------------
# One EIO on a partition superblock read by libblkid: the partition becomes
# "unknown" (warned as "damaged?"), it is mapped by non-zero blocks, and
# the run exits 0; a 4 MiB zero-filled file comes out as the card's old
# bytes on the clone. A read error must be exit 3.
case_ "a read error on the image while probing" eval '
	cat >"$R/rf.c" <<"C"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
static int fired;
ssize_t pread64(int fd, void *buf, size_t n, off_t off)
{
	static ssize_t (*real)(int, void *, size_t, off_t);
	const char *o = getenv("RF_OFF");
	struct stat st;
	if (!real)
		real = dlsym(RTLD_NEXT, "pread64");
	if (!fired && o && !fstat(fd, &st) && S_ISBLK(st.st_mode) &&
	    off <= atoll(o) && off + (off_t)n > atoll(o)) {
		fired = 1;
		errno = EIO;
		return -1;
	}
	return real(fd, buf, n, off);
}
ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
	return pread64(fd, buf, n, off);
}
ssize_t read(int fd, void *buf, size_t n)
{
	static ssize_t (*real)(int, void *, size_t);
	off_t pos = lseek(fd, 0, SEEK_CUR);
	if (!real)
		real = dlsym(RTLD_NEXT, "read");
	{
		const char *o = getenv("RF_OFF");
		struct stat st;
		if (!fired && o && pos >= 0 && !fstat(fd, &st) &&
		    S_ISBLK(st.st_mode) && pos <= atoll(o) &&
		    pos + (off_t)n > atoll(o)) {
			fired = 1;
			errno = EIO;
			return -1;
		}
	}
	return real(fd, buf, n);
}
C
	command -v gcc >/dev/null || { skip_case "no gcc"; exit 0; }
	gcc -shared -fPIC -o "$R/rf.so" "$R/rf.c" -ldl || fail "gcc"
	preload=$R/rf.so
	if ldd "$BMAPTK" | grep -q libasan; then
		preload="$(ldd "$BMAPTK" | awk "/libasan/ { print \$3; exit }") $preload"
	fi
	img=$R/rf.img
	truncate -s 96M "$img"
	printf "label: gpt\nstart=2048, size=131072, type=linux\n" | sfdisk -q "$img"
	truncate -s 64M "$R/rf.p1"
	mkfs.ext4 -q -F "$R/rf.p1"
	dd if="$R/rf.p1" of="$img" bs=1M seek=1 conv=notrunc status=none
	e2e_losetup src "$img" || fail "losetup"
	# ASan checks that its runtime comes first; with the shim beside it
	# that check fails on some systems (a fresh bookworm chroot) though
	# the order is right, so it is turned off for this run only.
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 \
		RF_OFF=$((MIB + 1024)) LD_PRELOAD=$preload \
		run "$BMAPTK" create --fs "$src" -o "$R/rf.bmap"
	assert_rc 3 "a read error while probing p1"'

# --- 8. Sizes with a leading zero are octal --------------------------------
# strtoull(..., 0): "--map 0040M:1M" maps 32 MiB, "--split 010M" splits on
# 8 MiB. Zero-padded decimal must not silently change the range.
case_ "--map 0040M:1M" eval '
	img=$D/oct.img
	truncate -s 64M "$img"
	bm 0 create --no-checksum --map 0040M:1M "$img" -o "$R/oct.bmap"
	covers "$R/oct.bmap" $((40 * MIB)) $MIB ||
		fail "--map 0040M:1M did not map 40 MiB..41 MiB"'

# --- 9. The warning names the wrong GPT header -----------------------------
# Primary header gone, backup intact: libblkid reports the backup, and the
# missing one (the primary, at sector 1) is warned about as the "backup".
case_ "primary GPT header missing: named backup" eval '
	img=$D/gptc.img
	truncate -s 32M "$img"
	printf "label: gpt\nstart=2048, size=8192, type=linux\n" | sfdisk -q "$img"
	dd if=/dev/zero of="$img" bs=512 seek=1 count=1 conv=notrunc status=none
	bm 0 create --fs "$img" -o "$R/gptc.bmap"
	assert_not_contains "$RUN_ERR" "no backup GPT header at sector 1"'

# --- 10. --split is dropped with --scan-zeros (and for simg) ---------------
# The streamed paths return before bmaptk_bmap_split: exit 0, one 8 MiB
# range where --split 1M asked for eight.
case_ "--split with --scan-zeros" eval '
	img=$D/r8.img
	head -c 8M /dev/urandom >"$img"
	bm 0 create --scan-zeros --split 1M "$img" -o "$R/r8.bmap"
	assert_eq 8 "$(grep -c "<Range" "$R/r8.bmap")" "ranges with --split 1M"'

# --- 11. A FAT marked dirty is trusted -------------------------------------
# Linux sets the boot sector's dirty flag while a FAT is mounted read-write
# and clears it at umount; fsck.fat warns "some data may be corrupt". An
# ext4 in that state is mapped by data with a warning; a FAT is mapped by
# its (possibly unwritten) FAT, silently.
case_ "FAT with the dirty bit set" eval '
	img=$D/dirty.img
	truncate -s 32M "$img"
	mkfs.vfat -F 16 "$img" >/dev/null
	"$PYTHON" -c "
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
b = bytearray(os.pread(fd, 1, 37)); b[0] |= 1; os.pwrite(fd, bytes(b), 37)" "$img"
	bm 0 create --fs "$img" -o "$R/dirty.bmap"
	assert_contains "$RUN_ERR" "mapped by data" "a dirty FAT"'

cases_done "hostile create --fs cases passed"
