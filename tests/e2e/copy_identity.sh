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

# file:// spellings curl takes for the same file.
for u in "file://localhost$IMG" "file://127.0.0.1$IMG" "FILE://$IMG" \
	"file://${IMG%/*}/%64isk.img" "file://$IMG?x" "file://$IMG#x"; do
	case_ "copy $u img" refused "$u" copy --bmap "$IMG.bmap" "$u" "$IMG"
done
case_ "the bmap by a file:// URL as DEST" refused "bmap URL" \
	copy --bmap "file://localhost$IMG.bmap" "$IMG" "$IMG.bmap"

case_ "DEST - and DEST URL" eval '
	bm 2 copy "$IMG" -
	assert_contains "$RUN_ERR" "not a destination"
	assert_no_file "$R/-" "a file named -"
	bm 2 copy "$IMG" "http://user:s3cret@127.0.0.1:9/x"
	assert_not_contains "$RUN_ERR" "s3cret" "DEST URL message"'
case_ "out and ./out not made yet" eval '
	cd "$R" && bm 2 copy "$IMG" twice2 ./twice2
	assert_contains "$RUN_ERR" "same destination"
	assert_no_file "$R/twice2"'
case_ "create -o another XML file" eval '
	printf "<?xml version=\"1.0\"?>\n<config>keep</config>\n" >"$R/settings.xml"
	cp "$R/settings.xml" "$R/settings.pristine"
	bm 2 create -o "$R/settings.xml" "$IMG"
	assert_contains "$RUN_ERR" "not a bmap"
	assert_same_file "$R/settings.pristine" "$R/settings.xml"'

# DEST swapped for a symlink to the image after it was checked: the sink
# checks what it opened. A full stderr pipe stalls bmaptk between the check
# and the open, at its first message.
case_ "DEST swapped for a symlink to the image" eval '
	rm -f "$R/swapped"
	"$PYTHON" - "$BMAPTK" "$IMG" "$R/swapped" >"$E2E_TMP/swap.out" 2>&1 <<"PY"
import fcntl, os, subprocess, sys, time
bmaptk, img, dest = sys.argv[1:]
r, w = os.pipe()
fcntl.fcntl(w, 1031, 4096)  # F_SETPIPE_SZ
os.write(w, b"x" * fcntl.fcntl(w, 1032))  # fill it (F_GETPIPE_SZ)
p = subprocess.Popen([bmaptk, "copy", "--bmap", img + ".bmap", img, dest],
                     stderr=w)
os.close(w)
time.sleep(0.5)
os.symlink(img, dest)
out = b""
while True:
    b = os.read(r, 65536)
    if not b:
        break
    out += b
p.wait()
sys.stdout.write(out.decode(errors="replace").lstrip("x"))
sys.exit(p.returncode)
PY
	rc=$?
	assert_eq 2 "$rc" "exit of the swapped copy: $(cat "$E2E_TMP/swap.out")"
	assert_contains "$(cat "$E2E_TMP/swap.out")" "refusing to write here"
	assert_same_file "$R/pristine" "$IMG" "the image after the swap"
	rm -f "$R/swapped"'

case_ "interrupted while a FIFO image waits for its writer" eval '
	rm -f "$R/fifo"; mkfifo "$R/fifo"
	"$BMAPTK" copy --bmap "$IMG.bmap" "$R/fifo" "$R/o" 2>"$E2E_TMP/f.err" &
	pid=$!; sleep 0.5; kill -INT $pid; wait $pid; rc=$?
	assert_eq 130 "$rc" "exit: $(cat "$E2E_TMP/f.err")"
	assert_contains "$(cat "$E2E_TMP/f.err")" "interrupted"
	"$BMAPTK" create "$IMG" -o "$R/fifo" 2>"$E2E_TMP/f.err" &
	pid=$!; sleep 0.5; kill -TERM $pid; wait $pid; rc=$?
	assert_eq 130 "$rc" "create -o FIFO: $(cat "$E2E_TMP/f.err")"'

if [ "$(id -u)" != 0 ] || ! command -v losetup >/dev/null; then
	skip_case "loop device cases need root"
