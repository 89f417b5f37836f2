# `bmaptk create --fs` (issue 20): filesystem-aware bmaps of real disk
# images built with sfdisk, mkfs.vfat/mtools, mkfs.ext4 -d/debugfs, mkswap
# and mksquashfs, where about half of each filesystem's files were deleted
# so that its free space holds stale data:
#
#   G  128 MiB GPT: p1 FAT32 (512-byte clusters), p2 ext4 (4 KiB blocks),
#      p3 squashfs (unknown to the mapper); a random blob at 32 KiB (between
#      the GPT entries and p1) and 64 KiB of written zeros at 40 MiB, in
#      p1's free space (a U-Boot environment, for --map).
#   M  144 MiB MBR: p1 FAT16, p2 extended holding p5 ext4 (1 KiB blocks)
#      and p6 swap (filled with random "swapped pages" first), p3 squashfs
#      after the extended partition; a random blob at 8 KiB.
#   Whole-disk filesystems without a table: ext4, ext2, FAT12.
#
# For each image, its non-sparse dump (cp --sparse=never) and a loop device
# of the dump: the bmap must map at least every byte the filesystems use
# (dumpe2fs: block count - free blocks; fsck.fat -v: data area start + used
# clusters) plus the tables and whatever lies outside the partitions, and at
# most that plus SLACK; never a block of a deleted file or of swap past its
# header page. Copied (bmaptk copy and bmaptool copy) onto loop devices full
# of random bytes - a regular-file DEST is made sparse by both tools, so
# only a block device keeps what was there - the result must pass e2fsck
# -fn and fsck.fat -n, hold every surviving file (SHA-256), the blob, both
# GPT copies, the MBR and each EBR byte for byte, the same sfdisk -d, and
# still hold the random bytes where deleted files were.
# Also: used blocks that are holes in the image file (cp --sparse=always)
# come out as zeros; --map (suffixes, rounding, bad specs); compressed
# input refused; a corrupt filesystem, a FAT bigger than its partition and
# a partition past the end of the image warned about and mapped as unknown;
# a block device IMAGE, refused while mounted read-write unless --force.
# Needs root and loop devices; skipped (77) without them.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd sfdisk mkfs.ext4 mkfs.ext2 debugfs dumpe2fs e2fsck mkfs.vfat \
	fsck.fat mcopy mdel mdir mmd mshowfat mkswap mksquashfs bmaptool losetup \
	mount umount zstd gzip cmp sha256sum truncate "$PYTHON"
[ "$(id -u)" = 0 ] || skip "needs root for loop devices and mounts"
export MTOOLS_SKIP_CHECK=1 # partitions whose geometry mtools dislikes

MIB=$((1024 * 1024))
KIB=1024
SLACK=$MIB # mapped may exceed what is used by this much (4 KiB rounding)

e2e_ext4_dir D 1G # the images: FIEMAP needs a real filesystem
case $(stat -f -c %T "$D") in
ext2/ext3 | ext4) ;;
*) skip "no loop device for an ext4 scratch filesystem" ;;
esac
[ "$(stat -f -c %s "$D")" = 4096 ] || skip "$D has a block size other than 4096"
e2e_ramdir R # destinations' backing files, extracted partitions
S=$E2E_TMP/meta # manifests, layouts, range lists
mkdir "$S" "$E2E_TMP/src"
H=$E2E_TMP/fsh.py

cat >"$H" <<'EOF'
# Helpers for create_fs.sh. Range files: one "OFFSET LENGTH" (bytes) a line.
# Parts files: "NAME KIND OFFSET LENGTH FSID USED" a line, KIND fat, ext,
# swap or unknown (mapped like a region outside the partitions).
import os
import random
import re
import struct
import sys
import xml.etree.ElementTree as ET

B = 4096


def ranges(path):
    out = []
    with open(path) as f:
        for line in f:
            if line.strip():
                o, n = line.split()[:2]
                out.append((int(o), int(n)))
    return out


def parts(path):
    out = []
    with open(path) as f:
        for line in f:
            if line.strip():
                name, kind, off, n, fsid, used = line.split()
                out.append((name, kind, int(off), int(n), fsid, int(used)))
    return out


def bmap(path):
    root = ET.parse(path).getroot()
    mapped = int(root.find("MappedBlocksCount").text)
    count = int(root.find("BlocksCount").text)
    rs = []
    for r in root.find("BlockMap").findall("Range"):
        a, _, b = "".join(r.text.split()).partition("-")
        rs.append((int(a), int(b or a)))
    if sum(b - a + 1 for a, b in rs) != mapped:
        sys.exit("%s: MappedBlocksCount %d is not the sum of its ranges"
                 % (path, mapped))
    return mapped, count, rs


def blockset(rs):
    s = set()
    for a, b in rs:
        s.update(range(a, b + 1))
    return s


