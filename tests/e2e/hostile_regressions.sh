# What hostile reviews of copy found, each kept as a case: --psplash-pipe
# only ever writes to a FIFO (never the image or a disk's first sector);
# a missing /dev node is refused in every spelling; a clearsigned bmap
# whose signature block holds no signature is not reported "verified";
# the bmaptool alias's -d command line shows no URL password; a FIFO
# named like a plugin does not hang the start.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd cmp mkfifo timeout "$PYTHON"

e2e_ramdir R
IMG=$R/img
fault_image "$IMG" 99

case_ "--psplash-pipe onto a regular file" eval '
	cp "$IMG" "$R/victim"
	bm 0 copy --psplash-pipe "$R/victim" "$IMG" "$R/out"
	assert_contains "$RUN_ERR" "not a pipe"
	assert_same_file "$IMG" "$R/victim" "the file named as psplash pipe"
	rm -f "$R/out"'
case_ "--psplash-pipe onto the image itself" eval '
	cp "$IMG" "$R/pristine"
	bm 0 copy --psplash-pipe "$IMG" "$IMG" "$R/out"
	assert_same_file "$R/pristine" "$IMG" "the image"
	rm -f "$R/out"'
case_ "--psplash-pipe onto a real FIFO still works" eval '
	rm -f "$R/ps"; mkfifo "$R/ps"
	cat "$R/ps" >"$R/ps.out" &
	reader=$!
	sleep 0.2
	bm 0 copy --psplash-pipe "$R/ps" "$IMG" "$R/out"
	wait $reader
	assert_contains "$(tr "\0" "\n" <"$R/ps.out")" "PROGRESS 100"
	rm -f "$R/out"'

# A missing device node in /dev, however it is spelled, is refused (the
# file would be made in RAM, and the card was not written).
for d in //dev/sdbmaptk /dev//sdbmaptk /dev/./sdbmaptk /dev/mapper/bmaptk-none; do
	case_ "missing $d" eval '
		bm 2 copy "$IMG" "$d"
		assert_contains "$RUN_ERR" "was the card detected?"
		assert_no_file /dev/sdbmaptk "a file made in /dev"
		assert_no_file /dev/mapper/bmaptk-none "a file made in /dev"'
done

# The armor of a "signature" holding only an OpenPGP marker packet.
if command -v gpg >/dev/null; then
	case_ "clearsigned bmap without a signature" eval '
		export GNUPGHOME=$E2E_TMP/gnupg
		mkdir -m 700 "$GNUPGHOME"
		on_exit "gpgconf --kill all"
		"$PYTHON" - "$IMG.bmap" "$R/clear0.bmap" <<"PY"
import base64, sys
data = b"\xa8\x03PGP"  # a marker packet, nothing else
crc = 0xB704CE
for b in data:
    crc ^= b << 16
    for _ in range(8):
        crc <<= 1
        if crc & 0x1000000:
            crc ^= 0x1864CFB
arm = ("-----BEGIN PGP SIGNATURE-----\n\n" + base64.b64encode(data).decode()
       + "\n=" + base64.b64encode((crc & 0xFFFFFF).to_bytes(3, "big")).decode()
       + "\n-----END PGP SIGNATURE-----\n")
text = open(sys.argv[1]).read()
body = "".join(("- " + l if l.startswith("-") else l) + "\n"
               for l in text.splitlines())
open(sys.argv[2], "w").write("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n"
                             + body + arm)
PY
		bm 0 --json copy --bmap "$R/clear0.bmap" "$IMG" "$R/out"
		assert_not_contains "$RUN_ERR" "\"signature\":\"verified\""
		assert_contains "$RUN_ERR" "\"signature\":\"none\""
		rm -f "$R/out"'
fi

case_ "bmaptool -d shows no URL password" eval '
	ln -sf "$BMAPTK" "$R/bmaptool"
	run "$R/bmaptool" -d copy "http://bob:s3cret@127.0.0.1:9/x.img" "$R/out"
	[ "$RUN_RC" != 0 ] || fail "a copy from a closed port succeeded"
	assert_contains "$RUN_ERR" "running: bmaptk"
	assert_not_contains "$RUN_ERR" "s3cret" "the -d command line"'

case_ "a FIFO named x.so in a plugin directory" eval '
	mkdir -m 755 "$R/plug"
	mkfifo "$R/plug/x.so"
	run timeout 10 "$BMAPTK" --plugin-dir "$R/plug" plugins
	assert_rc 0 "bmaptk plugins with a FIFO plugin"
	assert_contains "$RUN_ERR" "not a regular file"'
case_ "DEST is bmaptk's own stderr" eval '
	run "$BMAPTK" copy --check "$IMG" /dev/stderr
	assert_rc 2 "copy to /dev/stderr redirected to a file"
	assert_contains "$RUN_ERR" "refusing to write here: it is bmaptk'"'"'s stderr"'

case_ "an all-holes image: nothing to verify is not a missing checksum" eval '
	truncate -s 8M "$R/holes.img"
	"$BMAPTK" -q create "$R/holes.img" -o "$R/holes.img.bmap" || fail create
	bm 0 copy "$R/holes.img" "$R/holes.out"
	assert_not_contains "$RUN_ERR" "no checksums"
	bm 0 check "$R/holes.img.bmap" "$R/holes.out"
	assert_contains "$RUN_ERR" "0 of 0 ranges verified, 0 bad"'

if command -v img2simg >/dev/null; then
	case_ "an Android sparse image with 128 KiB blocks and its bmap" eval '
		"$PYTHON" -c "
import os, sys
f = open(sys.argv[1], \"wb\"); f.truncate((8 << 20) + 100)
f.seek(0); f.write(os.urandom(5000)); f.seek(3 << 20); f.write(os.urandom(300000))
" "$R/odd.raw"
		"$BMAPTK" -q create "$R/odd.raw" -o "$R/odd.bmap" || fail create
		img2simg "$R/odd.raw" "$R/odd.simg" 131072 || fail img2simg
		bm 0 copy --bmap "$R/odd.bmap" "$R/odd.simg" "$R/odd.out"
		assert_same_file "$R/odd.raw" "$R/odd.out"'
fi

# SIGINT while copy --check reads the medium back: 130, as anywhere else
# (the read-back is slowed by the fault shim: 0.5 s a pread).
SHIM=${BMAPTK_FAILONCE:-}
PRELOAD=$SHIM
if ldd "$BMAPTK" 2>/dev/null | grep -q libasan; then
	PRELOAD="$(ldd "$BMAPTK" | awk '/libasan/ { print $3; exit }') $SHIM"
fi
if [ -f "$SHIM" ]; then
	case_ "interrupted during the --check read-back" eval '
		rm -f "$R/slow.out"
		FAILONCE_STAGE=slowpread FAILONCE_DELAY_MS=500 \
			LD_PRELOAD=$PRELOAD "$BMAPTK" copy \
			--check "$IMG" "$R/slow.out" 2>"$E2E_TMP/chk.err" &
		pid=$!
		sleep 1.5
		kill -INT $pid; wait $pid; rc=$?
		assert_eq 130 "$rc" "exit: $(cat "$E2E_TMP/chk.err")"
		assert_contains "$(cat "$E2E_TMP/chk.err")" "interrupted"'
fi
cases_done "hostile review regressions hold"
