# `bmaptk copy` from http:// and https:// URLs served on 127.0.0.1 by
# remote_server.py (Python's http.server with Range support and injected
# faults) and by Debian's nginx. A sparse raw image, its bmap (made by
# `bmaptk create`) and .zst/.gz copies; each copy must equal the image.
#
# Checked: bmap discovery over URLs (also with a query string, which is
# kept); a raw image downloads only about its mapped bytes (counted in the
# servers' logs); a connection dropped or stalled mid-transfer is resumed
# with a Range request and the retry is announced; one 500 is retried (the
# URL source retries 408, 429, 500, 502, 503 and 504 like other transient
# failures); http_proxy is obeyed; a persistent 500, a server that ignores
# Range (whole file streamed; no resume) or ignores it when resuming, a
# file that changes between requests, 404, 403, TLS failures, a refused
# connection and an unknown host each exit 3 with one line naming the URL
# and the cause, and leave no DEST behind; --insecure works and warns;
# credentials in the URL work and never appear in errors or retry notices
# (the CLI's info lines, outside the URL source, still echo the URL).
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd cmp zstd gzip openssl "$PYTHON"
# Talk to 127.0.0.1 directly, whatever proxy the environment names.
unset http_proxy https_proxy HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

SERVER=$(dirname "$0")/remote_server.py
D=$E2E_TMP/www
mkdir -p "$D/tok" "$D/auth"
IMG=$D/img.raw
SIZE=$((40 * 1024 * 1024 + 1234))
"$PYTHON" - "$IMG" "$SIZE" <<'EOF' || fail "cannot generate the image"
import os
import random
import sys

MIB = 1024 * 1024
rng = random.Random(20241125)
path, size = sys.argv[1], int(sys.argv[2])
extents = [
    (0, 300000),
    (3 * MIB, 1500000),
    (3 * MIB + 1700000, 300000),  # after a small hole: coalesced
    (10 * MIB + 777, 2 * MIB),
    (17 * MIB, 700000),
    (25 * MIB, 1200000),
    (33 * MIB, 500000),
    (size - 4000, 4000),
]
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, size)
for off, n in extents:
    assert os.pwrite(fd, rng.randbytes(n), off) == n
os.fsync(fd)
os.close(fd)
EOF
"$BMAPTK" create "$IMG" -o "$IMG.bmap" 2>"$E2E_TMP/create.err" ||
	fail "bmaptk create: $(cat "$E2E_TMP/create.err")"
zstd -q -k "$IMG" && gzip -k "$IMG" || fail "cannot compress the image"
for f in img.raw img.raw.bmap img.raw.zst; do
	ln "$D/$f" "$D/tok/$f" && ln "$D/$f" "$D/auth/$f" || fail "ln $f"
done
MAPPED=$(($(sed -n 's/.*<MappedBlocksCount> *\([0-9]*\).*/\1/p' \
	"$IMG.bmap") * 4096))
NRANGES=$(grep -c '<Range ' "$IMG.bmap")
[ "$NRANGES" -ge 6 ] || fail "only $NRANGES ranges in the bmap"
note "image $SIZE bytes, $MAPPED mapped in $NRANGES ranges"

# Certificates: a CA, a server certificate for 127.0.0.1 and localhost,
# and one for another name, both signed by the CA.
C=$E2E_TMP/tls
mkdir "$C"
make_cert() { # NAME SUBJECT_ALT_NAMES
	openssl req -newkey rsa:2048 -nodes -keyout "$C/$1.key" \
		-out "$C/$1.csr" -subj "/CN=$1" 2>>"$C/log" &&
		printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
			"$2" >"$C/$1.ext" &&
		openssl x509 -req -in "$C/$1.csr" -CA "$C/ca.pem" \
			-CAkey "$C/ca.key" -CAcreateserial -days 2 \
			-extfile "$C/$1.ext" -out "$C/$1.pem" 2>>"$C/log"
}
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$C/ca.key" \
	-out "$C/ca.pem" -days 2 -subj "/CN=bmaptk test CA" \
	-addext "basicConstraints=critical,CA:TRUE" \
	-addext "keyUsage=critical,keyCertSign,cRLSign" 2>>"$C/log" &&
	make_cert good "IP:127.0.0.1,DNS:localhost" &&
	make_cert wrong "DNS:wrong.example" ||
	fail "openssl could not make the certificates: $(cat "$C/log")"