def touched(off, n):
    return set(range(off // B, (off + n + B - 1) // B)) if n else set()


def data_extents(path, off, n):
    """The (SEEK_DATA) data extents of a file inside [off, off+n)."""
    out = []
    fd = os.open(path, os.O_RDONLY)
    try:
        end = min(off + n, os.fstat(fd).st_size)
        pos = off
        while pos < end:
            try:
                d = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break
            if d >= end:
                break
            h = min(os.lseek(fd, d, os.SEEK_HOLE), end)
            out.append((d, h - d))
            pos = h
    finally:
        os.close(fd)
    return out


def nonzero_blocks(path, off, n):
    s = set()
    with open(path, "rb") as f:
        first, last = off // B, (off + n + B - 1) // B
        f.seek(first * B)
        for blk in range(first, last):
            buf = f.read(B)
            if buf.strip(b"\0"):
                s.add(blk)
    return s


def mode_blocks(mode, ref, off, n):
    """Blocks of [off, off+n) the image REF has data in, by MODE: all,
    fiemap (its data extents) or nonzero (its non-zero blocks)."""
    if mode == "all":
        return touched(off, n)
    if mode == "fiemap":
        s = set()
        for o, l in data_extents(ref, off, n):
            s |= touched(o, l)
        return s
    if mode == "nonzero":
        return nonzero_blocks(ref, off, n)
    if mode.startswith("device="):
        # A block device: non-zero blocks, but a partition whose
        # filesystem is not read is mapped whole.
        s = nonzero_blocks(ref, off, n)
        for p in parts(mode[len("device="):]):
            if p[1] == "unknown" and p[2] < off + n and off < p[2] + p[3]:
                a, e = max(off, p[2]), min(off + n, p[2] + p[3])
                s |= touched(a, e - a)
        return s
    sys.exit("bad mode " + mode)


def outside(plist, size):
    """[off, len) of the image not in a partition of a known kind."""
    known = sorted((p[2], p[3]) for p in plist if p[1] != "unknown")
    out, pos = [], 0
    for o, n in known:
        if o > pos:
            out.append((pos, o - pos))
        pos = max(pos, o + n)
    if pos < size:
        out.append((pos, size - pos))
    return out


def cmd_gen(d, seed, *specs):
    """Files KEEP-OR-DELETE:PATH:SIZE[:z]; z puts 64 KiB of zeros at
    128 KiB. Prints "k|d PATH" lines."""
    for spec in specs:
        kd, path, size, *z = spec.split(":")
        rng = random.Random("%s/%s" % (seed, path))
        data = bytearray(rng.randbytes(int(size)))
        if z:
            data[128 * 1024:192 * 1024] = bytes(64 * 1024)
        full = os.path.join(d, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data)
        print(kd, path)


def cmd_blob(path, off, n, seed):
    rng = random.Random(seed)
    fd = os.open(path, os.O_WRONLY)
    os.pwrite(fd, rng.randbytes(int(n)), int(off))
    os.close(fd)


def cmd_ebrs(path):
    """The byte offset of each EBR, following the chain."""
    with open(path, "rb") as f:
        mbr = f.read(512)
        ext = None
        for i in range(4):
            e = mbr[446 + 16 * i:462 + 16 * i]
            if e[4] in (0x05, 0x0F, 0x85):
                ext = struct.unpack("<I", e[8:12])[0]
        cur = ext
        while cur is not None:
            print(cur * 512, 512)
            f.seek(cur * 512)
            nxt = f.read(512)[462:478]
            cur = (ext + struct.unpack("<I", nxt[8:12])[0]
                   if nxt[4] in (0x05, 0x0F, 0x85) else None)


def cmd_mbr_size(path, num, sectors):
    """Set primary partition NUM's size in the MBR."""
    fd = os.open(path, os.O_RDWR)
    os.pwrite(fd, struct.pack("<I", int(sectors)),
              446 + 16 * (int(num) - 1) + 12)
    os.close(fd)


def cmd_fatstale(partoff, datastart, csize, showfat):
    """Interior 4 KiB blocks of mshowfat's cluster runs, as ranges."""
    partoff, datastart, csize = int(partoff), int(datastart), int(csize)
    for a, b in re.findall(r"<(\d+)(?:-(\d+))?>", showfat):
        a = int(a)
        b = int(b) if b else a
        s = partoff + datastart + (a - 2) * csize
        e = partoff + datastart + (b - 1) * csize
        s, e = (s + B - 1) // B * B, e // B * B
        if e > s:
            print(s, e - s)


def cmd_extstale(partoff, bs, *blocks):
    """Interior 4 KiB blocks of runs of filesystem blocks, as ranges."""
    partoff, bs = int(partoff), int(bs)
    nums = sorted(int(x) for x in blocks if x.isdigit())
    runs = []
    for n in nums:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    for a, b in runs:
        s, e = partoff + a * bs, partoff + (b + 1) * bs
        s, e = (s + B - 1) // B * B, e // B * B
        if e > s:
            print(s, e - s)


def cmd_bounds(bmapf, partsf, tablesf, ref, mode, slack):
    """lower <= MappedBlocksCount * 4096 <= lower + SLACK, where lower is
    what the known filesystems use + the table blocks + the blocks of the
    other regions (outside, unknown) that MODE says hold data."""
    mapped, count, _ = bmap(bmapf)
    plist = parts(partsf)
    size = os.path.getsize(ref)
    used = sum(p[5] for p in plist if p[1] != "unknown")
    blocks = set()
    for o, n in outside(plist, size):
        blocks |= mode_blocks(mode, ref, o, n)
    for o, n in ranges(tablesf):
        blocks |= touched(o, n)
    lower = used + len(blocks) * B
    got = mapped * B
    msg = ("mapped %d bytes; filesystems use %d, tables and other regions"
           " %d: expected %d..%d" % (got, used, len(blocks) * B, lower,
                                     lower + int(slack)))
    print(msg)
    if not lower <= got <= lower + int(slack):
        sys.exit("bounds: " + msg)


def cmd_covered(bmapf, rangesf, want):
    """Every 4 KiB block of the ranges is mapped (want=1) / none is (0)."""
    m = blockset(bmap(bmapf)[2])
    bad = []
    for o, n in ranges(rangesf):
        t = touched(o, n)
        miss = t - m if want == "1" else t & m
        if miss:
            bad.append("[%d,+%d): %d blocks %s, first %d" % (
                o, n, len(miss), "unmapped" if want == "1" else "mapped",
                min(miss)))
    if bad:
        sys.exit("; ".join(bad[:5]))


def cmd_cmp(a, b, rangesf, mode, ref):
    """A and B hold the same bytes over the ranges, restricted to the
    blocks MODE says REF has data in."""
    fa, fb = open(a, "rb"), open(b, "rb")
    for o, n in ranges(rangesf):
        blocks = sorted(mode_blocks(mode, ref, o, n))
        for blk in blocks:
            s = max(o, blk * B)
            e = min(o + n, (blk + 1) * B)
            fa.seek(s)
            fb.seek(s)
            if fa.read(e - s) != fb.read(e - s):
                sys.exit("%s and %s differ in [%d,%d)" % (a, b, s, e))


def cmd_outside(partsf, size):
    for o, n in outside(parts(partsf), int(size)):
        print(o, n)


def cmd_holes(path, rangesf):
    """Bytes of the ranges that are holes in the file."""
    total = 0
    for o, n in ranges(rangesf):
        total += n - sum(l for _, l in data_extents(path, o, n))
    print(total)


def cmd_samein(b1, b2, partsf, kinds):
    """Both bmaps map the same blocks inside the partitions of KINDS."""
    m1, m2 = blockset(bmap(b1)[2]), blockset(bmap(b2)[2])
    for p in parts(partsf):
        if p[1] in kinds.split(","):
            t = touched(p[2], p[3])
            if m1 & t != m2 & t:
                d = sorted((m1 ^ m2) & t)
                sys.exit("%s: %d blocks differ, first %d" % (p[0], len(d),
                                                             d[0]))


def cmd_ranges(bmapf):
    print(" ".join("%d-%d" % r for r in bmap(bmapf)[2]))


def cmd_mapped(bmapf):
    m, c, _ = bmap(bmapf)
    print(m, c)


globals()["cmd_" + sys.argv[1].replace("-", "_")](*sys.argv[2:])
EOF
fsh() { "$PYTHON" "$H" "$@"; }

# ---------------------------------------------------------------------------
# Building the filesystems. Each FSID gets $S/FSID.keep (sha256sum lines of
# the surviving files), $S/FSID.gone (deleted paths), $S/FSID.stale
# (ranges, relative to the filesystem, of 4 KiB blocks that only deleted
# files used) and $S/FSID.used (bytes in use).

# gen FSID SPEC...: the files, in $E2E_TMP/src/FSID.
gen() {
	local fsid=$1 dir=$E2E_TMP/src/$1
	shift
	mkdir -p "$dir"
	fsh gen "$dir" "$fsid" "$@" >"$S/$fsid.list" || fail "gen $fsid"
	(cd "$dir" && sed -n 's/^k //p' "$S/$fsid.list" |
		xargs -d '\n' sha256sum) >"$S/$fsid.keep" || fail "sha256 $fsid"
	sed -n 's/^d //p' "$S/$fsid.list" >"$S/$fsid.gone"
}

# build_fat FSID FILE SIZE BITS SPEC...
build_fat() {
	local fsid=$1 f=$2 size=$3 bits=$4 dir=$E2E_TMP/src/$1 p d sf
	shift 4
	gen "$fsid" "$@"
	rm -f "$f"
	truncate -s "$size" "$f"
	mkfs.vfat -F "$bits" -i 12345678 -n "${fsid^^}" "$f" >/dev/null ||
		fail "mkfs.vfat $fsid"
	(cd "$dir" && find . -mindepth 1 -type d | sort) | while read -r d; do
		mmd -i "$f" "::${d#./}" || exit 1
	done || fail "mmd in $fsid"
	while read -r _ p; do
		mcopy -i "$f" "$dir/$p" "::$p" || exit 1
	done <"$S/$fsid.list" || fail "mcopy into $fsid"
	sf=$(fsck.fat -nv "$f") || fail "fsck.fat of fresh $fsid: $sf"
	local cs ds
	cs=$(grep -o '[0-9]* bytes per cluster' <<<"$sf" | grep -o '^[0-9]*')
	ds=$(grep -o 'Data area starts at byte [0-9]*' <<<"$sf" | grep -o '[0-9]*$')
	: >"$S/$fsid.stale"
	while read -r p; do
		fsh fatstale 0 "$ds" "$cs" "$(mshowfat -i "$f" "::$p")" \
			>>"$S/$fsid.stale" || fail "mshowfat $fsid $p"
		mdel -i "$f" "::$p" || fail "mdel $fsid $p"
	done <"$S/$fsid.gone"
	sf=$(fsck.fat -nv "$f") || fail "fsck.fat of $fsid after mdel: $sf"
	local used
	used=$(grep -o '[0-9]*/[0-9]* clusters' <<<"$sf" | cut -d/ -f1)
	echo $((ds + used * cs)) >"$S/$fsid.used"
	[ -s "$S/$fsid.stale" ] || fail "$fsid: no stale blocks"
}

# build_ext FSID FILE SIZE MKFS [MKFS-OPTION...] -- SPEC...
build_ext() {
	local fsid=$1 f=$2 size=$3 mkfs=$4 dir=$E2E_TMP/src/$1 opts=() p bs h
	shift 4
	while [ "$1" != -- ]; do
		opts+=("$1")
		shift
	done
	shift
	gen "$fsid" "$@"
	ln -s usr/bin/busybox "$dir/link" 2>/dev/null || true
	rm -f "$f"
	truncate -s "$size" "$f"
	"$mkfs" -q -F -U 0c0ffee0-0000-4000-8000-000000000000 "${opts[@]}" \
		-d "$dir" "$f" >/dev/null 2>"$E2E_TMP/mkfs.err" ||
		fail "$mkfs $fsid: $(cat "$E2E_TMP/mkfs.err")"
	bs=$(dumpe2fs -h "$f" 2>/dev/null | awk -F: '/^Block size/ { print $2 + 0 }')
	: >"$S/$fsid.stale"
	: >"$E2E_TMP/rm.cmds"
	while read -r p; do
		# shellcheck disable=SC2046 # a list of block numbers
		fsh extstale 0 "$bs" $(debugfs -R "blocks /$p" "$f" 2>/dev/null) \
			>>"$S/$fsid.stale" || fail "debugfs blocks $fsid $p"
		echo "rm /$p" >>"$E2E_TMP/rm.cmds"
	done <"$S/$fsid.gone"
	debugfs -w -f "$E2E_TMP/rm.cmds" "$f" >/dev/null 2>&1 ||
		fail "debugfs rm in $fsid"
	# Make the summary counts exact (debugfs may leave them to e2fsck).
	e2fsck -fy "$f" >/dev/null 2>&1
	e2fsck -fn "$f" >"$E2E_TMP/fsck.out" 2>&1 ||
		fail "e2fsck of $fsid after rm: $(cat "$E2E_TMP/fsck.out")"
	h=$(dumpe2fs -h "$f" 2>/dev/null)
	echo $((($(awk -F: '/^Block count/ { print $2 + 0 }' <<<"$h") - \
		$(awk -F: '/^Free blocks/ { print $2 + 0 }' <<<"$h")) * bs)) \
		>"$S/$fsid.used"
	# The inode tables (mostly zeros: holes in a sparse copy).
	dumpe2fs "$f" 2>/dev/null | grep -o 'Inode table at [0-9]*-[0-9]*' |
		grep -o '[0-9]*-[0-9]*' | awk -F- -v bs="$bs" \
		'{ print $1 * bs, ($2 - $1 + 1) * bs }' >"$S/$fsid.itable"
	[ -s "$S/$fsid.stale" ] || fail "$fsid: no stale blocks"
	[ -s "$S/$fsid.itable" ] || fail "$fsid: no inode tables"
}

# place IMG FILE OFFSET: write a filesystem into the image, keeping holes.
place() {
	dd if="$2" of="$1" bs=64K seek="$3" oflag=seek_bytes conv=notrunc,sparse \
		status=none || fail "dd $2 into $1"
}

# part_line NAME KIND OFF LEN FSID: a parts line, FSID's stale ranges made
# absolute into $S/LAYOUT.stale.
part_line() { # LAYOUT NAME KIND OFF LEN FSID
	local lay=$1 used=0
	case $3 in
	fat | ext) used=$(cat "$S/$6.used") ;;
	swap) used=4096 ;;
	esac
	echo "$2 $3 $4 $5 $6 $used" >>"$S/$lay.parts"
	if [ -s "$S/$6.stale" ]; then
		awk -v o="$4" '{ print $1 + o, $2 }' "$S/$6.stale" >>"$S/$lay.stale"
	fi
}

