# The static binary of scripts/build-static.sh runs alone in an empty chroot
# that holds only it, /etc/hosts, /etc/resolv.conf, /etc/nsswitch.conf and a
# CA directory: --version, create, copy from a local https:// server whose
# certificate it verifies (found by a name only the chroot's /etc/hosts
# knows), copy of every built-in codec, check. `file` must call it
# statically linked, and `plugins` must say plugins cannot be loaded.
#
# Label "release": run by the normal build only. Building the dependency
# prefix from Debian's sources takes minutes, so on a cold cache
# (scripts/build-static.sh --check-cache) this test skips unless
# BMAPTK_RELEASE_TESTS=1; with the prefix cached it builds the binary
# (about a minute) and runs.
. "$(dirname "$0")/lib.sh"
set -u
e2e_init
[ "$(id -u)" = 0 ] || skip "chroot needs root"
require_cmd chroot file openssl cmp xz gzip bzip2 zstd musl-gcc "$PYTHON"
unset http_proxy https_proxy HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

SCRIPT=$BMAPTK_SRC/scripts/build-static.sh
run "$SCRIPT" --check-cache
if [ "$RUN_RC" != 0 ] && [ "${BMAPTK_RELEASE_TESTS:-0}" != 1 ]; then
	skip "the static prefix is not cached (building it takes minutes):" \
		"run scripts/build-static.sh once, or set BMAPTK_RELEASE_TESTS=1" \
		"${RUN_ERR:+($RUN_ERR)}"
fi
BUILD=$BMAPTK_BUILD/release-static
run "$SCRIPT" -B "$BUILD"
assert_rc 0 "scripts/build-static.sh -B $BUILD"
BIN=$BUILD/bmaptk
note "$RUN_ERR"

run file -b "$BIN"
assert_contains "$RUN_OUT" "statically linked" "file $BIN"
assert_contains "$RUN_OUT" "stripped" "file $BIN"
assert_not_contains "$RUN_OUT" "interpreter" "file $BIN"
SIZE=$(stat -c %s "$BIN")
note "static binary: $SIZE bytes"
[ "$SIZE" -le $((3584 * 1024)) ] || fail "$BIN: $SIZE bytes, over 3.5 MiB"

# The chroot: the binary, three files of /etc, a CA directory, data.
R=$E2E_TMP/root
mkdir -p "$R/bin" "$R/etc/ssl/certs" "$R/data"
cp "$BIN" "$R/bin/bmaptk"
HOST=static-test.bmaptk.invalid
printf '127.0.0.1\tlocalhost %s\n' "$HOST" >"$R/etc/hosts"
printf 'nameserver 127.0.0.1\n' >"$R/etc/resolv.conf"
printf 'hosts: files dns\n' >"$R/etc/nsswitch.conf"
[ "$(find "$R" -type f | wc -l)" = 4 ] || fail "the chroot holds more files"

# in_root ARG...: run the chroot's bmaptk with an empty environment.
CHROOT=$(command -v chroot)
in_root() {
	run env -i HOME=/ PATH=/bin "$CHROOT" "$R" /bin/bmaptk "$@"
}

in_root --version
assert_rc 0 "--version in the chroot"
assert_contains "$RUN_OUT" "bmaptk" "--version"
in_root plugins
assert_rc 0 "plugins in the chroot"
assert_contains "$RUN_OUT" "plugins cannot be loaded by a static binary" \
	"bmaptk plugins"

# Outside the chroot, a plugin directory: each file is refused by name.
mkdir "$E2E_TMP/plugins"
: >"$E2E_TMP/plugins/any.so"
run "$BIN" --plugin-dir "$E2E_TMP/plugins" plugins
assert_rc 0 "plugins with a plugin directory"
assert_contains "$RUN_ERR" \
	"$E2E_TMP/plugins/any.so: plugins cannot be loaded by a static binary" \
	"a plugin for the static binary"

# A sparse image with data at a few places, and its compressed forms.
IMG=$R/data/img.raw
truncate -s 24M "$IMG"
for off in 0 3 9 17 23; do
	head -c 300000 /dev/urandom |
		dd of="$IMG" bs=1M seek="$off" conv=notrunc,fsync status=none
done
sync "$IMG"

in_root create /data/img.raw -o /data/img.raw.bmap
assert_rc 0 "create in the chroot"
# The static and the normal build map and hash the same.
"$BMAPTK" create "$IMG" -o "$E2E_TMP/ref.bmap" ||
	fail "$BMAPTK create failed"
assert_eq "$(bmap_fields "$E2E_TMP/ref.bmap")" \
	"$(bmap_fields "$R/data/img.raw.bmap")" "bmap of the static binary"