start_server http
start_server https --cert "$C/good.pem" --key "$C/good.key"
start_server wrong --cert "$C/wrong.pem" --key "$C/wrong.key"
H=http://127.0.0.1:$PORT_http
S=https://127.0.0.1:$PORT_https
W=https://127.0.0.1:$PORT_wrong

OUT=$E2E_TMP/out
mkdir "$OUT"
# copy_ok NAME ARG...: copy into $OUT/NAME; it must equal the image.
copy_ok() {
	local dest=$OUT/$1
	shift
	rm -f "$dest"
	bm 0 copy "$@" "$dest"
	assert_same_file "$IMG" "$dest" "copy of $*"
	rm -f "$dest"
}
# copy_fails NAME ARG...: exit 3, one error line, no DEST left behind.
copy_fails() {
	local dest=$OUT/$1
	shift
	rm -f "$dest"
	bm 3 copy "$@" "$dest"
	assert_no_file "$dest" "DEST after a failed copy of $*"
	[ "$(grep -c 'error:' <<<"$RUN_ERR")" -ge 1 ] ||
		fail "no error line for $*: [$RUN_ERR]"
}
# served LOG PATH: body bytes the python server sent for GETs of PATH.
served() {
	awk -v p="$2" '$1 == "GET" && $2 == p { s += $5 } END { print s + 0 }' \
		"$1"
}
# at_most WHAT BYTES: BYTES must be <= 1.05 x mapped + 128 KiB.
at_most() {
	local limit=$((MAPPED + MAPPED / 20 + 131072))
	[ "$2" -le "$limit" ] ||
		fail "$1: $2 bytes downloaded for $MAPPED mapped (limit $limit)"
	note "$1: $2 bytes downloaded for $MAPPED mapped"
}

# --- plain copies, discovery, bytes on the wire ---------------------------
copy_ok a "$H/img.raw"
assert_contains "$RUN_ERR" "$H/img.raw.bmap" "the bmap found over http"
assert_not_contains "$RUN_ERR" "retrying" "a clean copy"
at_most "raw image over http" "$(served "$E2E_TMP/http.log" /img.raw)"
grep -q '^GET /img.raw bytes=' "$E2E_TMP/http.log" ||
	fail "no Range request in the log"
copy_ok a "$H/img.raw.zst"
grep -q '^GET /img.raw.zst.bmap .* 404 ' "$E2E_TMP/http.log" &&
	grep -q '^GET /img.raw.bmap ' "$E2E_TMP/http.log" ||
	fail "discovery did not try img.raw.zst.bmap, then img.raw.bmap"
copy_ok a "$H/img.raw.gz"
# /tok/ answers 403 without the token: the bmap's URL must keep it.
copy_ok a "$H/tok/img.raw.zst?token=x"
grep -q '^GET /tok/img.raw.bmap?token=x .* 206 ' "$E2E_TMP/http.log" ||
	fail "the bmap was not fetched with the query string"
copy_ok a --cacert "$C/ca.pem" "$S/img.raw"
copy_ok a --cacert "$C/ca.pem" "https://localhost:$PORT_https/img.raw.gz"
# The proxy named by http_proxy (libcurl's own handling): the test server
# answers absolute-URI requests for any host name too.
export http_proxy=$H
copy_ok a "http://proxied.invalid/img.raw.zst"
unset http_proxy
grep -q '^GET http://proxied.invalid/img.raw.zst bytes=' "$E2E_TMP/http.log" ||
	fail "the request did not go through the proxy"
# check reads the bmap over the URL as well.
cp --sparse=always "$IMG" "$OUT/c"
bm 0 check "$H/img.raw" "$OUT/c"
rm -f "$OUT/c"