note "building the images"
t0=$SECONDS
head -c $((160 * MIB)) /dev/urandom >"$R/pool" || fail "cannot make the pool"

# --- G: GPT ---
G=$D/G.img
GSIZE=$((128 * MIB))
build_fat gfat "$D/gfat" $((40 * MIB)) 32 \
	k:boot/config.txt:700 k:boot/kernel.img:1500000:z \
	d:boot/old-kernel.img:1400000 k:boot/dtb/a.dtb:40000 \
	d:boot/dtb/b.dtb:45000 k:empty.txt:0 k:one.bin:1 d:big1.bin:2000000 \
	k:big2.bin:1200000 d:mid1.bin:300000 k:mid2.bin:250000 \
	d:small1.bin:4096 k:small2.bin:9000 d:fourk.bin:65536 \
	"k:Long file name.dat:131077" d:tmp.bin:800000
build_ext gext "$D/gext" $((80 * MIB)) mkfs.ext4 -b 4096 -- \
	k:etc/hostname:9 k:etc/os-release:300 k:usr/bin/busybox:1000000 \
	d:usr/bin/old:3000000 k:usr/lib/libc.so:2500000:z \
	d:usr/lib/libstale.so:4000000 k:var/log/empty:0 \
	d:var/log/syslog.1:2000000 k:var/log/syslog:700000 \
	d:home/user/video.bin:6000000 k:home/user/photo.bin:3300000 \
	d:home/user/doc.bin:100000 k:home/user/notes.txt:4095 \
	d:opt/a.bin:1500000 k:opt/b.bin:4096 k:opt/c.bin:5000
