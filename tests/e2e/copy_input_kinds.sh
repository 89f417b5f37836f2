# An image named every way that is not a plain seekable file — a process
# substitution, /dev/stdin, /dev/fd/N, a FIFO given by name (fed at once
# and slowly) — is copied whole: nothing may read its first bytes before
# the stream that delivers it (a sniff for "is this a bmap?" once ate the
# first 4 KiB of such inputs and the copy was still reported good). A bmap
# fed through a FIFO as the image is refused, and the FIFO is not drained
# by anything but the image stream.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd cmp mkfifo "$PYTHON"

e2e_ramdir R
IMG=$R/img
fault_image "$IMG" 20261204

# copied_right DEST WHAT: exit 0 and DEST is the image.
copied_right() {
	assert_rc 0 "$2"
	assert_same_file "$IMG" "$1" "$2"
}

for mode in nobmap bmap; do
	if [ $mode = bmap ]; then opt=(--bmap "$IMG.bmap"); else opt=(--nobmap); fi
	case_ "process substitution ($mode)" eval '
		rm -f "$R/out"
		bm 0 copy "${opt[@]}" <(cat "$IMG") "$R/out"
		copied_right "$R/out" "<(cat img) $mode"'
	case_ "/dev/stdin from a pipe ($mode)" eval '
		rm -f "$R/out"
		run bash -c "cat \"\$1\" | \"\$BMAPTK\" copy \"\${@:3}\" /dev/stdin \"\$2\"" \
			_ "$IMG" "$R/out" "${opt[@]}"
		copied_right "$R/out" "/dev/stdin $mode"'
	case_ "/dev/fd/3 ($mode)" eval '
		rm -f "$R/out"
		run bash -c "\"\$BMAPTK\" copy \"\${@:3}\" /dev/fd/3 \"\$2\" 3< <(cat \"\$1\")" \
			_ "$IMG" "$R/out" "${opt[@]}"
		copied_right "$R/out" "/dev/fd/3 $mode"'
	case_ "FIFO by name ($mode)" eval '
		rm -f "$R/out" "$R/fifo"
		mkfifo "$R/fifo"
		cat "$IMG" >"$R/fifo" &
		bm 0 copy "${opt[@]}" "$R/fifo" "$R/out"
		wait
		copied_right "$R/out" "FIFO $mode"'
	case_ "FIFO fed slowly ($mode)" eval '
		rm -f "$R/out" "$R/fifo"
		mkfifo "$R/fifo"
		"$PYTHON" -c "
import sys, time
src = open(sys.argv[1], \"rb\"); dst = open(sys.argv[2], \"wb\")
while True:
    b = src.read(3 * 1024 * 1024 + 17)
    if not b: break
    dst.write(b); dst.flush(); time.sleep(0.02)
" "$IMG" "$R/fifo" &
		bm 0 copy "${opt[@]}" "$R/fifo" "$R/out"
		wait
		copied_right "$R/out" "slow FIFO $mode"'
done

case_ "a bmap fed through a FIFO as the image" eval '
	rm -f "$R/out" "$R/fifo"
	mkfifo "$R/fifo"
	cat "$IMG.bmap" >"$R/fifo" &
	bm 2 copy --nobmap "$R/fifo" "$R/out"
	wait
	assert_contains "$RUN_ERR" "this is a bmap file, not an image"
	assert_no_file "$R/out" "DEST of a refused copy"'

case_ "a bmap file given as the image" eval '
	bm 2 copy "$IMG.bmap" "$R/out2"
	assert_contains "$RUN_ERR" "this is a bmap file, not an image"
	assert_no_file "$R/out2" "DEST of a refused copy"'

cases_done "every way of naming a stream input copies it whole"