# --- resume -----------------------------------------------------------------
# Byte 3500000 lies in the second range, 2000000 in the .zst file.
copy_ok a "$H/_f/drop=3500000/r1/img.raw"
assert_contains "$RUN_ERR" "connection lost" "drop, raw"
assert_contains "$RUN_ERR" "at byte 3500000; retrying in" "drop, raw"
grep -q '^GET /_f/drop=3500000/r1/img.raw bytes=3500000-' \
	"$E2E_TMP/http.log" || fail "no resuming Range request after the drop"
copy_ok a "$H/_f/drop=2000000/r2/img.raw.zst"
assert_contains "$RUN_ERR" "at byte 2000000; retrying in 0.5 s (retry 1 of 5)" \
	"drop, zst"
copy_ok a --cacert "$C/ca.pem" "$S/_f/drop=11000000/r3/img.raw"
assert_contains "$RUN_ERR" "at byte 11000000; retrying" "drop, https"
copy_ok a --timeout 1 "$H/_f/stall=2500000/r4/img.raw.zst"
assert_contains "$RUN_ERR" "the transfer stalled (no data for 1 s) at byte 2500000" \
	"stall"
copy_ok a "$H/_f/err500/r5/img.raw.zst"
assert_contains "$RUN_ERR" "HTTP error 500 Internal Server Error at byte 0; retrying" \
	"one 500"
copy_fails a --retries 1 --bmap "$IMG.bmap" "$H/_f/err500always/r6/img.raw.zst"
assert_contains "$RUN_ERR" \
	"error: $H/_f/err500always/r6/img.raw.zst: HTTP error 500 Internal Server Error (at byte 0; gave up after 1 retries)" \
	"persistent 500"
copy_fails a --bmap "$IMG.bmap" "$H/_f/noresume,drop=3500000/r7/img.raw"
assert_contains "$RUN_ERR" \
	"error: $H/_f/noresume,drop=3500000/r7/img.raw: the server ignored the Range request (HTTP 200 instead of 206), so the download cannot continue at byte 3500000" \
	"Range ignored on resume"
# A server without Range support: the whole file, streamed; no resume.
copy_ok a --bmap "$IMG.bmap" "$H/_f/norange/r10/img.raw"
assert_eq "$SIZE" "$(served "$E2E_TMP/http.log" /_f/norange/r10/img.raw)" \
	"bytes sent by a server that ignores Range"
copy_fails a --bmap "$IMG.bmap" "$H/_f/norange,drop=3500000/r11/img.raw"
assert_contains "$RUN_ERR" \
	"connection lost: transfer closed with $((SIZE - 3500000)) bytes remaining to read; the server does not support Range requests, so the download cannot resume at byte 3500000" \
	"drop without Range support"
copy_fails a --bmap "$IMG.bmap" "$H/_f/change,drop=2000000/r8/img.raw.zst"
assert_contains "$RUN_ERR" "the file changed on the server during the download (ETag" \
	"changed file"
copy_fails a --bmap "$IMG.bmap" "$H/_f/drop=2000000/r9/img.raw.zst" \
	--retries 0
assert_contains "$RUN_ERR" "gave up after 0 retries" "--retries 0"

# --- errors before anything is written ------------------------------------
copy_fails a --bmap "$IMG.bmap" "$H/missing.raw"
assert_contains "$RUN_ERR" "error: $H/missing.raw: HTTP error 404 Not Found" \
	"404"
copy_fails a --nobmap "$H/missing.raw"
copy_fails a --bmap "$IMG.bmap" "$H/tok/img.raw"
assert_contains "$RUN_ERR" "error: $H/tok/img.raw: HTTP error 403 Forbidden" \
	"403"
copy_fails a "$S/img.raw"
assert_contains "$RUN_ERR" "TLS certificate verification failed: SSL certificate problem: unable to get local issuer certificate" \
	"unknown CA"
