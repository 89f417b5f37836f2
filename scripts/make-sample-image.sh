#!/usr/bin/env bash
# Make a sparse sample disk image without root or loop devices:
#
#   scripts/make-sample-image.sh [--mbr] OUT SIZE_MIB
#
# Layout: a GPT (or MBR with --mbr) partition table, partition 1 a small FAT
# filesystem with a few files, partition 2 an ext4 filesystem holding a few
# tens of MiB of text-like, binary and random files. The rest stays holes,
# like a freshly built rootfs image. Layout and file data are deterministic;
# the copied binaries come from this machine's /usr/bin, and e2fsprogs 1.47.0
# stamps inodes with the current time, so images are not byte-identical.
set -euo pipefail

PATH=$PATH:/usr/sbin:/sbin # mkfs.* and sfdisk live there on Debian

die() {
	echo "make-sample-image: $*" >&2
	exit 1
}

usage() {
	echo "usage: $0 [--mbr] OUT SIZE_MIB   (SIZE_MIB >= 64)" >&2
	exit 2
}

label=gpt
if [[ ${1:-} == --mbr ]]; then
	label=dos
	shift
fi
(($# == 2)) || usage
out=$1
size_mib=$2
if ! [[ $size_mib =~ ^[0-9]+$ ]] || ((size_mib < 64)); then
	usage
fi

for tool in truncate sfdisk mkfs.vfat mcopy mkfs.ext4 openssl; do
	command -v "$tool" >/dev/null ||
		die "$tool not found (run scripts/deps.sh demo)"
done

# Deterministic pseudo-random bytes: AES-CTR of zeros under a fixed key.
# $1 = bytes, $2 = seed (any word).
prng() {
	local key
	key=$(printf '%s' "$2" | openssl dgst -sha256 -r | cut -c1-32)
	head -c "$1" /dev/zero |
		openssl enc -aes-128-ctr -nosalt -K "$key" \
		-iv 00000000000000000000000000000000
}

# Compressible text: numbered log-like lines. $1 = bytes, $2 = seed.
text() {
	awk -v want="$1" -v s="$2" 'BEGIN {
		for (i = 1; want > 0; i++) {
			l = sprintf("%s %08d service[%d]: event %s state=%s " \
				    "path=/var/lib/%s/%d\n", s, i, i % 977,
				    (i % 7 ? "ok" : "retry"),
				    (i % 3 ? "up" : "down"), s, i % 131)
			if (length(l) > want)
				l = substr(l, 1, want)
			printf "%s", l
			want -= length(l)
		}
	}'
}

# Binary-like data: system executables, sorted so the choice is stable.
binaries() {
	local dest=$1 budget=$2 f sz
	mkdir -p "$dest"
	while IFS= read -r f; do
		sz=$(stat -c %s "$f")
		((sz > 0 && sz <= budget)) || continue
		cp "$f" "$dest/"
		budget=$((budget - sz))
		((budget > 65536)) || break
	done < <(find /usr/bin -maxdepth 1 -type f -size +16k | LC_ALL=C sort)
}

# Sizes in MiB. Partition 1 starts at 1 MiB; GPT keeps its backup in the last
# MiB, so the ext4 partition ends 1 MiB before the image end.
fat_mib=$((size_mib / 8))
((fat_mib < 16)) && fat_mib=16
((fat_mib > 64)) && fat_mib=64
ext_start_mib=$((1 + fat_mib))
ext_mib=$((size_mib - ext_start_mib - 1))
data_mib=$((ext_mib / 3))
((data_mib > 48)) && data_mib=48
((data_mib >= 4)) || die "image too small"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sample-image.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# 1. Files for the ext4 filesystem: half text, a quarter binaries, a quarter
# random, in a small directory tree.
root=$tmp/root
mkdir -p "$root/etc" "$root/var/log" "$root/usr/bin" "$root/srv/data"
mib=$((1024 * 1024))
text_bytes=$((data_mib * mib / 2))
for i in 1 2 3 4; do
	text $((text_bytes / 4)) "log$i" >"$root/var/log/messages.$i"
done
text 20000 etc >"$root/etc/config"
binaries "$root/usr/bin" $((data_mib * mib / 4))
rand_bytes=$((data_mib * mib / 4))
for i in 1 2 3; do
	prng $((rand_bytes / 3)) "rand$i" >"$root/srv/data/blob$i.bin"
done

find "$root" -exec touch -h -d @1700000000 {} +

# 2. The image file and its partition table.
rm -f "$out"
truncate -s "${size_mib}M" "$out"
sect_per_mib=2048
# Fixed identifiers so two runs give the same table.
if [[ $label == gpt ]]; then
	ids=("label-id: 6B6D6170-746B-4000-8000-000000000000"
		", uuid=6B6D6170-746B-4000-8000-000000000001"
		", uuid=6B6D6170-746B-4000-8000-000000000002")
	fat_type=uefi
else
	ids=("label-id: 0x626d6170" "" "")
	fat_type=ef
fi
{
	echo "label: $label"
	echo "${ids[0]}"
	echo "start=$sect_per_mib, size=$((fat_mib * sect_per_mib)), type=$fat_type${ids[1]}"
	echo "start=$((ext_start_mib * sect_per_mib)), size=$((ext_mib * sect_per_mib)), type=linux${ids[2]}"
} | sfdisk --quiet "$out" >/dev/null || die "sfdisk failed on $out"

# 3. FAT in partition 1 (offset in 512-byte sectors, size in KiB).
# mkfs.vfat warns that the block count differs from the file's; show its
# output only when it fails.
if ! log=$(mkfs.vfat --invariant -F 16 --offset $sect_per_mib -n BOOT \
	"$out" $((fat_mib * 1024)) 2>&1); then
	echo "$log" >&2
	die "mkfs.vfat failed on $out"
fi
text 100000 boot >"$tmp/boot.txt"
prng 300000 boot >"$tmp/boot.bin"
touch -h -d @1700000000 "$tmp/boot.txt" "$tmp/boot.bin"
MTOOLS_SKIP_CHECK=1 mcopy -m -i "$out@@$((1 * mib))" "$tmp/boot.txt" \
	"$tmp/boot.bin" ::/ || die "mcopy failed on $out"

# 4. ext4 in partition 2, populated from the directory; lazy init keeps the
# inode tables and journal as holes.
E2FSPROGS_FAKE_TIME=1700000000 SOURCE_DATE_EPOCH=1700000000 \
mkfs.ext4 -q -F -L rootfs -b 4096 -d "$root" \
	-U 6b6d6170-746b-4000-8000-000000000003 \
	-E "offset=$((ext_start_mib * mib)),lazy_itable_init=1,lazy_journal_init=1,nodiscard,hash_seed=6b6d6170-746b-4000-8000-000000000004" \
	"$out" "$((ext_mib * 1024))k" || die "mkfs.ext4 failed on $out"

# 5. The result must stay sparse.
apparent=$(stat -c %s "$out")
alloc=$(($(stat -c %b "$out") * $(stat -c %B "$out")))
((apparent == size_mib * mib)) || die "$out has size $apparent, not ${size_mib} MiB"
((alloc * 2 < apparent)) || die "$out is not sparse ($alloc of $apparent bytes allocated)"
printf 'make-sample-image: %s: size %d MiB, allocated %.1f MiB (%s, FAT %d MiB + ext4 %d MiB, %d MiB of files)\n' \
	"$out" "$size_mib" "$(awk -v a="$alloc" "BEGIN { print a / 1048576 }")" \
	"$label" "$fat_mib" "$ext_mib" "$data_mib"