gen gsq k:sq/a.bin:500000 k:sq/b.bin:123457
mksquashfs "$E2E_TMP/src/gsq" "$D/gsq" -noappend -quiet -no-progress \
	-all-root -mkfs-time 0 >/dev/null || fail "mksquashfs"
truncate -s "$GSIZE" "$G"
sfdisk -q "$G" <<'EOF' >/dev/null || fail "sfdisk G"
label: gpt
label-id: 0C0FFEE0-0000-4000-8000-0000000000A0
unit: sectors
first-lba: 34
start=2048, size=81920, type=U, uuid=0C0FFEE0-0000-4000-8000-0000000000A1
start=83968, size=163840, type=L, uuid=0C0FFEE0-0000-4000-8000-0000000000A2
start=247808, size=8192, type=L, uuid=0C0FFEE0-0000-4000-8000-0000000000A3
EOF
place "$G" "$D/gfat" $MIB
place "$G" "$D/gext" $((41 * MIB))
place "$G" "$D/gsq" $((121 * MIB))
fsh blob "$G" $((32 * KIB)) $((64 * KIB)) blobG || fail "blob G"
dd if=/dev/zero of="$G" bs=64K count=1 seek=$((40 * MIB)) oflag=seek_bytes \
	conv=notrunc status=none || fail "zeros into G"
: >"$S/G.parts" && : >"$S/G.stale"
part_line G p1 fat $MIB $((40 * MIB)) gfat
part_line G p2 ext $((41 * MIB)) $((80 * MIB)) gext
part_line G p3 unknown $((121 * MIB)) $((4 * MIB)) gsq
printf '%s %s\n' 0 $((34 * 512)) $((GSIZE - 33 * 512)) $((33 * 512)) \
	>"$S/G.tables"
echo $((32 * KIB)) $((64 * KIB)) >"$S/G.blob"
# shellcheck disable=SC2034 # used through a nameref in summary()
SUMMARY_G=("GPT, 3 partitions" "p1 vfat" "p2 ext4" "p3 ")

# --- M: MBR with an extended partition ---
M=$D/M.img
MSIZE=$((144 * MIB))
build_fat mfat "$D/mfat" $((32 * MIB)) 16 \
	k:EFI/BOOT/BOOTX64.EFI:900000 d:EFI/BOOT/old.efi:850000 \
	k:cmdline.txt:120 d:u-boot.old:600000 k:u-boot.bin:650000:z \
	d:logo.bmp:1500000 k:logo2.bmp:1000000 d:a.bin:2048 k:b.bin:2049 \
	k:empty:0 d:junk.bin:1200000 k:z.bin:70000
build_ext mext "$D/mext" $((64 * MIB)) mkfs.ext4 -- \
	k:etc/fstab:200 d:etc/fstab.old:210 k:bin/sh:800000 \
	d:bin/old-sh:900000 k:lib/modules.bin:4000000:z \
	d:lib/old-modules.bin:5000000 k:data/db.bin:1234567 \
	d:data/db.bak:2345678 k:data/tiny:1 k:data/empty:0 \
	d:data/cache.bin:3000000 k:data/k1024:1024 d:data/k1025:1025
gen msq k:a.bin:1000000
mksquashfs "$E2E_TMP/src/msq" "$D/msq" -noappend -quiet -no-progress \
	-all-root -mkfs-time 0 >/dev/null || fail "mksquashfs"
# Swap: 16 MiB of "swapped pages", then mkswap (writes the first page).
head -c $((16 * MIB)) /dev/urandom >"$D/mswap" || fail "swap pages"
chmod 600 "$D/mswap"
mkswap -U 0c0ffee0-0000-4000-8000-0000000000b6 "$D/mswap" >/dev/null ||
	fail "mkswap"
truncate -s "$MSIZE" "$M"
sfdisk -q "$M" <<'EOF' >/dev/null || fail "sfdisk M"
label: dos
label-id: 0x0c0ffee0
unit: sectors
start=2048, size=65536, type=e
start=69632, size=172032, type=5
start=243712, size=16384, type=83
start=71680, size=131072, type=83
start=206848, size=32768, type=82
EOF
place "$M" "$D/mfat" $MIB
place "$M" "$D/mext" $((35 * MIB))
place "$M" "$D/mswap" $((101 * MIB))
place "$M" "$D/msq" $((119 * MIB))
fsh blob "$M" $((8 * KIB)) $((100 * KIB)) blobM || fail "blob M"
: >"$S/M.parts" && : >"$S/M.stale"
part_line M p1 fat $MIB $((32 * MIB)) mfat
part_line M p3 unknown $((119 * MIB)) $((8 * MIB)) msq
part_line M p5 ext $((35 * MIB)) $((64 * MIB)) mext
part_line M p6 swap $((101 * MIB)) $((16 * MIB)) mswap
# Swap past its header page is stale too.
echo $((101 * MIB + 4096)) $((16 * MIB - 4096)) >>"$S/M.stale"
{
	echo 0 512
	fsh ebrs "$M"
} >"$S/M.tables" || fail "ebrs M"
[ "$(wc -l <"$S/M.tables")" = 3 ] || fail "M: expected 2 EBRs: $(cat "$S/M.tables")"
echo $((8 * KIB)) $((100 * KIB)) >"$S/M.blob"
# shellcheck disable=SC2034 # used through a nameref in summary()
# (The extended partition is a container, not counted.)
SUMMARY_M=("MBR, 4 partitions" "p1 vfat" "p5 ext4" "p6 swap 16.0 MiB (4.0 KiB used)"
	"p3 ")

# --- whole-disk filesystems ---
build_ext w4 "$D/W4.part" $((32 * MIB)) mkfs.ext4 -b 4096 \
	-E lazy_itable_init=0,lazy_journal_init=0 -- \
	k:a.bin:1000000 d:b.bin:3000000 k:c.bin:2000000:z d:d.bin:500000 \
	k:e.txt:10
build_ext w2 "$D/W2.part" $((8 * MIB)) mkfs.ext2 -- \
	k:x:300000 d:y:1000000 k:z:200000:z
build_fat w12 "$D/W12.part" $((4 * MIB)) 12 \
	k:X.BIN:200000 d:Y.BIN:900000 k:Z.BIN:300000:z d:W.BIN:5000
for w in W4:ext:w4 W2:ext:w2 W12:fat:w12; do
	IFS=: read -r lay kind fsid <<<"$w"
	truncate -s "$(stat -c %s "$D/$lay.part")" "$D/$lay.img"
	place "$D/$lay.img" "$D/$lay.part" 0
	: >"$S/$lay.parts" && : >"$S/$lay.stale" && : >"$S/$lay.tables" &&
		: >"$S/$lay.blob"
	part_line "$lay" d "$kind" 0 "$(stat -c %s "$D/$lay.img")" "$fsid"
done

# The non-sparse dumps.
for lay in G M; do
	cp --sparse=never "$D/$lay.img" "$D/$lay.dump" || fail "cp $lay"
done
note "images built in $((SECONDS - t0)) s"

