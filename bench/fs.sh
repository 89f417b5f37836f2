#!/usr/bin/env bash
# Benchmark `bmaptk create --fs` (map what the partition table and the
# filesystems use) against the truth, against plain create and --scan-zeros,
# and against hashing the bytes it maps.
#
#   bench/fs.sh [--quick] [-n RUNS]
#
# Images, generated once into $BENCH_DIR (about 15 s; needs root for
# losetup and mount; about 1.3 GiB on disk):
#  - fs-1g.img: a 1 GiB disk dump, not sparse (cp --sparse=never). GPT
#    (fixed GUIDs); a 256 KiB random "bootloader" blob at 32 KiB, outside
#    the partitions; p1 FAT32 128 MiB at 1 MiB (mkfs.vfat -F 32, its
#    default 512-byte clusters); p2 ext4, the rest. Each filled with files
#    (3/4 small, 1-64 KiB; 1/4 large, up to 16 MiB; fixed seed) to 85 % of
#    its size, then the files not kept deleted, so that ~25 % of the image
#    is in use (rootfs-like data: common.sh's corpus, 1 MiB in 5 random)
#    and ~60 % holds stale, non-zero data (random); the rest was never
#    written (zeros). The ext4 is filled through a loop mount (the kernel's
#    allocator); the FAT with mtools (mcopy, then mdel, which leaves the
#    freed clusters' data in place, as the kernel does), as the kernel may
#    have no vfat.
#  - fs-64g.img (not with --quick): 64 GiB, sparse. GPT; p1 FAT32 128 MiB
#    with two files; p2 ext4 of 60 GiB (mkfs.ext4 -E offset=,
#    lazy_itable_init=1,nodiscard -d with a few files); ~4 GiB at the end
#    outside any partition. Shows that --fs's peak RSS does not grow with
#    the image (and its mapped bytes are mostly ext4 inode tables).
#
# Truth (bytes in use, computed from the image on every run):
#   GPT (primary 34 sectors + backup 33)
#   + ext4: (Block count - Free blocks) x Block size   (dumpe2fs -h)
#   + FAT: data area offset (boot sector, reserved sectors, FATs)
#          + clusters in use x cluster size           (fsck.fat -n -v)
#   + non-zero 512-byte sectors outside the partitions and the GPT (blobs)
# Mapped bytes are MappedBlocksCount x BlockSize of each bmap.
#
# Timing: RUNS rounds (default 5, --quick 3) after one untimed warm-up
# round, the commands taking turns within a round (a burst of load from
# other jobs hits them alike); the table shows the MEDIAN wall time,
# min-max, and the largest peak RSS (/usr/bin/time -f %M). The page cache
# is warm for every command and in the same state for the dump and the
# twin: each is dropped from the cache (POSIX_FADV_DONTNEED) and read back
# with cat just before the warm-up round (not the 64 GiB image, whose holes
# need no caching), and everything fits in memory.
#
# Yardstick for target 2, "hashing the mapped bytes on all cores": plain
# `bmaptk create` (FIEMAP) of a sparse twin of the 1 GiB dump that holds
# exactly the --fs bmap's ranges at their offsets and holes elsewhere
# (written, untimed, from one --fs run). It hashes the same bytes, range
# by range, on all cores, in the same pipeline, so the ratio is the cost
# of --fs's mapping (partition table, bitmaps, FAT); that the twin's bmap
# lists the same ranges and checksums is checked. Not `openssl dgst` on
# $(nproc) equal parts of the mapped bytes, which the table shows for
# comparison: that CLI reads 8 KiB at a time and hashes ~35 % slower than
# in-process SHA-256 here (a lax yardstick), and equal parts ignore that
# each bmap range is one sequential SHA-256 stream. (create.sh checks
# plain create against openssl ÷ cores.)
#
# Targets: (1) mapped by --fs <= 1.02 x truth (1 GiB dump); (2) --fs time
# <= 1.2 x the yardstick, as the median over the rounds of the ratio of
# the two runs (back to back in each round; steadier than the ratio of the
# medians on a loaded machine); (3) --fs peak RSS <= 32 MiB, on both
# images.
# Checks: --fs bmap = the twin's; copying the 1 GiB dump with the --fs bmap
# into an empty file gives filesystems that fsck.fat -n and e2fsck -fn
# accept and whose files are the same (diff -r: the FAT extracted with
# mcopy, the ext4 mounted read-only).
#
# PASS/FAIL per target. Exit status 1 when a target fails or could not be
# measured (no --fs yet) only with BENCH_STRICT=1; 0 otherwise (the other
# bench scripts always exit 1 on a missed target).
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/common.sh"

runs=5 big=yes
while (($#)); do
	case $1 in
	--quick) runs=3 big= ;;
	-n) runs=$2 && shift ;;
	*) echo "usage: $0 [--quick] [-n RUNS]" >&2 && exit 2 ;;
	esac
	shift
done
((runs >= 1)) || bench_die "-n needs at least 1"

