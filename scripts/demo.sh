#!/usr/bin/env bash
# Build bmaptk and show it working on a generated sample image:
#
#   scripts/demo.sh
#
# Installs the missing packages it uses (scripts/deps.sh demo: the build's,
# and sfdisk, mkfs.vfat, mcopy, mkfs.ext4, openssl, zstd), builds into
# build/, makes a 512 MiB sparse disk image, creates its bmap, then copies a
# zstd-compressed copy of it with the bmap and checks the result byte for byte.
# BMAPTK_DEMO_MIB sets the image size.
set -euo pipefail

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
repo=$PWD
bmaptk=$repo/build/bmaptk
size_mib=${BMAPTK_DEMO_MIB:-512}

step=0
heading() {
	step=$((step + 1))
	printf '\n==== %d. %s ====\n' "$step" "$*"
}

# Run a command after showing it.
run() {
	printf '$ %s\n' "$*"
	"$@"
}

fail() {
	echo "demo.sh: FAILED: $*" >&2
	exit 1
}

heading "dependencies"
scripts/deps.sh demo || fail "missing packages (see above)"

heading "build (build/, RelWithDebInfo)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null ||
	fail "cmake configure failed"
make -C build --no-print-directory -j"$(nproc)" ||
	fail "build failed"
run "$bmaptk" --version || fail "bmaptk --version failed"

# A real filesystem (not tmpfs) so the image stays sparse with FIEMAP.
work=$(mktemp -d "${TMPDIR:-/var/tmp}/bmaptk-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
img=$work/sample.img

heading "make a ${size_mib} MiB sparse sample image (scripts/make-sample-image.sh)"
scripts/make-sample-image.sh "$img" "$size_mib" || fail "image generation failed"
# Tools that need the mapping to be current (du, FIEMAP) see it after a sync.
sync "$img"
du -h --apparent-size "$img" | sed 's/^/apparent: /'
du -h "$img" | sed 's/^/allocated: /'

heading "bmaptk create"
run "$bmaptk" create "$img" -o "$img.bmap" || fail "bmaptk create failed"
echo "--- head of $img.bmap:"
head -n 30 "$img.bmap"
echo "--- bmap summary:"
printf 'image size: %s bytes, block size %s, %s of %s blocks mapped in %s ranges\n' \
	"$(sed -n 's:.*<ImageSize> *\([0-9]*\) *</ImageSize>.*:\1:p' "$img.bmap")" \
	"$(sed -n 's:.*<BlockSize> *\([0-9]*\) *</BlockSize>.*:\1:p' "$img.bmap")" \
	"$(sed -n 's:.*<MappedBlocksCount> *\([0-9]*\) *</MappedBlocksCount>.*:\1:p' "$img.bmap")" \
	"$(sed -n 's:.*<BlocksCount> *\([0-9]*\) *</BlocksCount>.*:\1:p' "$img.bmap")" \
	"$(grep -c '<Range' "$img.bmap")"

if ! "$bmaptk" copy --help >/dev/null 2>&1; then
	heading "bmaptk copy"
	echo "bmaptk copy is not available in this build yet; stopping here."
	echo "demo.sh: OK (create only)"
	exit 0
fi

heading "compress the image with zstd"
run zstd -q -T0 -f "$img" -o "$img.zst" || fail "zstd failed"
du -h "$img.zst"

heading "bmaptk copy the compressed image with the bmap"
out=$work/out.img
run "$bmaptk" copy --bmap "$img.bmap" "$img.zst" "$out" ||
	fail "bmaptk copy failed"

heading "compare"
run cmp "$img" "$out" || fail "the copy differs from the image"
echo "identical"
sync "$out"
du -h --apparent-size "$img" "$out" | sed 's/^/apparent:  /'
du -h "$img" "$out" | sed 's/^/allocated: /'

echo
echo "demo.sh: OK"