# ---------------------------------------------------------------------------
# Checking.

# rdest SIZE: a loop device over a new file of SIZE random bytes (the pool's
# first SIZE bytes); sets RDEV and RBACK. Detached when the case ends.
RDESTS=0
rdest() {
	RDESTS=$((RDESTS + 1))
	RBACK=$R/dest.$BASHPID.$RDESTS.img
	head -c "$1" "$R/pool" >"$RBACK" || fail "cannot make $RBACK"
	on_exit "rm -f '$RBACK'"
	e2e_losetup RDEV "$RBACK" ||
		fail "losetup failed: $(cat "$E2E_TMP/losetup.err")"
}

# summary LAYOUT: the last run's stderr has LAYOUT's summary line.
summary() {
	local -n want=SUMMARY_$1
	local s
	for s in "${want[@]}"; do
		assert_contains "$RUN_ERR" "$s" "summary of create --fs ($1)"
	done
}

# warned N: the last run's stderr has a warning naming partition N.
warned() {
	grep -Eq "^bmaptk: warning: .*(\<p$1\>|partition $1\>)" <<<"$RUN_ERR" ||
		fail "no warning naming partition $1: [$RUN_ERR]"
}

# bmap_ok BMAP PARTS TABLES BLOB STALE REF MODE: the bounds, the tables
# and blob mapped, no stale block mapped, its own checksum right.
bmap_ok() {
	local b=$1 parts=$2 tables=$3 blob=$4 stale=$5 ref=$6 mode=$7 msg
	bmap_check_self "$b" || fail "$b: bad file checksum"
	msg=$(fsh bounds "$b" "$parts" "$tables" "$ref" "$mode" "$SLACK") ||
		fail "$b ($mode): $msg"
	note "$(basename "$b"): $msg"
	fsh covered "$b" "$tables" 1 || fail "$b: partition table not mapped"
	fsh covered "$b" "$blob" 1 || fail "$b: blob not mapped"
	fsh covered "$b" "$stale" 0 || fail "$b: stale (free) blocks mapped"
	[ "$(fsh mapped "$b" | cut -d' ' -f2)" = \
		$((($(stat -L -c %s "$ref") + 4095) / 4096)) ] ||
		fail "$b: BlocksCount is not the image's size"
}

# verify PARTS TABLES BLOB STALE IMG DEST MODE: DEST (a copy of IMG onto
# the pool's bytes) is right. MODE says which bytes of the regions outside
# the known filesystems were to be copied: all, fiemap or nonzero.
verify() {
	local parts=$1 tables=$2 blob=$3 stale=$4 img=$5 dest=$6 mode=$7
	local name kind off len fsid used p sum x
	if [ -s "$tables" ]; then
		sfdisk -d "$img" 2>&1 | sed "s|$img|DISK|g" >"$E2E_TMP/sf.want"
		sfdisk -d "$dest" 2>&1 | sed "s|$dest|DISK|g" >"$E2E_TMP/sf.got"
		assert_same_file "$E2E_TMP/sf.want" "$E2E_TMP/sf.got" "sfdisk -d"
		grep -q '^DISK1 : start=' "$E2E_TMP/sf.got" ||
			fail "sfdisk -d of $dest: no partitions"
	fi
	fsh cmp "$img" "$dest" "$tables" all "$img" ||
		fail "partition table sectors differ"
	fsh cmp "$img" "$dest" "$blob" all "$img" || fail "blob differs"
	fsh outside "$parts" "$(stat -c %s "$img")" >"$E2E_TMP/outside"
	fsh cmp "$img" "$dest" "$E2E_TMP/outside" "$mode" "$img" ||
		fail "regions outside the filesystems differ ($mode)"
	fsh cmp "$R/pool" "$dest" "$stale" all "$img" ||
		fail "stale blocks were written over"
	while read -r name kind off len fsid used; do
		case $kind in
		fat)
			x=$R/x.fat
			dd if="$dest" of="$x" bs=1M iflag=skip_bytes,count_bytes \
				skip="$off" count="$len" status=none || fail "dd $name"
			run fsck.fat -n "$x"
			assert_rc 0 "fsck.fat -n of $name: $(head -n 6 <<<"$RUN_OUT")"
			while read -r sum p; do
				[ "$(mcopy -n -i "$x" "::$p" - | sha256sum | cut -d' ' -f1)" = "$sum" ] ||
					fail "$name: $p differs"
			done <"$S/$fsid.keep"
			while read -r p; do
				mdir -i "$x" "::$p" >/dev/null 2>&1 &&
					fail "$name: deleted $p is back"
			done <"$S/$fsid.gone"
			rm -f "$x"
			;;
		ext)
			x="$dest?offset=$off"
			run e2fsck -fn "$x"
			assert_rc 0 "e2fsck -fn of $name: $(head -n 12 <<<"$RUN_OUT")"
			while read -r sum p; do
				[ "$(debugfs -R "cat /$p" "$x" 2>/dev/null | sha256sum | cut -d' ' -f1)" = "$sum" ] ||
					fail "$name: $p differs"
			done <"$S/$fsid.keep"
			awk -v o="$off" '{ print $1 + o, $2 }' "$S/$fsid.itable" \
				>"$E2E_TMP/itable"
			fsh cmp "$img" "$dest" "$E2E_TMP/itable" all "$img" ||
				fail "$name: inode tables differ"
			;;
		swap)
			echo "$off" 4096 >"$E2E_TMP/swaphdr"
			fsh cmp "$img" "$dest" "$E2E_TMP/swaphdr" all "$img" ||
				fail "$name: swap header differs"
			;;
		esac
	done <"$parts"
}

# layout_args LAYOUT: the parts, tables, blob and stale files.
largs() { echo "$S/$1.parts $S/$1.tables $S/$1.blob $S/$1.stale"; }

# copy_check LAYOUT BMAP IMAGE REF MODE [bmaptool]: copy IMAGE onto random
# with BMAP, verify against REF (the image file IMAGE's bytes come from).
copy_check() {
	local lay=$1 b=$2 img=$3 ref=$4 mode=$5 size
	size=$(stat -L -c %s "$ref")
	rdest "$size"
	bm 0 copy --bmap "$b" "$img" "$RDEV"
	assert_contains "$RUN_ERR" "verified" "copy --bmap $b"
	# shellcheck disable=SC2046 # the four file names
	verify $(largs "$lay") "$ref" "$RBACK" "$mode"
	COPY_BACK=$RBACK
	COPY_DEV=$RDEV
}