copy_fails a --cacert "$C/ca.pem" "$W/img.raw"
assert_contains "$RUN_ERR" "TLS certificate verification failed: SSL: no alternative certificate subject name matches target host name '127.0.0.1'" \
	"wrong host name"
copy_ok a --insecure "$W/img.raw.zst"
assert_contains "$RUN_ERR" "warning: --insecure: TLS certificates are not verified" \
	"--insecure"
CLOSED=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
copy_fails a --bmap "$IMG.bmap" "http://127.0.0.1:$CLOSED/img.raw"
assert_contains "$RUN_ERR" "error: http://127.0.0.1:$CLOSED/img.raw: cannot connect: " \
	"refused connection"
copy_fails a --bmap "$IMG.bmap" --timeout 5 "http://no-such-host.invalid/img.raw"
assert_contains "$RUN_ERR" "error: http://no-such-host.invalid/img.raw: cannot resolve the host name" \
	"unknown host"

# --- credentials ------------------------------------------------------------
A=http://user:secret@127.0.0.1:$PORT_http/auth
copy_ok a "$A/img.raw"
copy_fails a --bmap "$IMG.bmap" "$A/missing.raw"
assert_contains "$RUN_ERR" "error: $H/auth/missing.raw: HTTP error 404 Not Found" \
	"404 with credentials"
assert_not_contains "$RUN_ERR" "secret" "messages"
copy_fails a --bmap "$IMG.bmap" \
	"http://user:wrong@127.0.0.1:$PORT_http/auth/img.raw"
assert_contains "$RUN_ERR" "error: $H/auth/img.raw: HTTP error 401 Unauthorized" \
	"wrong password"
assert_not_contains "$RUN_ERR" "wrong@" "messages"
copy_fails a --bmap "$IMG.bmap" --retries 1 \
	"http://user:secret@127.0.0.1:$PORT_http/_f/err500always/c1/img.raw"
assert_not_contains "$RUN_ERR" "secret" "retry notices"

# --- nginx ------------------------------------------------------------------
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [ ! -x "$NGINX" ]; then
	skip_case "nginx is not installed"
else
	N=$E2E_TMP/nginx
	mkdir "$N"
	NPORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	cat >"$N/nginx.conf" <<EOF
daemon off;
master_process off;
$( ((EUID == 0)) && echo "user root;")
pid $N/nginx.pid;
error_log $N/error.log;
events { worker_connections 64; }
http {
	log_format bytes '\$request_method \$uri \$status \$body_bytes_sent';
	access_log $N/access.log bytes;
	client_body_temp_path $N/body;
	proxy_temp_path $N/proxy;
	fastcgi_temp_path $N/fastcgi;
	uwsgi_temp_path $N/uwsgi;
	scgi_temp_path $N/scgi;
	default_type application/octet-stream;
	sendfile on;
	server {
		listen 127.0.0.1:$NPORT;
		root $D;
	}
}
EOF
	"$NGINX" -e "$N/error.log" -p "$N" -c "$N/nginx.conf" \
		2>"$N/stderr" &
	NPID=$!
	on_exit "kill $NPID; wait $NPID"
	up=0
	for ((i = 0; i < 100; i++)); do
		if "$PYTHON" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' \
			"$NPORT" 2>/dev/null; then
			up=1
			break
		fi
		kill -0 "$NPID" 2>/dev/null || break
		sleep 0.1
	done
	if ((up == 0)); then
		skip_case "nginx did not start: $(cat "$N/stderr" "$N/error.log" 2>/dev/null)"
	else
		G=http://127.0.0.1:$NPORT
		copy_ok a "$G/img.raw"
		at_most "raw image over nginx" "$(awk '$1 == "GET" && $2 == "/img.raw" { s += $4 } END { print s + 0 }' "$N/access.log")"
		copy_ok a "$G/img.raw.zst"
		copy_fails a --bmap "$IMG.bmap" "$G/missing.raw"
		assert_contains "$RUN_ERR" "error: $G/missing.raw: HTTP error 404 Not Found" \
			"404 from nginx"
	fi
fi
note "all URL cases passed"