elif e2e_losetup DEV "$IMG" && e2e_losetup DEV2 "$IMG" &&
	e2e_losetup DEVOFF -o 4096 "$IMG"; then
	case_ "copy img /dev/loopN backed by img" refused "loop backed by the image" \
		copy "$IMG" "$DEV"
	case_ "copy /dev/loopN /dev/loopN" refused "device onto itself" \
		copy --bmap "$IMG.bmap" "$DEV" "$DEV"
	case_ "copy /dev/loopN img (its backing file)" refused "the backing file" \
		copy --bmap "$IMG.bmap" "$DEV" "$IMG"
	case_ "copy loop-at-4K loop-on-the-same-file" refused "two loops, one file" \
		copy --nobmap "$DEVOFF" "$DEV2"
	case_ "two DESTs, two loop devices on one file" eval '
		cp "$IMG" "$R/other"
		bm 2 copy --bmap "$IMG.bmap" "$R/other" "$DEV" "$DEV2"
		assert_contains "$RUN_ERR" "same destination"'
	case_ "create -o a block device" refused "create onto a device" \
		create "$IMG" -o "$DEV"
	# The image on a mounted file system whose loop device's file is DEST.
	mkdir "$R/mnt"
	truncate -s 96M "$R/fs.ext4"
	if mkfs.ext4 -q -F "$R/fs.ext4" >/dev/null 2>&1 &&
		e2e_losetup FSDEV "$R/fs.ext4" &&
		e2e_mount -o noatime "$FSDEV" "$R/mnt" &&
		cp "$IMG" "$IMG.bmap" "$R/mnt/" && sync &&
		e2e_losetup FSDEV2 "$R/fs.ext4"; then
		sha=$(sha256sum <"$R/fs.ext4")
		for d in "$R/fs.ext4" "$FSDEV" "$FSDEV2"; do
			case_ "image on a file system backed by DEST ($d)" eval '
				bm 2 copy "$R/mnt/disk.img" "$d"
				assert_contains "$RUN_ERR" "refusing"
				assert_eq "$sha" "$(sha256sum <"$R/fs.ext4")" "the file system"'
		done
		# A loop device on that loop device (and two DESTs on it).
		if e2e_losetup LOOPLOOP "$FSDEV"; then
			case_ "loop on the loop holding the image's file system" eval '
				bm 2 copy "$R/mnt/disk.img" "$LOOPLOOP"
				assert_contains "$RUN_ERR" "refusing to write here"
				assert_eq "$sha" "$(sha256sum <"$R/fs.ext4")" "the file system"
				bm 2 copy "$IMG" "$FSDEV2" "$LOOPLOOP"
				assert_contains "$RUN_ERR" "which is mounted on"'
		fi
		# An overlay over that file system: its files have their own
		# device numbers, so the mounted loop's file is refused as such.
		mkdir -p "$R/up" "$R/wk" "$R/ov" "$R/mnt/lower"
		cp "$IMG" "$IMG.bmap" "$R/mnt/lower/" && sync
		sha=$(sha256sum <"$R/fs.ext4")
		if e2e_mount -t overlay overlay \
			-o "lowerdir=$R/mnt/lower,upperdir=$R/up,workdir=$R/wk" \
			"$R/ov"; then
			case_ "image on an overlay over a loop, DEST its file" eval '
				bm 2 copy "$R/ov/disk.img" "$R/fs.ext4"
				assert_contains "$RUN_ERR" "which is mounted on"
				assert_eq "$sha" "$(sha256sum <"$R/fs.ext4")" "the file system"'
		else
			skip_case "no overlayfs here"
		fi
	else
		skip_case "cannot make a mounted ext4 on a loop device"
	fi
	# Backing files named with a newline, and by a link whose first name
	# was removed: the loop's inode is compared, not its path.
	nl=$R/$'nl\nimg'
	cp "$IMG" "$nl" && cp "$IMG" "$R/del1" && ln "$R/del1" "$R/del2"
	if e2e_losetup NLDEV "$nl" && e2e_losetup DELDEV "$R/del1"; then
		rm "$R/del1"
		case_ "loop on a file whose name has a newline" eval '
			bm 2 copy --bmap "$IMG.bmap" "$nl" "$NLDEV"
			assert_contains "$RUN_ERR" "shares storage"'
		case_ "loop on a file known by another name now" eval '
			bm 2 copy --bmap "$IMG.bmap" "$R/del2" "$DELDEV"
			assert_contains "$RUN_ERR" "shares storage"'
	fi
else
	skip_case "no free loop device"
fi
cases_done "no destination can be an input"