# Cases 1-4: G and M as a sparse file, a non-sparse dump, a loop device.
case_sparse() {
	local lay=$1 img=$D/$1.img b=$R/$1.bmap plain=$R/$1.plain.bmap
	bm 0 create --fs -o "$b" "$img"
	summary "$lay"
	assert_not_contains "$RUN_ERR" "warning" "create --fs $img"
	assert_contains "$RUN_ERR" "not mapped (free space)" "summary ($lay)"
	# shellcheck disable=SC2046
	bmap_ok "$b" $(largs "$lay") "$img" fiemap
	# The stale blocks are data in the file: plain create maps them.
	bm 0 create -o "$plain" "$img"
	fsh covered "$plain" "$S/$lay.stale" 1 ||
		fail "$lay: the stale blocks are not data in the image"
	copy_check "$lay" "$b" "$img" "$img" fiemap
	# bmaptool copies the same bytes onto other random bytes.
	local first=$COPY_BACK
	rdest "$(stat -c %s "$img")"
	run bmaptool copy --bmap "$b" "$img" "$RDEV"
	assert_rc 0 "bmaptool copy --bmap $b"
	cmp "$first" "$RBACK" || fail "bmaptool copy differs from bmaptk copy"
	# --no-checksum: the same ranges, no checksums.
	bm 0 create --fs --no-checksum -o "$R/$lay.nc.bmap" "$img"
	grep -q chksum= "$R/$lay.nc.bmap" && fail "chksum= with --no-checksum"
	assert_eq "$(bmap_fields "$b" | sed 's/ chksum=[0-9a-f]*$//')" \
		"$(bmap_fields "$R/$lay.nc.bmap")" "--fs --no-checksum fields"
	if [ "$lay" = M ]; then
		echo $((101 * MIB)) 4096 >"$E2E_TMP/swaphdr"
		fsh covered "$b" "$E2E_TMP/swaphdr" 1 ||
			fail "swap header not mapped"
	fi
}

case_dump() {
	local lay=$1 img=$D/$1.dump b=$R/$1.dump.bmap m c
	bm 0 create -o "$R/$lay.dump.plain.bmap" "$img"
	assert_contains "$RUN_ERR" "every block is mapped"
	read -r m c <<<"$(fsh mapped "$R/$lay.dump.plain.bmap")"
	assert_eq "$c" "$m" "plain create of the dump maps every block"
	bm 0 create --fs -o "$b" "$img"
	summary "$lay"
	assert_not_contains "$RUN_ERR" "every block is mapped"
	assert_contains "$RUN_ERR" "not mapped (free space)" "summary ($lay)"
	# shellcheck disable=SC2046
	bmap_ok "$b" $(largs "$lay") "$img" all
	read -r m c <<<"$(fsh mapped "$b")"
	[ $((m * 2)) -lt "$c" ] ||
		fail "--fs of the dump maps $m of $c blocks: free space mapped?"
	copy_check "$lay" "$b" "$img" "$img" all
	# The filesystems are mapped as in the sparse image.
	[ -s "$R/$lay.bmap" ] || bm 0 create --fs -o "$R/$lay.bmap" "$D/$lay.img"
	fsh samein "$R/$lay.bmap" "$b" "$S/$lay.parts" fat,ext,swap ||
		fail "filesystems mapped differently in the dump and the sparse image"
}

case_blockdev() {
	local lay=$1 dump=$D/$1.dump b=$R/$1.dev.bmap dev
	e2e_losetup dev -r "$dump" ||
		fail "losetup failed: $(cat "$E2E_TMP/losetup.err")"
	bm 0 create --fs -o "$b" "$dev"
	summary "$lay"
	# shellcheck disable=SC2046
	bmap_ok "$b" $(largs "$lay") "$dump" "device=$S/$lay.parts"
	# Outside the partitions a device is scanned for zeros, as
	# --scan-zeros scans the file; partitions it cannot read are mapped
	# whole on the device (their zero blocks may matter), by data in the
	# file.
	bm 0 create --fs --scan-zeros -o "$R/$lay.sz.bmap" "$dump"
	fsh samein "$R/$lay.sz.bmap" "$b" "$S/$lay.parts" fat,ext,swap ||
		fail "filesystems mapped differently on $dev and by --scan-zeros"
	bm 0 create --fs -o "$R/$lay.bmap2" "$D/$lay.img"
	fsh samein "$R/$lay.bmap2" "$b" "$S/$lay.parts" fat,ext,swap ||
		fail "filesystems mapped differently on $dev and in the image file"
	copy_check "$lay" "$b" "$dev" "$dump" "device=$S/$lay.parts"
	bm 0 check --bmap "$b" "$dev" "$COPY_DEV"
	assert_contains "$RUN_ERR" "0 bad" "check of the copy"
	bm 0 check "$b" "$COPY_DEV"
}

# Case 5: used blocks that are holes in the image file are written (zeros).
case_holes() {
	local lay=$1 h=$D/$1.holes b=$R/$1.holes.bmap itab=$E2E_TMP/itab fsid
	cp --sparse=always "$D/$lay.dump" "$h" || fail "cp --sparse=always"
	on_exit "rm -f '$h'"
	fsid=$(awk '$2 == "ext" { print $5; exit }' "$S/$lay.parts")
	awk -v o="$(awk '$2 == "ext" { print $3; exit }' "$S/$lay.parts")" \
		'{ print $1 + o, $2 }' "$S/$fsid.itable" >"$itab"
	[ "$(fsh holes "$h" "$itab")" -gt 0 ] ||
		fail "$h: no holes in the inode tables: the case tests nothing"
	bm 0 create --fs -o "$b" "$h"
	fsh covered "$b" "$itab" 1 || fail "inode tables (holes) not mapped"
	# shellcheck disable=SC2046
	bmap_ok "$b" $(largs "$lay") "$h" fiemap
	copy_check "$lay" "$b" "$h" "$h" fiemap
	# The control: a bmap of the file's data alone leaves random bytes in
	# the inode tables and in files' zero clusters.
	bm 0 create -o "$R/$lay.holes.plain" "$h"
	rdest "$(stat -c %s "$h")"
	bm 0 copy --bmap "$R/$lay.holes.plain" "$h" "$RDEV"
	fsh cmp "$h" "$RBACK" "$itab" all "$h" 2>/dev/null &&
		fail "control: inode tables came out right without --fs"
	# shellcheck disable=SC2046
	(verify $(largs "$lay") "$h" "$RBACK" fiemap) 2>/dev/null &&
		fail "control: a copy without --fs passed verify"
	return 0
}