# Mounts and loop devices this script made; undone on exit.
FS_MOUNTS=() FS_LOOPS=()
fs_cleanup() {
	local i
	for ((i = ${#FS_MOUNTS[@]} - 1; i >= 0; i--)); do
		umount "${FS_MOUNTS[i]}" 2>/dev/null || umount -l "${FS_MOUNTS[i]}" || true
	done
	for i in "${FS_LOOPS[@]}"; do
		losetup -d "$i" 2>/dev/null || true
	done
	FS_MOUNTS=() FS_LOOPS=()
	rm -rf "$BENCH_TMP"
}
trap fs_cleanup EXIT
trap 'exit 130' INT TERM

# fs_loop FILE OFFSET SIZE [-r]: a loop device over FILE[OFFSET, +SIZE) in
# LOOP.
fs_loop() {
	LOOP=$(losetup -f --show ${4:+-r} -o "$2" --sizelimit "$3" "$1") ||
		bench_die "losetup of $1 failed"
	FS_LOOPS+=("$LOOP")
}
# fs_mount DEV DIR OPTIONS
fs_mount() {
	mkdir -p "$2"
	mount -o "$3" "$1" "$2" || bench_die "mount $1 failed"
	FS_MOUNTS+=("$2")
}
fs_umount_all() {
	local i
	for ((i = ${#FS_MOUNTS[@]} - 1; i >= 0; i--)); do
		umount "${FS_MOUNTS[i]}" || bench_die "umount ${FS_MOUNTS[i]} failed"
	done
	FS_MOUNTS=()
	for i in "${FS_LOOPS[@]}"; do
		losetup -d "$i" || bench_die "losetup -d $i failed"
	done
	FS_LOOPS=()
}

need_root() {
	[[ $(id -u) == 0 ]] || bench_die "generating $1 needs root (losetup, mount)"
}

# The partition layout (512-byte sectors). Fixed GUIDs, so that the
# partition table is the same on every machine.
SECT=512
P1_START=2048 P1_SIZE=262144 P2_START=264192
GPT_SECTORS=$((34 + 33))
BLOB_OFF=$((32 * 1024)) BLOB_LEN=$((256 * 1024))
gpt_script() { # [P2 size in sectors]
	cat <<EOF
label: gpt
label-id: 5C0D2E5A-6C2B-4F0B-9C1E-0B3A8C4E0F00
first-lba: 34
start=$P1_START, size=$P1_SIZE, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, uuid=5C0D2E5A-6C2B-4F0B-9C1E-0B3A8C4E0F01, name=boot
start=$P2_START, ${1:+size=$1, }type=0FC63DAF-8483-4772-8E3D-693D84E4C709, uuid=5C0D2E5A-6C2B-4F0B-9C1E-0B3A8C4E0F02, name=root
EOF
}

# fill.py ext4 MOUNTPOINT | fat IMAGE STAGING, then SEED CORPUS RANDOM:
# files up to 85 % of the filesystem, then all but ~25 % of it deleted. An
# ext4 is filled through its mount; a FAT image (this kernel may have no
# vfat) with mtools: the files are staged in STAGING, copied in with
# mcopy -s and the stale ones removed with mdel, which leaves their
# clusters' data in place as the kernel's unlink does. Prints what it did.
FILL_PY=$(
	cat <<'PY'
import os, random, shutil, struct, subprocess, sys
mode = sys.argv[1]
if mode == "ext4":
    mnt, args = sys.argv[2], sys.argv[3:]
else:
    fat, mnt, args = sys.argv[2], sys.argv[3], sys.argv[4:]
seed, corpus_p, rnd_p = int(args[0]), args[1], args[2]
FILL, KEEP, MIB = 0.85, 0.25, 1 << 20
rng = random.Random(seed)

def usage():
    """(total, used) bytes of the filesystem"""
    if mode == "ext4":
        st = os.statvfs(mnt)
        return st.f_blocks * st.f_frsize, (st.f_blocks - st.f_bfree) * st.f_frsize
    with open(fat, "rb") as f:
        bs = f.read(512)
    bps, spc, rsvd, nfats = struct.unpack_from("<HBHB", bs, 11)
    tot16, = struct.unpack_from("<H", bs, 19)
    tot32, fatsz = struct.unpack_from("<II", bs, 32)
    tot = tot16 or tot32
    clus = (tot - rsvd - nfats * fatsz) // spc
    with open(fat, "rb") as f:
        f.seek(rsvd * bps)
        tab = f.read((clus + 2) * 4)
    free = sum(1 for i in range(2, clus + 2)
               if struct.unpack_from("<I", tab, 4 * i)[0] & 0x0FFFFFFF == 0)
    return clus * spc * bps, (clus - free) * spc * bps

total, used0 = usage()
to_write, to_keep = FILL * total - used0, KEEP * total - used0

class Stream:  # a file read in a cycle
    def __init__(self, p):
        self.f = open(p, "rb")
    def read(self, n):
        b = self.f.read(n)
        while len(b) < n:
            self.f.seek(0)
            b += self.f.read(n - len(b))
        return b
corpus, rnd = Stream(corpus_p), Stream(rnd_p)
kpos = 0  # position in the kept data: 1 MiB in 5 random, else corpus
def kept_data(n):
    global kpos
    out = []
    while n:
        take = min(MIB - kpos % MIB, n)
        out.append((rnd if (kpos // MIB) % 5 == 4 else corpus).read(take))
        kpos += take
        n -= take
    return b"".join(out)

dirs = ["d%02d" % i for i in range(24)]
for d in dirs:
    os.makedirs(os.path.join(mnt, d))
written = kept = 0
stale = []
i = 0
while True:
    if rng.random() < 0.75:
        size = int(2 ** rng.uniform(10, 16))
    else:
        size = int(2 ** rng.uniform(16, 24))
    if written + size > to_write:
        break
    keep = kept + size <= to_keep and kept < to_keep * (written + size) / to_write
    rel = os.path.join(rng.choice(dirs), "f%05d" % i)
    i += 1
    with open(os.path.join(mnt, rel), "wb") as f:
        left = size
        while left:
            n = min(left, MIB)
            f.write(kept_data(n) if keep else rnd.read(n))
            left -= n
    written += size
    if keep:
        kept += size
    else:
        stale.append(rel)
if mode == "ext4":
    os.sync()
    for rel in stale:
        os.unlink(os.path.join(mnt, rel))
    os.sync()
else:
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    subprocess.run(["mcopy", "-s", "-Q", "-i", fat] +
                   [os.path.join(mnt, d) for d in dirs] + ["::/"], check=True, env=env)
    for k in range(0, len(stale), 200):
        subprocess.run(["mdel", "-i", fat] + ["::/" + r for r in stale[k:k + 200]],
                       check=True, env=env)
    shutil.rmtree(mnt)
total, used = usage()
print("%s: %d files, %.0f MiB written, %.0f MiB kept, %.0f of %.0f MiB in use"
      % (mode, i, written / MIB, kept / MIB, used / MIB, total / MIB))
PY
)

# The 1 GiB dump: $BENCH_DIR/fs-1g.img.
make_dump() {
	local img=$BENCH_DIR/fs-1g.img stamp=$BENCH_DIR/fs-1g.params
	local params="v1 1G p1=$P1_START+$P1_SIZE blob=$BLOB_OFF+$BLOB_LEN fill=0.85 keep=0.25"
	DUMP=$img
	[[ -f $img && $(cat "$stamp" 2>/dev/null) == "$params" ]] && return 0
	need_root "$img"
	bench_need sfdisk mkfs.vfat mkfs.ext4 losetup mount mcopy mdel
	bench_corpus $((240 * MIB))
	bench_random $((128 * MIB))
	echo "bench: generating $img" >&2
	local t0=$EPOCHREALTIME work=$BENCH_TMP/dump.work fat=$BENCH_TMP/p1.img p2_bytes
	rm -f "$stamp" "$img"
	truncate -s $((1024 * MIB)) "$work"
	gpt_script | sfdisk -q "$work" || bench_die "sfdisk failed"
	dd if="$BENCH_RANDOM" of="$work" bs=4096 count=$((BLOB_LEN / 4096)) \
		seek=$((BLOB_OFF / 4096)) conv=notrunc status=none
	p2_bytes=$(sfdisk -J "$work" | python3 -c \
		'import json,sys; print(json.load(sys.stdin)["partitiontable"]["partitions"][1]["size"] * 512)')
	# p1, made and filled in a file of its own, copied in place.
	truncate -s $((P1_SIZE * SECT)) "$fat"
	mkfs.vfat -F 32 -h "$P1_START" -i 5c0d2e5a -n BOOT "$fat" >/dev/null ||
		bench_die "mkfs.vfat failed"
	python3 -c "$FILL_PY" fat "$fat" "$BENCH_TMP/stage" 1 "$BENCH_CORPUS" "$BENCH_RANDOM" ||
		bench_die "filling the FAT failed"
	dd if="$fat" of="$work" bs=1M seek=$((P1_START * SECT / MIB)) conv=notrunc,sparse \
		status=none || bench_die "dd failed"
	rm -f "$fat"
	fs_loop "$work" $((P2_START * SECT)) "$p2_bytes"
	mkfs.ext4 -q -F -E nodiscard -L root -U 5c0d2e5a-6c2b-4f0b-9c1e-0b3a8c4e0f03 \
		"$LOOP" || bench_die "mkfs.ext4 failed"
	# noinit_itable: no lazy inode-table zeroing racing with the fill.
	fs_mount "$LOOP" "$BENCH_TMP/mnt/root" rw,noinit_itable
	python3 -c "$FILL_PY" ext4 "$BENCH_TMP/mnt/root" 2 "$BENCH_CORPUS" "$BENCH_RANDOM" ||
		bench_die "filling the ext4 failed"
	fs_umount_all
	cp --sparse=never "$work" "$img.tmp" || bench_die "cp failed"
	mv "$img.tmp" "$img"
	rm -f "$work"
	echo "$params" >"$stamp"
	echo "bench: $img made in $(bench_calc 'b - a' a="${t0/,/.}" b="${EPOCHREALTIME/,/.}" | cut -d. -f1) s" >&2
}

# The 64 GiB sparse image: $BENCH_DIR/fs-64g.img. Made without root: the
# FAT in a file of its own, copied in place; mkfs.ext4 -E offset.
make_big() {
	local img=$BENCH_DIR/fs-64g.img stamp=$BENCH_DIR/fs-64g.params
	local p2_sectors=$((60 * 1024 * MIB / SECT))
	local params="v1 64G p2=$P2_START+$p2_sectors lazy_itable_init"
	BIG=$img
	[[ -f $img && $(cat "$stamp" 2>/dev/null) == "$params" ]] && return 0
	bench_need sfdisk mkfs.vfat mkfs.ext4 mcopy
	bench_corpus $((240 * MIB))
	echo "bench: generating $img" >&2
	rm -f "$stamp" "$img"
	local work=$img.tmp fat=$BENCH_TMP/p1.img dir=$BENCH_TMP/root-files
	rm -f "$work"
	truncate -s $((64 * 1024 * MIB)) "$work"
	gpt_script "$p2_sectors" | sfdisk -q "$work" || bench_die "sfdisk failed"
	truncate -s $((P1_SIZE * SECT)) "$fat"
	mkfs.vfat -F 32 -h "$P1_START" -i 5c0d2e5a -n BOOT "$fat" >/dev/null ||
		bench_die "mkfs.vfat failed"
	mkdir -p "$dir/usr/lib" "$dir/etc"
	dd if="$BENCH_CORPUS" of="$dir/kernel" bs=1M count=8 status=none
	dd if="$BENCH_CORPUS" of="$dir/board.dtb" bs=1K skip=$((40 * 1024)) count=64 status=none
	mcopy -i "$fat" "$dir/kernel" "$dir/board.dtb" ::/ || bench_die "mcopy failed"
	dd if="$fat" of="$work" bs=1M seek=$((P1_START * SECT / MIB)) conv=notrunc,sparse \
		status=none || bench_die "dd failed"
	rm -f "$fat" "$dir/board.dtb"
	mv "$dir/kernel" "$dir/boot-kernel"
	dd if="$BENCH_CORPUS" of="$dir/usr/lib/libbig.so" bs=1M skip=8 count=24 status=none
	dd if="$BENCH_CORPUS" of="$dir/etc/config" bs=1K skip=$((32 * 1024)) count=100 status=none
	mkfs.ext4 -q -F -b 4096 -L root -U 5c0d2e5a-6c2b-4f0b-9c1e-0b3a8c4e0f04 \
		-E offset=$((P2_START * SECT)),lazy_itable_init=1,nodiscard \
		-d "$dir" "$work" $((p2_sectors * SECT / 4096)) || bench_die "mkfs.ext4 failed"
	rm -rf "$dir"
	mv "$work" "$img"
	echo "$params" >"$stamp"
}

# truth IMAGE: bytes in use, in TRUTH (total) and TRUTH_PARTS (a legend).
truth() {
	local img=$1 parts ext_off ext_out bc fb bs fat_out data_off clus used
	parts=$(sfdisk -J "$img" | python3 -c '
import json, sys
t = json.load(sys.stdin)["partitiontable"]
assert t["label"] == "gpt" and t.get("sectorsize", 512) == 512
for p in t["partitions"]:
    print(p["start"], p["size"])') || bench_die "sfdisk -J $img failed"
	local -a st=() sz=()
	while read -r a b; do st+=("$a") sz+=("$b"); done <<<"$parts"
	((${#st[@]} >= 2)) || bench_die "$img: expected 2 partitions"
	PART_BYTES=($((sz[0] * SECT)) $((sz[1] * SECT)))
	# ext4 (p2)
	ext_off=$((st[1] * SECT))
	ext_out=$(dumpe2fs -h "$img?offset=$ext_off" 2>/dev/null) ||
		bench_die "dumpe2fs of $img at $ext_off failed"
	bc=$(awk -F: '/^Block count:/ { print $2 + 0 }' <<<"$ext_out")
	fb=$(awk -F: '/^Free blocks:/ { print $2 + 0 }' <<<"$ext_out")
	bs=$(awk -F: '/^Block size:/ { print $2 + 0 }' <<<"$ext_out")
	TRUTH_EXT=$(((bc - fb) * bs))
	# FAT (p1), from a copy of the partition (fsck.fat has no offset).
	dd if="$img" of="$BENCH_TMP/fat.img" bs=$SECT skip="${st[0]}" count="${sz[0]}" \
		status=none conv=sparse || bench_die "dd failed"
	fat_out=$(fsck.fat -n -v "$BENCH_TMP/fat.img") || bench_die "fsck.fat failed: $fat_out"
	rm -f "$BENCH_TMP/fat.img"
	data_off=$(sed -n 's/^Data area starts at byte \([0-9]*\).*/\1/p' <<<"$fat_out")
	clus=$(sed -n 's/^ *\([0-9]*\) bytes per cluster.*/\1/p' <<<"$fat_out")
	used=$(sed -n 's/.* files, \([0-9]*\)\/[0-9]* clusters$/\1/p' <<<"$fat_out")
	[[ -n $data_off && -n $clus && -n $used ]] || bench_die "cannot read fsck.fat -v output"
	TRUTH_FAT=$((data_off + used * clus))
	TRUTH_GPT=$((GPT_SECTORS * SECT))
	# Blobs: non-zero sectors outside the partitions and the GPT.
	TRUTH_BLOB=$(python3 - "$img" "$parts" <<'PY'
import os, sys
img, parts = sys.argv[1], [tuple(map(int, l.split())) for l in sys.argv[2].splitlines()]
S = 512
n = os.path.getsize(img) // S
taken = sorted([(0, 34), (n - 33, n)] + [(a, a + b) for a, b in parts])
gaps, pos = [], 0
for a, b in taken:
    if a > pos:
        gaps.append((pos, a))
    pos = max(pos, b)
if pos < n:
    gaps.append((pos, n))
zero, nz = bytes(S), 0
with open(img, "rb") as f:
    for a, b in gaps:
        # sparse regions read as zeros; skip holes quickly
        s = a
        while s < b:
            try:
                d = os.lseek(f.fileno(), s * S, os.SEEK_DATA) // S
            except OSError:
                break
            if d >= b:
                break
            h = min(b, os.lseek(f.fileno(), d * S, os.SEEK_HOLE) // S)
            f.seek(d * S)
            for i in range(d, h, 2048):
                buf = f.read(min(2048, h - i) * S)
                nz += sum(buf[j:j + S] != zero for j in range(0, len(buf), S))
            s = h
print(nz * S)
PY
	) || bench_die "blob scan failed"
	TRUTH=$((TRUTH_GPT + TRUTH_EXT + TRUTH_FAT + TRUTH_BLOB))
	TRUTH_PARTS="GPT $TRUTH_GPT + FAT $TRUTH_FAT + ext4 $TRUTH_EXT + outside $TRUTH_BLOB"
}

# bmap_info BMAP: BM_BS (block size), BM_BLOCKS (mapped), BM_RANGES.
bmap_info() {
	read -r BM_BS BM_BLOCKS BM_RANGES < <(python3 - "$1" <<'PY'
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
print(int(r.find("BlockSize").text), int(r.find("MappedBlocksCount").text),
      len(r.find("BlockMap").findall("Range")))
PY
	) || bench_die "cannot read $1"
}

# split_mapped BMAP IMAGE PREFIX N TWIN: the bmap's mapped bytes of IMAGE
# into PREFIX.0 .. PREFIX.N-1 (sizes equal to a block), and TWIN, a sparse
# file of IMAGE's size holding them at their offsets.
split_mapped() {
	python3 - "$@" <<'PY' || bench_die "splitting the mapped bytes failed"
import os, sys, xml.etree.ElementTree as ET
bmap, img, prefix, n, twin = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
r = ET.parse(bmap).getroot()
bs = int(r.find("BlockSize").text)
size = os.path.getsize(img)
ranges = []
for el in r.find("BlockMap").findall("Range"):
    a, _, b = el.text.strip().partition("-")
    lo, hi = int(a) * bs, min((int(b or a) + 1) * bs, size)
    ranges.append((lo, hi - lo))
total = sum(l for _, l in ranges)
cuts = [total * k // n // bs * bs for k in range(1, n)] + [total]
src = open(img, "rb")
tw = open(twin, "wb")
tw.truncate(size)
part, done, out = 0, 0, open("%s.0" % prefix, "wb")
for off, ln in ranges:
    src.seek(off)
    tw.seek(off)
    while ln:
        take = min(ln, 8 << 20, cuts[part] - done)
        b = src.read(take)
        out.write(b)
        tw.write(b)
        done += take
        ln -= take
        if done == cuts[part] and part < n - 1:
            part += 1
            out.close()
            out = open("%s.%d" % (prefix, part), "wb")
out.close()
tw.close()
PY
}

# fs_recache FILE...: drop FILE's pages from the page cache and read it
# back with cat, so that the image and the twin are cached alike (by
# readahead, large folios): the dump, written by cp and read in pieces by
# earlier runs or other jobs' memory pressure, otherwise made the same
# reads of it cost ~20 % more CPU than those of the freshly written twin.
fs_recache() {
	python3 - "$@" <<'PY' || true
import os, sys
for p in sys.argv[1:]:
    fd = os.open(p, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
PY
	bench_warm "$@"
}

# Round-robin timing. fs_add LABEL OUT CMD... registers a command writing
# OUT (may be empty); fs_run N runs one untimed round then N timed rounds,
# every command once per round, OUT removed (untimed) before each run and
# kept after the last. Results per label: MED[l],
# MIN[l], MAX[l] (s), RSS[l] (KiB, largest), FAILED[l]=1 on failure.
FS_LABELS=()
declare -A FS_CMD FS_OUT MED MIN MAX RSS FAILED TIMES
fs_add() {
	local label=$1
	FS_OUT[$label]=$2
	shift 2
	FS_LABELS+=("$label")
	FS_CMD[$label]=$(printf '%q ' "$@")
	TIMES[$label]=
	RSS[$label]=0
}
fs_run() {
	local n=$1 round l t0 t1 s rss
	for ((round = 0; round <= n; round++)); do
		for l in "${FS_LABELS[@]}"; do
			[[ -z ${FAILED[$l]:-} ]] || continue
			[[ -z ${FS_OUT[$l]} ]] || rm -f "${FS_OUT[$l]}"
			t0=$EPOCHREALTIME
			if ! eval "/usr/bin/time -f '%e %M' -o \"\$BENCH_TMP/time\" ${FS_CMD[$l]}" \
				>/dev/null 2>"$BENCH_TMP/stderr"; then
				echo "bench: failed: ${FS_CMD[$l]}" >&2
				tail -n 20 "$BENCH_TMP/stderr" >&2
				FAILED[$l]=1
				continue
			fi
			t1=$EPOCHREALTIME
			((round > 0)) || continue
			s=$(bench_calc 'b - a' a="${t0/,/.}" b="${t1/,/.}")
			TIMES[$l]+="$s "
			read -r _ rss <"$BENCH_TMP/time"
			if ((rss > RSS[$l])); then RSS[$l]=$rss; fi
		done
	done
	for l in "${FS_LABELS[@]}"; do
		[[ -z ${FAILED[$l]:-} ]] || continue
		read -r "MED[$l]" "MIN[$l]" "MAX[$l]" < <(tr ' ' '\n' <<<"${TIMES[$l]}" |
			grep . | sort -g | awk '{ v[NR] = $1 } END {
				m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
				printf "%.6f %.6f %.6f\n", m, v[1], v[NR] }')
	done
	FS_LABELS=()
}

# fs_paired_ratio A B: the median over the rounds of A's time / B's (they
# ran one after the other in each round, so a burst of load from other
# jobs tends to hit both).
fs_paired_ratio() {
	paste -d' ' <(tr ' ' '\n' <<<"${TIMES[$1]}" | grep .) \
		<(tr ' ' '\n' <<<"${TIMES[$2]}" | grep .) |
		awk '{ print $1 / $2 }' | sort -g | awk '{ v[NR] = $1 } END {
			m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "%.6f\n", m }'
}

# Table rows: fs_row IMAGE MODE LABEL BMAP TRUTH (BMAP, TRUTH may be empty).
ROWS=()
fs_row() {
	local image=$1 mode=$2 l=$3 bmap=$4 truth=$5 mapped=- ranges=- mib=- ratio=- t=n/a spread='' rss=-
	if [[ -n $bmap && -s $bmap ]]; then
		bmap_info "$bmap"
		mapped=$BM_BLOCKS ranges=$BM_RANGES
		mib=$(bench_calc 'b * s / m' b="$BM_BLOCKS" s="$BM_BS" m="$MIB")
		mib=$(printf '%.1f' "$mib")
		[[ -z $truth ]] || ratio=$(printf '%.3f' "$(bench_calc 'b * s / t' b="$BM_BLOCKS" s="$BM_BS" t="$truth")")
	fi
	if [[ -n ${MED[$l]:-} ]]; then
		t=$(printf '%.3f' "${MED[$l]}")
		spread=$(printf '%.3f-%.3f' "${MIN[$l]}" "${MAX[$l]}")
		# More than 25 % between the fastest and slowest run: noisy.
		if awk -v a="${MIN[$l]}" -v b="${MAX[$l]}" -v m="${MED[$l]}" \
			'BEGIN { exit !(b - a > 0.25 * m) }'; then
			spread+="*"
			NOISY=1
		fi
		rss=$(printf '%.1f' "$(bench_calc 'r / 1024' r="${RSS[$l]}")")
	fi
	ROWS+=("$(printf '%-7s %-38s %8s %7s %8s %7s %8s %-12s %7s' "$image" "$mode" \
		"$mapped" "$ranges" "$mib" "$ratio" "$t" "$spread" "$rss")")
}

CHECKS=() FAILS=0 NAS=0 NOISY=0
# fs_target LABEL VALUE LIMIT UNIT (VALUE <= LIMIT passes)
fs_target() {
	local label=$1 value=$2 limit=$3 unit=${4:-} verdict
	if [[ -z $value ]]; then
		CHECKS+=("$(printf '%-52s %9s   (target <= %s%s)  n/a' "$label" n/a "$limit" "$unit")")
		NAS=1
		return 0
	fi
	if awk -v v="$value" -v l="$limit" 'BEGIN { exit !(v <= l) }'; then
		verdict=PASS
	else
		verdict=FAIL
		FAILS=1
	fi
	CHECKS+=("$(printf '%-52s %9.3f%s (target <= %s%s)  %s' "$label" "$value" "$unit" \
		"$limit" "$unit" "$verdict")")
}

ranges_of() {
	tr -d ' \t' <"$1" | grep -o '<Range[^<]*</Range>' || true
}

# restore_check BMAP: copies the 1 GiB dump with BMAP into an empty file
# and says in RESTORE whether both filesystems come back: fsck.fat -n and e2fsck -fn
# clean, and every file the same (FAT: extracted with mcopy -s; ext4: both
# mounted read-only through loop devices, needs root).
restore_check() {
	local out=$B/restored.img f i t
	if ! "$BMAPTK" -q copy --bmap "$1" "$DUMP" "$out" 2>"$B/copy.err"; then
		RESTORE="NO (bmaptk copy failed: $(head -n 1 "$B/copy.err"))"
		return
	fi
	if ! e2fsck -fn "$out?offset=$((P2_START * SECT))" >"$B/e2fsck.out" 2>&1; then
		RESTORE="NO (e2fsck -fn: $(grep -v '^e2fsck ' "$B/e2fsck.out" | head -n 1))"
		return
	fi
	i=0
	for f in "$DUMP" "$out"; do
		dd if="$f" of="$B/fat$i.img" bs=$SECT skip=$P1_START count="$((dump_parts[0] / SECT))" \
			status=none conv=sparse
		if ! fsck.fat -n "$B/fat$i.img" >"$B/fsck.out" 2>&1; then
			RESTORE="NO (fsck.fat -n of $f: $(tail -n 1 "$B/fsck.out"))"
			return
		fi
		mkdir -p "$B/m$i/boot"
		MTOOLS_SKIP_CHECK=1 mcopy -s -n -m -i "$B/fat$i.img" '::/*' "$B/m$i/boot/" ||
			{ RESTORE="NO (mcopy from the FAT of $f failed)" && return; }
		rm -f "$B/fat$i.img"
		i=$((i + 1))
	done
	if [[ $(id -u) == 0 ]]; then
		i=0
		for f in "$DUMP" "$out"; do
			fs_loop "$f" $((P2_START * SECT)) "${dump_parts[1]}" -r
			fs_mount "$LOOP" "$B/m$i/root" ro,noload
			i=$((i + 1))
		done
	fi
	if diff -r "$B/m0" "$B/m1" >"$B/diff.out" 2>&1; then
		if [[ $(id -u) == 0 ]]; then
			RESTORE="yes (fsck clean, all files identical)"
		else
			RESTORE="fsck clean, FAT files identical (ext4 files not compared: needs root)"
		fi
	else
		RESTORE="NO (files differ: $(head -n 1 "$B/diff.out"))"
	fi
	fs_umount_all
	rm -rf "$out" "$B/m0" "$B/m1"
}

# --- main -----------------------------------------------------------------

bench_need python3 openssl sfdisk dumpe2fs e2fsck fsck.fat mcopy diff
have_fs='' help=$("$BMAPTK" create --help 2>&1 || true)
grep -qE -- '--fs([^-a-z]|$)' <<<"$help" && have_fs=yes
bench_header "create --fs: 1 GiB GPT+FAT32+ext4 dump (not sparse, ~25 % in use, ~60 % stale)${big:+ and a 64 GiB sparse one}, median of $runs"
[[ -n $have_fs ]] || echo "NOTE: $BMAPTK create has no --fs; its rows and targets are n/a"
make_dump
[[ -z $big ]] || make_big
truth "$DUMP"
dump_truth=$TRUTH
dump_parts=("${PART_BYTES[@]}")
echo "1 GiB dump: truth $TRUTH bytes ($(bench_calc 't / m' t="$TRUTH" m="$MIB" | cut -c1-6) MiB) = $TRUTH_PARTS"
echo "  allocated: $(du -B1 "$DUMP" | cut -f1) of $(stat -c %s "$DUMP") bytes"
if [[ -n $big ]]; then
	truth "$BIG"
	big_truth=$TRUTH
	echo "64 GiB image: truth $TRUTH bytes ($(bench_calc 't / m' t="$TRUTH" m="$MIB" | cut -c1-7) MiB) = $TRUTH_PARTS"
	echo "  allocated: $(du -B1 "$BIG" | cut -f1) of $(stat -c %s "$BIG") bytes"
fi

B=$BENCH_TMP
# The yardstick's input needs the --fs ranges: one untimed --fs run first.
yard=()
if [[ -n $have_fs ]]; then
	if "$BMAPTK" -q create --fs "$DUMP" -o "$B/probe.fs.bmap" 2>"$B/probe.err"; then
		split_mapped "$B/probe.fs.bmap" "$DUMP" "$B/part" "$BENCH_CORES" "$B/twin.img"
		for ((i = 0; i < BENCH_CORES; i++)); do yard+=("$B/part.$i"); done
	else
		echo "bench: bmaptk create --fs failed: $(cat "$B/probe.err")" >&2
		have_fs=
	fi
fi
fs_recache "$DUMP" ${yard[@]+"${yard[@]}"} ${yard[@]+"$B/twin.img"}

fs_add plain "$B/plain.bmap" "$BMAPTK" create "$DUMP" -o "$B/plain.bmap"
fs_add scanz "$B/scanz.bmap" "$BMAPTK" create --scan-zeros "$DUMP" -o "$B/scanz.bmap"
if [[ -n $have_fs ]]; then
	fs_add fs "$B/fs.bmap" "$BMAPTK" create --fs "$DUMP" -o "$B/fs.bmap"
	fs_add twin "$B/twin.bmap" "$BMAPTK" create "$B/twin.img" -o "$B/twin.bmap"
	fs_add fsz "$B/fsz.bmap" "$BMAPTK" create --fs --scan-zeros "$DUMP" -o "$B/fsz.bmap"
	# shellcheck disable=SC2016
	fs_add ossl "" sh -c 'for f; do openssl dgst -sha256 "$f" & done; wait' sh "${yard[@]}"
fi
fs_run "$runs"
fs_row "1 GiB" "bmaptk create (FIEMAP)" plain "$B/plain.bmap" "$dump_truth"
fs_row "1 GiB" "bmaptk create --scan-zeros" scanz "$B/scanz.bmap" "$dump_truth"
fs_row "1 GiB" "bmaptk create --fs" fs "${have_fs:+$B/fs.bmap}" "$dump_truth"
fs_row "1 GiB" "yardstick: create of the --fs twin" twin "${have_fs:+$B/twin.bmap}" "$dump_truth"
fs_row "1 GiB" "bmaptk create --fs --scan-zeros" fsz "${have_fs:+$B/fsz.bmap}" "$dump_truth"
fs_row "1 GiB" "  (openssl x$BENCH_CORES on --fs bytes)" ossl "" ""

fs_ratio='' time_ratio='' rss_dump='' rss_big=''
if [[ -n $have_fs && -n ${MED[fs]:-} ]]; then
	bmap_info "$B/fs.bmap"
	fs_ratio=$(bench_calc 'b * s / t' b="$BM_BLOCKS" s="$BM_BS" t="$dump_truth")
	rss_dump=$(bench_calc 'r / 1024' r="${RSS[fs]}")
	[[ -z ${MED[twin]:-} ]] || time_ratio=$(fs_paired_ratio fs twin)
fi

if [[ -n $big ]]; then
	# No cat of it to warm the cache: that would read 64 GiB of holes. The
	# untimed warm-up round reads what bmaptk reads.
	fs_add bigplain "$B/bigplain.bmap" "$BMAPTK" create "$BIG" -o "$B/bigplain.bmap"
	[[ -z $have_fs ]] || fs_add bigfs "$B/bigfs.bmap" "$BMAPTK" create --fs "$BIG" -o "$B/bigfs.bmap"
	fs_run "$runs"
	fs_row "64 GiB" "bmaptk create (FIEMAP)" bigplain "$B/bigplain.bmap" "$big_truth"
	fs_row "64 GiB" "bmaptk create --fs" bigfs "${have_fs:+$B/bigfs.bmap}" "$big_truth"
	[[ -n ${MED[bigfs]:-} ]] && rss_big=$(bench_calc 'r / 1024' r="${RSS[bigfs]}")
fi

# Checks (untimed).
twin_agree=n/a restore=n/a
if [[ -n $have_fs && -s $B/fs.bmap && -s $B/twin.bmap ]]; then
	if cmp -s <(ranges_of "$B/fs.bmap") <(ranges_of "$B/twin.bmap"); then
		twin_agree=yes
	else
		twin_agree="NO (ranges or checksums differ)"
	fi
fi
if [[ -n $have_fs && -s $B/fs.bmap ]]; then
	restore_check "$B/fs.bmap"
	restore=$RESTORE
fi

fs_target "1: mapped(--fs) / truth, 1 GiB dump" "$fs_ratio" 1.02 x
fs_target "2: time(--fs) / create of its twin (paired)" "$time_ratio" 1.2 x
fs_target "3: peak RSS of --fs, 1 GiB dump" "$rss_dump" 32 " MiB"
[[ -z $big ]] || fs_target "3: peak RSS of --fs, 64 GiB sparse image" "$rss_big" 32 " MiB"
CHECKS+=("--fs bmap = create of its sparse twin (ranges, checksums): $twin_agree")
CHECKS+=("copy with the --fs bmap restores the filesystems: $restore")

echo
printf '%-7s %-38s %8s %7s %8s %7s %8s %-12s %7s\n' image command blocks ranges \
	"MiB" "x truth" "median s" "min-max" "RSS MiB"
printf '%s\n' "${ROWS[@]}"
((!NOISY)) || echo "* runs more than 25 % apart: other jobs on the machine? raise -n"
echo
printf '%s\n' "${CHECKS[@]}"
if ((FAILS || NAS)); then
	if [[ ${BENCH_STRICT:-0} == 1 ]]; then
		exit 1
	fi
	echo "(a target failed or is n/a; exit status 0 without BENCH_STRICT=1)"
fi
exit 0
