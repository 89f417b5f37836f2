# No destination may be what the run reads: the image itself (by name, by
# a symlink, by a hard link, on stdin), the bmap (given or discovered — the
# habit `copy img.xz img.bmap /dev/sdX`), the bmap's signature, another
# DEST, or — on a loop device — the device the image is backed by. Each is
# refused with exit 2 before anything is opened for writing, and the
# inputs stay byte for byte as they were. `create -o` must not replace the
# image or a file that is not a bmap.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd cmp sha256sum

e2e_ramdir R
IMG=$R/disk.img
fault_image "$IMG" 4242
cp "$IMG" "$R/pristine"
cp "$IMG.bmap" "$R/pristine.bmap"
ln -s disk.img "$R/sym"
ln "$IMG" "$R/hard"

# refused WHAT ARG...: bmaptk exits 2 naming "refusing", and the image and
# its bmap are unchanged.
refused() {
	local what=$1
	shift
	bm 2 "$@"
	assert_contains "$RUN_ERR" "refusing" "$what"
	assert_not_contains "$RUN_ERR" "copied" "$what"
	assert_same_file "$R/pristine" "$IMG" "$what: the image"
	assert_same_file "$R/pristine.bmap" "$IMG.bmap" "$what: the bmap"
}

case_ "copy --nobmap img img" refused "same name" copy --nobmap "$IMG" "$IMG"
case_ "copy img img (bmap discovered)" refused "same name" copy "$IMG" "$IMG"
case_ "copy img symlink-to-img" refused "symlink" copy "$IMG" "$R/sym"
case_ "copy img hard-link-of-img" refused "hard link" copy --nobmap "$IMG" "$R/hard"
case_ "copy img img.bmap dev (operand too many)" eval '
	refused "discovered bmap as DEST" copy "$IMG" "$IMG.bmap" "$R/out"
	assert_no_file "$R/out" "the other DEST"'
case_ "copy --bmap B img B" refused "given bmap as DEST" \
	copy --bmap "$IMG.bmap" "$IMG" "$IMG.bmap"
case_ "copy - img < img" eval '
	run "$BMAPTK" copy --bmap "$IMG.bmap" - "$IMG" <"$IMG"
	assert_rc 2 "stdin is the image"
	assert_same_file "$R/pristine" "$IMG" "stdin: the image"'
# signed_bmap: a copy of the bmap, signed (detached) by a fresh key in a
# GnuPG home of the test's own.
signed_bmap() {
	export GNUPGHOME=$E2E_TMP/gnupg
	mkdir -m 700 "$GNUPGHOME"
	on_exit "gpgconf --kill all"
	gpg --batch --passphrase '' --quick-gen-key signer@example.invalid \
		default default never >/dev/null 2>&1 || return 1
	cp "$IMG.bmap" "$R/s.bmap"
	gpg --batch --yes --armor --detach-sign -o "$R/s.bmap.asc" \
		"$R/s.bmap" 2>/dev/null
}
if command -v gpg >/dev/null && signed_bmap; then
	case_ "signature as DEST" eval '
		cp "$R/s.bmap.asc" "$R/s.asc.pristine"
		refused "signature as DEST" copy --bmap "$R/s.bmap" "$IMG" \
			"$R/s.bmap.asc"
		assert_same_file "$R/s.asc.pristine" "$R/s.bmap.asc" "the signature"'
else
	skip_case "gpg cannot make a signing key here"
fi
case_ "the same DEST twice" eval '
	bm 2 copy "$IMG" "$R/twice" "$R/twice"
	assert_contains "$RUN_ERR" "same destination"
	assert_no_file "$R/twice"'

case_ "create -o IMAGE IMAGE" refused "create over the image" \
	create -o "$IMG" "$IMG"
case_ "create -o IMAGE IMAGE.bmap" eval '
	bm 2 create -o "$IMG" "$IMG.bmap"
	assert_contains "$RUN_ERR" "not a bmap"
	assert_same_file "$R/pristine" "$IMG" "the image"'
case_ "create -o over an old bmap still works" eval '
	cp "$IMG.bmap" "$R/old.bmap"
	bm 0 create -o "$R/old.bmap" "$IMG"'

if [ "$(id -u)" = 0 ] && command -v losetup >/dev/null &&
	DEV=$(losetup --find --show "$IMG" 2>/dev/null); then
	on_exit "losetup -d '$DEV'"
	case_ "copy img /dev/loopN backed by img" refused "loop backed by the image" \
		copy "$IMG" "$DEV"
	case_ "copy /dev/loopN /dev/loopN" refused "device onto itself" \
		copy --bmap "$IMG.bmap" "$DEV" "$DEV"
else
	skip_case "loop device cases need root and a free loop device"
fi
cases_done "no destination can be an input"