# Case 6: --map.
case_map() {
	local big=$D/big b=$R/map.bmap s
	truncate -s $((2 * 1024 * MIB + 5000)) "$big"
	on_exit "rm -f '$big'"
	bm 0 create -o "$b" --map 1G:4K --map 4K:4K --map 1M:1 \
		--map 5000:100 --map 4095:2 --map 2G:5000 "$big"
	assert_eq "0-1 256-256 262144-262144 524288-524289" \
		"$(fsh ranges "$b")" "--map ranges of an empty 2 GiB file"
	bmap_check_self "$b" || fail "$b: bad file checksum"
	# --map on top of the file's own extents.
	truncate -s $MIB "$D/small"
	on_exit "rm -f '$D/small'"
	fsh blob "$D/small" 0 4096 small || fail "blob small"
	bm 0 create -o "$R/map2.bmap" "$D/small"
	assert_eq "0-0" "$(fsh ranges "$R/map2.bmap")" "ranges of small"
	bm 0 create -o "$R/map2.bmap" --map 64K:1 --map 2K:4K "$D/small"
	assert_eq "0-1 16-16" "$(fsh ranges "$R/map2.bmap")" \
		"ranges of small with --map 64K:1 --map 2K:4K"

	# With --fs: 64 KiB of zeros in p1's free space at 40 MiB.
	echo $((40 * MIB)) $((64 * KIB)) >"$E2E_TMP/env"
	[ -s "$R/G.bmap" ] || bm 0 create --fs -o "$R/G.bmap" "$D/G.img"
	fsh covered "$R/G.bmap" "$E2E_TMP/env" 0 ||
		fail "the zeros at 40M are mapped without --map: case tests nothing"
	bm 0 create --fs --map 40M:64K -o "$R/G.map.bmap" "$D/G.img"
	fsh covered "$R/G.map.bmap" "$E2E_TMP/env" 1 ||
		fail "--map 40M:64K not mapped"
	copy_check G "$R/G.map.bmap" "$D/G.img" "$D/G.img" fiemap
	cmp -s <(dd if="$COPY_BACK" bs=64K skip=640 count=1 status=none) \
		<(head -c 65536 /dev/zero) ||
		fail "--map 40M:64K: DEST does not hold zeros there"

	# Bad specs: exit 2, a message, no bmap.
	for s in 12 x:y 4K: :4K 1Q:4K -4096:4096 4K:-1 4K:4K:4K \
		99999999999999999999:1; do
		bm 2 create --fs --map "$s" -o "$R/bad.bmap" "$D/G.img"
		assert_contains "$RUN_ERR" "--map" "--fs --map $s: message"
		assert_no_file "$R/bad.bmap" "--map $s"
		bm 2 create --map "$s" -o "$R/bad.bmap" "$D/small"
		assert_contains "$RUN_ERR" "--map" "--map $s: message"
		assert_no_file "$R/bad.bmap" "--map $s"
	done
	# Not in the spec: say what happens.
	for s in 1:0 200M:4K 127M:2M; do
		run "$BMAPTK" create --fs --map "$s" -o "$R/odd.bmap" "$D/G.img"
		note "create --fs --map $s of the 128 MiB G.img: exit $RUN_RC" \
			"${RUN_ERR:+[$(grep -v "^bmaptk: $D" <<<"$RUN_ERR")]}"
	done
}

# Case 7a: compressed or piped IMAGE.
case_compressed() {
	local z
	zstd -q -1 -c "$D/G.img" >"$R/G.img.zst" || fail "zstd"
	gzip -1 -c "$D/W12.img" >"$R/W12.img.gz" || fail "gzip"
	for z in "$R/G.img.zst" "$R/W12.img.gz"; do
		bm 2 create --fs -o "$R/z.bmap" "$z"
		assert_contains "$RUN_ERR" "--fs needs random access" "$z"
		assert_no_file "$R/z.bmap" "$z"
	done
	run bash -c 'cat "$1" | "$2" create --fs -o "$3" /dev/stdin' sh \
		"$D/W12.img" "$BMAPTK" "$R/z.bmap"
	assert_rc 2 "create --fs of a pipe"
	assert_contains "$RUN_ERR" "/dev/stdin" "create --fs of a pipe"
}

# Case 7b: p2's ext4 superblock zeroed, or claiming 4 times the partition's
# blocks (its checksum then wrong too): warned, mapped as unknown.
case_corrupt_ext() {
	local how=$1 c=$D/Gc.img b=$R/Gc.bmap sb=$((41 * MIB + 1024))
	cp "$D/G.img" "$c" && on_exit "rm -f '$c'"
	case $how in
	zero)
		dd if=/dev/zero of="$c" bs=1024 count=1 seek=$((sb / 1024)) \
			conv=notrunc status=none || fail "zero the superblock"
		;;
	big)
		"$PYTHON" -c 'import os, struct, sys
fd = os.open(sys.argv[1], os.O_RDWR)
off = int(sys.argv[2])
n, = struct.unpack("<I", os.pread(fd, 4, off + 4))
os.pwrite(fd, struct.pack("<I", n * 4), off + 4)' "$c" "$sb" ||
			fail "patch the superblock"
		;;
	esac
	sed 's/^p2 ext /p2 unknown /' "$S/G.parts" >"$S/Gc.parts"
	cp "$S/G.tables" "$S/Gc.tables" && cp "$S/G.blob" "$S/Gc.blob"
	awk -v a=$((41 * MIB)) -v b=$((121 * MIB)) '$1 < a || $1 >= b' \
		"$S/G.stale" >"$S/Gc.stale"
	bm 0 create --fs -o "$b" "$c"
	assert_contains "$RUN_ERR" "GPT, 3 partitions" "summary"
	assert_contains "$RUN_ERR" "p1 vfat" "summary"
	local err=$RUN_ERR
	# shellcheck disable=SC2046
	bmap_ok "$b" $(largs Gc) "$c" fiemap
	# p2 mapped as unknown: all its data, stale included.
	awk -v a=$((41 * MIB)) -v b=$((121 * MIB)) '$1 >= a && $1 < b' \
		"$S/G.stale" >"$E2E_TMP/p2stale"
	fsh covered "$b" "$E2E_TMP/p2stale" 1 ||
		fail "corrupt p2: its (stale) data is not all mapped"
	copy_check Gc "$b" "$c" "$c" fiemap
	# Last, so that the mapping is checked even without it.
	RUN_ERR=$err
	warned 2
}

# Case 7c: M's FAT16 p1 cut to 4 MiB in the table: the FAT describes
# clusters (files) beyond the partition. Warned, mapped as unknown.
case_corrupt_fat() {
	local c=$D/Mf.img b=$R/Mf.bmap
	cp "$D/M.img" "$c" && on_exit "rm -f '$c'"
	fsh mbr-size "$c" 1 8192 || fail "patch p1"
	sed "s/^p1 fat .*/p1 unknown $MIB $((4 * MIB)) mfat 0/" \
		"$S/M.parts" >"$S/Mf.parts"
	cp "$S/M.tables" "$S/Mf.tables" && cp "$S/M.blob" "$S/Mf.blob"
	awk -v a=$((34 * MIB)) '$1 >= a' "$S/M.stale" >"$S/Mf.stale"
	bm 0 create --fs -o "$b" "$c"
	warned 1
	# shellcheck disable=SC2046
	bmap_ok "$b" $(largs Mf) "$c" fiemap
	awk -v a=$((34 * MIB)) '$1 < a' "$S/M.stale" >"$E2E_TMP/p1stale"
	fsh covered "$b" "$E2E_TMP/p1stale" 1 ||
		fail "FAT beyond p1: the files' data is not all mapped"
}

# Case 7d: partitions past the end of the image.
case_past_end() {
	local c=$D/Mt.img b=$R/Mt.bmap
	cp "$D/M.img" "$c" && on_exit "rm -f '$c'"
	truncate -s $((124 * MIB)) "$c" # p3 (119-127 MiB) crosses the end
	sed 's/^p3 unknown .*/p3 unknown '$((119 * MIB))' '$((5 * MIB))' msq 0/' \
		"$S/M.parts" >"$S/Mt.parts"
	cp "$S/M.tables" "$S/Mt.tables" && cp "$S/M.blob" "$S/Mt.blob"
	cp "$S/M.stale" "$S/Mt.stale"
	bm 0 create --fs -o "$b" "$c"
	warned 3
	# shellcheck disable=SC2046
	bmap_ok "$b" $(largs Mt) "$c" fiemap
	copy_check Mt "$b" "$c" "$c" fiemap
}