# Every built-in codec, through the libraries of the static prefix.
for z in "gzip -k" "xz -k -T1" "bzip2 -k" "zstd -q -k"; do
	$z "$IMG" || fail "$z failed"
done
for ext in gz xz bz2 zst; do
	in_root copy --bmap /data/img.raw.bmap "/data/img.raw.$ext" \
		"/data/out.$ext"
	assert_rc 0 "copy of img.raw.$ext in the chroot"
	assert_same_file "$IMG" "$R/data/out.$ext" "copy of img.raw.$ext"
	rm -f "$R/data/out.$ext"
done

# No gpgme in the static binary: a signed bmap is refused with a message
# that says so, and --no-sig-verify copies.
echo "not really a signature" >"$R/data/img.raw.bmap.asc"
in_root copy "/data/img.raw.gz" /data/out.sig
assert_rc 2 "copy with a signature in the chroot"
assert_contains "$RUN_ERR" "built without gpgme; use --no-sig-verify" \
	"copy with a signature in the chroot"
in_root copy --no-sig-verify "/data/img.raw.gz" /data/out.sig
assert_rc 0 "copy --no-sig-verify in the chroot"
assert_same_file "$IMG" "$R/data/out.sig" "copy --no-sig-verify"
rm -f "$R/data/img.raw.bmap.asc" "$R/data/out.sig"

# https: a CA, a certificate for $HOST signed by it, the CA in the chroot's
# certificate directory under its hash (as c_rehash names it).
C=$E2E_TMP/tls
mkdir "$C"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$C/ca.key" \
	-out "$C/ca.pem" -days 2 -subj "/CN=bmaptk static test CA" \
	-addext "basicConstraints=critical,CA:TRUE" \
	-addext "keyUsage=critical,keyCertSign,cRLSign" 2>>"$C/log" &&
	openssl req -newkey rsa:2048 -nodes -keyout "$C/srv.key" \
		-out "$C/srv.csr" -subj "/CN=$HOST" 2>>"$C/log" &&
	printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\n' \
		"$HOST" >"$C/srv.ext" &&
	openssl x509 -req -in "$C/srv.csr" -CA "$C/ca.pem" -CAkey "$C/ca.key" \
		-CAcreateserial -days 2 -extfile "$C/srv.ext" \
		-out "$C/srv.pem" 2>>"$C/log" ||
	fail "openssl could not make the certificates: $(cat "$C/log")"
CA_LINK=$R/etc/ssl/certs/$(openssl x509 -hash -noout -in "$C/ca.pem").0
cp "$C/ca.pem" "$CA_LINK"

D=$E2E_TMP/srv
mkdir "$D"
cp "$IMG.xz" "$R/data/img.raw.bmap" "$D/"
"$PYTHON" "$BMAPTK_SRC/tests/e2e/remote_server.py" --dir "$D" \
	--port-file "$E2E_TMP/port" --log "$E2E_TMP/srv.log" \
	--cert "$C/srv.pem" --key "$C/srv.key" 2>"$E2E_TMP/srv.err" &
PID=$!
on_exit "kill $PID; wait $PID"
for _ in $(seq 100); do
	[ -s "$E2E_TMP/port" ] && break
	kill -0 "$PID" 2>/dev/null ||
		fail "the TLS server did not start: $(cat "$E2E_TMP/srv.err")"
	sleep 0.1
done
[ -s "$E2E_TMP/port" ] || fail "the TLS server did not start"
URL=https://$HOST:$(cat "$E2E_TMP/port")/img.raw.xz

# The bmap is found next to the image on the server (img.raw.bmap).
in_root copy "$URL" /data/out.raw
assert_rc 0 "copy $URL in the chroot"
assert_same_file "$IMG" "$R/data/out.raw" "copy over https"
grep -q '^GET /img.raw.bmap ' "$E2E_TMP/srv.log" ||
	fail "the bmap was not fetched from the server: $(cat "$E2E_TMP/srv.log")"

in_root check /data/img.raw.bmap /data/out.raw
assert_rc 0 "check in the chroot"
printf 'X' | dd of="$R/data/out.raw" bs=1 seek=$((9 << 20)) conv=notrunc \
	status=none
in_root check /data/img.raw.bmap /data/out.raw
assert_rc 1 "check of a changed copy in the chroot"

# Without the CA the same server must be refused: the certificate is
# really verified, against the chroot's directory.
rm "$CA_LINK"
in_root copy "$URL" /data/out2.raw
[ "$RUN_RC" = 3 ] ||
	fail "copy without the CA: expected exit 3, got $RUN_RC: $RUN_ERR"
assert_contains "$RUN_ERR" "certificate" "copy without the CA"
assert_no_file "$R/data/out2.raw" "destination of the refused copy"
note "ok: $SIZE bytes, static, runs alone in a chroot"
