# A write fails once at each stage of writing a destination — the O_DIRECT
# aligned part, the buffered tail, a short write, the final flush — on a
# real loop device and on a regular file (LD_PRELOAD shim
# tests/faults/failonce.c). The promise under test: exit 0 only when the
# medium equals the image; otherwise exit 3 with the failing write named.
# The image's size (1045576 bytes) ends inside a sector, so every copy to
# the device has both an aligned part and a tail.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd cmp losetup "$PYTHON"
SHIM=${BMAPTK_FAILONCE:-}
[ -f "$SHIM" ] || skip "the fault shim is not built (BMAPTK_FAILONCE=$SHIM)"
PRELOAD=$SHIM
if ldd "$BMAPTK" 2>/dev/null | grep -q 'libasan'; then
	asan=$(ldd "$BMAPTK" | awk '/libasan/ { print $3; exit }')
	PRELOAD="$asan $SHIM"
fi

e2e_ramdir R
IMG=$R/img
SIZE=1045576
"$PYTHON" - "$IMG" "$SIZE" <<'PY' || fail "cannot make the image"
import random, sys
rng = random.Random(17)
with open(sys.argv[1], "wb") as f:
    f.write(rng.randbytes(int(sys.argv[2])))
PY
"$BMAPTK" create "$IMG" -o "$IMG.bmap" 2>/dev/null || fail "create failed"

# medium_is_image DEST: DEST's first SIZE bytes are the image.
medium_is_image() {
	cmp -s -n "$SIZE" "$IMG" "$1"
}

# stage KIND STAGE DEST WANT: copy with the fault armed. WANT is "ok" (the
# fault must be harmless: exit 0 and the medium is the image) or "fail"
# (exit 3 naming the write). Either way the fault must have fired, and
# exit 0 must mean the medium equals the image.
stage() {
	local kind=$1 st=$2 dest=$3 want=$4 log
	log=$R/fired.$kind.$st
	rm -f "$log"
	[ "$kind" = blk ] || rm -f "$dest"
	[ "$kind" = blk ] && dd if=/dev/zero of="$dest" bs=1M count=2 \
		conv=fsync status=none
	FAILONCE_KIND=$kind FAILONCE_STAGE=$st FAILONCE_LOG=$log \
		LD_PRELOAD=$PRELOAD run "$BMAPTK" copy "$IMG" "$dest"
	assert_no_sanitizer "$kind/$st"
	[ -s "$log" ] || fail "$kind/$st: the fault was never reached"
	if [ "$RUN_RC" = 0 ]; then
		medium_is_image "$dest" ||
			fail "$kind/$st: exit 0 but the medium differs from the image: $(cmp "$IMG" "$dest" 2>&1 | head -1)"
	fi
	case $want in
	ok) assert_rc 0 "$kind/$st (a harmless fault)" ;;
	fail)
		assert_rc 3 "$kind/$st"
		assert_contains "$RUN_ERR" "$dest" "$kind/$st names DEST"
		assert_not_contains "$RUN_ERR" "copied" "$kind/$st"
		;;
	esac
	note "ok: $kind/$st -> $want"
}

case_ "regular file" eval '
	stage reg buffered "$R/out" fail
	assert_no_file "$R/out" "a file the failed copy created"
	stage reg short "$R/out" ok
	stage reg fsync "$R/out" fail'

if [ "$(id -u)" != 0 ]; then
	skip_case "block device stages need root for losetup"
else
	truncate -s 2M "$R/backing"
	if ! DEV=$(losetup --find --show "$R/backing" 2>/dev/null); then
		skip_case "no free loop device"
	else
		on_exit "losetup -d '$DEV'"
		case_ "block device" eval '
			stage blk direct "$DEV" fail
			stage blk buffered "$DEV" fail
			stage blk short "$DEV" ok
			stage blk fsync "$DEV" fail'
	fi
fi
cases_done "every write stage either lands all bytes or fails the copy"