# Case 7e: cut at 110 MiB: p6 (swap, 101-117 MiB) and the extended p2
# holding it cross the end, p3 lies beyond it. p5, a logical partition
# wholly inside the image, is still mapped as ext4.
case_past_end_ext() {
	local c=$D/Mt.img b=$R/Mt.bmap
	cp "$D/M.img" "$c" && on_exit "rm -f '$c'"
	truncate -s $((110 * MIB)) "$c"
	bm 0 create --fs -o "$b" "$c"
	warned 6
	warned 3
	echo $((101 * MIB)) $((9 * MIB)) >"$E2E_TMP/p6"
	fsh covered "$b" "$E2E_TMP/p6" 1 ||
		fail "p6 past the end: its data is not all mapped"
	grep -v '^p[36] ' "$S/M.parts" >"$S/Mt.parts"
	echo "p6 unknown $((101 * MIB)) $((9 * MIB)) mswap 0" >>"$S/Mt.parts"
	cp "$S/M.tables" "$S/Mt.tables" && cp "$S/M.blob" "$S/Mt.blob"
	awk -v a=$((101 * MIB)) '$1 < a' "$S/M.stale" >"$S/Mt.stale"
	assert_contains "$RUN_ERR" "p5 ext4" "summary"
	fsh covered "$b" "$S/Mt.stale" 0 ||
		fail "free blocks of p1/p5 (wholly inside the image) are mapped"
	# shellcheck disable=SC2046
	bmap_ok "$b" $(largs Mt) "$c" fiemap
}

# Case 8b: a mounted filesystem on a block device IMAGE.
case_mounted() {
	local w=$R/W4.rw dev mnt=$E2E_TMP/mnt b=$R/W4.dev.bmap
	cp "$D/W4.img" "$w" && on_exit "rm -f '$w'"
	e2e_losetup dev "$w" || fail "losetup: $(cat "$E2E_TMP/losetup.err")"
	mkdir -p "$mnt"
	e2e_mount "$dev" "$mnt" || fail "mount $dev: $(cat "$E2E_TMP/mount.err")"
	sync
	bm 2 create --fs -o "$b" "$dev"
	assert_contains "$RUN_ERR" "mounted" "create --fs of mounted $dev"
	assert_no_file "$b"
	bm 0 create --fs --force -o "$b" "$dev"
	rdest "$(stat -c %s "$w")"
	bm 2 copy --bmap "$b" "$dev" "$RDEV"
	assert_contains "$RUN_ERR" "mounted" "copy from mounted $dev"
	bm 0 copy --force --bmap "$b" "$dev" "$RDEV"
	umount "$mnt" || fail "umount"
	# Unmounted, the device maps as its backing file does.
	bm 0 create --fs -o "$b" "$dev"
	assert_not_contains "$RUN_ERR" "warning" "create --fs $dev"
	bm 0 create --fs -o "$R/W4.file.bmap" "$w"
	bmap_fields "$R/W4.file.bmap" >"$E2E_TMP/want.fields"
	bmap_fields "$b" >"$E2E_TMP/got.fields"
	assert_same_file "$E2E_TMP/want.fields" "$E2E_TMP/got.fields" \
		"create --fs of $dev vs of its backing file"
	# Mounted read-only: no refusal. (Not compared with the file: the
	# mounted filesystem's buffers in the device's cache differ from it.)
	e2e_mount -o ro "$dev" "$mnt" || fail "mount -o ro: $(cat "$E2E_TMP/mount.err")"
	bm 0 create --fs -o "$b" "$dev"
	bm 0 copy --bmap "$b" "$dev" "$RDEV"
	umount "$mnt" || fail "umount"
}

# Case 8c: a mounted partition of a partitioned loop device (losetup -P).
case_mounted_part() {
	local g=$R/G.rw dev mnt=$E2E_TMP/mntp
	cp "$D/G.img" "$g" && on_exit "rm -f '$g'"
	e2e_losetup dev -P "$g" || fail "losetup: $(cat "$E2E_TMP/losetup.err")"
	sleep 0.2
	if [ ! -b "${dev}p2" ]; then
		skip_case "no ${dev}p2 after losetup -P: the kernel does not scan partitions (CONFIG_EFI_PARTITION/CONFIG_MSDOS_PARTITION)"
		return 0
	fi
	mkdir -p "$mnt"
	e2e_mount "${dev}p2" "$mnt" || fail "mount ${dev}p2"
	bm 2 create --fs -o "$R/Gp.bmap" "$dev"
	assert_contains "$RUN_ERR" "mounted" "create --fs of $dev, p2 mounted"
	bm 0 create --fs -o "$R/Gp.bmap" --force "$dev"
	rdest "$GSIZE"
	bm 2 copy --bmap "$R/Gp.bmap" "$dev" "$RDEV"
	assert_contains "$RUN_ERR" "mounted" "copy from $dev, p2 mounted"
}

# Whole-disk filesystems (no partition table).
case_whole() {
	local lay=$1 name=$2 img=$D/$1.img b=$R/$1.bmap
	bm 0 create --fs -o "$b" "$img"
	assert_contains "$RUN_ERR" "$name" "summary of $img"
	assert_not_contains "$RUN_ERR" "GPT" "summary of $img"
	assert_not_contains "$RUN_ERR" "MBR" "summary of $img"
	assert_not_contains "$RUN_ERR" "warning" "create --fs $img"
	# shellcheck disable=SC2046
	bmap_ok "$b" $(largs "$lay") "$img" fiemap
	copy_check "$lay" "$b" "$img" "$img" fiemap
	cp --sparse=never "$img" "$R/$lay.dump" && on_exit "rm -f '$R/$lay.dump'"
	bm 0 create --fs -o "$R/$lay.dump.bmap" "$R/$lay.dump"
	# shellcheck disable=SC2046
	bmap_ok "$R/$lay.dump.bmap" $(largs "$lay") "$R/$lay.dump" all
}

t0=$SECONDS
for lay in G M; do
	case_ "$lay sparse" case_sparse "$lay"
	case_ "$lay dump" case_dump "$lay"
	case_ "$lay block device" case_blockdev "$lay"
	case_ "$lay holes" case_holes "$lay"
done
case_ "whole-disk ext4" case_whole W4 ext4
case_ "whole-disk ext2" case_whole W2 ext2
case_ "whole-disk FAT12" case_whole W12 vfat
case_ "--map" case_map
case_ "compressed" case_compressed
case_ "ext4 superblock zeroed" case_corrupt_ext zero
case_ "ext4 superblock too big" case_corrupt_ext big
case_ "FAT beyond its partition" case_corrupt_fat
case_ "partition past the end" case_past_end
case_ "extended partition past the end" case_past_end_ext
case_ "mounted" case_mounted
case_ "mounted partition" case_mounted_part
note "cases took $((SECONDS - t0)) s"
cases_done "all cases passed"
