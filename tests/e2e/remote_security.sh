# What a download may trust (DESIGN.md section 4b: "A URL that starts on
# https (or sftp) stays on it through redirects; a password in a URL never
# reaches a message or an event"), with remote_server.py over http and
# https and an OpenSSH sshd, all on 127.0.0.1:
#
#   redirects: an https image, bmap or signature that the server redirects
#     to http is refused (exit 3, one error line naming the URL without
#     its password and both schemes, no DEST, nothing asked of the http
#     server); http to https and https to https are followed; http to ftp
#     is refused with our message, not libcurl's "Protocol not supported"
#   SSH host keys: checked with --insecure as without it (--insecure is
#     about TLS certificates): an unknown key is an error naming
#     ~/.ssh/known_hosts and the ssh-keyscan command that adds it, and
#     running that command makes the copy work; a key that differs is
#     refused too (skipped when sshd or libcurl's sftp is missing)
#   passwords: every failure this test can provoke, with user:s3cret@ in
#     the URL, with and without --json: "s3cret" is nowhere on stderr
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd cmp xz gzip openssl ssh-keygen timeout "$PYTHON"
unset http_proxy https_proxy HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
unset ftp_proxy FTP_PROXY

SERVER=$(dirname "$0")/remote_server.py
D=$E2E_TMP/www
mkdir "$D"
IMG=$D/img.raw
# img.raw (with img.raw.bmap) and nobmap.raw (without); bad.xz: an xz
# stream with its middle flipped; cut.gz: a gzip stream cut short; a.7z:
# the 7z magic, which no built-in codec reads; notbmap.bmap: not XML.
"$PYTHON" - "$D" <<'EOF' || fail "cannot generate the files"
import os
import random
import sys

d = sys.argv[1]
rng = random.Random(4711)
MIB = 1024 * 1024
fd = os.open(os.path.join(d, "img.raw"), os.O_WRONLY | os.O_CREAT, 0o644)
os.ftruncate(fd, 2 * MIB)
for off, n in [(0, 100000), (MIB, 200000)]:
    assert os.pwrite(fd, rng.randbytes(n), off) == n
os.close(fd)
with open(os.path.join(d, "a.7z"), "wb") as f:
    f.write(b"7z\xbc\xaf\x27\x1c" + rng.randbytes(4000))
with open(os.path.join(d, "notbmap.bmap"), "wb") as f:
    f.write(b"this is no bmap\n")
EOF
"$BMAPTK" create "$IMG" -o "$IMG.bmap" 2>"$E2E_TMP/create.err" ||
	fail "bmaptk create: $(cat "$E2E_TMP/create.err")"
cp "$IMG" "$D/nobmap.raw" && xz -k -T1 "$IMG" && gzip -k "$IMG" ||
	fail "cannot compress the image"
"$PYTHON" - "$D" <<'EOF' || fail "cannot corrupt the streams"
import os
import sys

d = sys.argv[1]
x = bytearray(open(os.path.join(d, "img.raw.xz"), "rb").read())
for i in range(64, len(x) - 64):
    x[i] ^= 0x5A
open(os.path.join(d, "bad.xz"), "wb").write(bytes(x))
g = open(os.path.join(d, "img.raw.gz"), "rb").read()
open(os.path.join(d, "cut.gz"), "wb").write(g[:len(g) // 2])
EOF

# A self-signed certificate for 127.0.0.1, trusted with --cacert.
C=$E2E_TMP/tls
mkdir "$C"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$C/key.pem" \
	-out "$C/cert.pem" -days 2 -subj "/CN=127.0.0.1" \
	-addext "subjectAltName=IP:127.0.0.1" 2>"$C/log" ||
	fail "openssl could not make the certificate: $(cat "$C/log")"

start_server http
start_server https --cert "$C/cert.pem" --key "$C/key.pem"
# shellcheck disable=SC2154 # set by start_server
HP=$PORT_http
# shellcheck disable=SC2154
SP=$PORT_https
H=http://127.0.0.1:$HP
S=https://127.0.0.1:$SP
TLS=(--cacert "$C/cert.pem")

OUT=$E2E_TMP/out
mkdir "$OUT"
# bmt WANT_RC ARG...: `bmaptk ARG...` under a 60 s watchdog, as bm.
bmt() {
	local want=$1
	shift
	run timeout 60 "$BMAPTK" "$@"
	[ "$RUN_RC" != 124 ] || fail "bmaptk $* hung; stderr: [$RUN_ERR]"
	assert_rc "$want" "bmaptk $*"
	assert_eq "" "$RUN_OUT" "stdout of bmaptk $*"
	assert_no_sanitizer "stderr of bmaptk $*"
}
# copy_ok ARG...: copy into a new DEST; it must equal the image.
copy_ok() {
	rm -f "$OUT/d"
	bmt 0 copy "$@" "$OUT/d"
	assert_same_file "$IMG" "$OUT/d" "copy of $*"
	rm -f "$OUT/d"
}
# copy_fails ARG...: exit 3, exactly one error (line, or JSON event), no
# DEST.
copy_fails() {
	local errors
	rm -f "$OUT/d"
	bmt 3 copy "$@" "$OUT/d"
	assert_no_file "$OUT/d" "DEST after the failed copy of $*"
	errors=$(grep -c -e 'bmaptk: error:' -e '"event":"error"' <<<"$RUN_ERR")
	assert_eq 1 "$errors" "errors of $*: [$RUN_ERR]"
}
# gets LOG PATH: how many GETs of PATH the server logged.
gets() {
	awk -v p="$2" '$1 == "GET" && $2 == p { n++ } END { print n + 0 }' \
		"$E2E_TMP/$1.log"
}

# --- redirects -----------------------------------------------------------------
DOWNGRADE="refusing the server's redirect from https to http (a download that starts on https stays on https)"

# The image: refused before anything is asked of the http server.
redirect_image() {
	local u=$S/to/http/$HP/img.raw before
	before=$(gets http /img.raw)
	copy_fails "${TLS[@]}" --nobmap "$u"
	assert_contains "$RUN_ERR" "error: $u: $DOWNGRADE" "$u"
	assert_eq "$before" "$(gets http /img.raw)" "GETs of /img.raw over http"
	# The same with a password in the URL, and with a bmap given.
	copy_fails "${TLS[@]}" --bmap "$IMG.bmap" \
		"https://user:s3cret@127.0.0.1:$SP/to/http/$HP/img.raw"
	assert_contains "$RUN_ERR" "error: $u: $DOWNGRADE" "$u"
	assert_eq "$before" "$(gets http /img.raw)" "GETs of /img.raw over http"
	# --json: the error event says the same.
	copy_fails "${TLS[@]}" --json --nobmap "$u"
	assert_contains "$RUN_ERR" '"event":"error","exit":3,"message":"'"$u: $DOWNGRADE"'"' "--json"
}
case_ "https image redirected to http" redirect_image

# The bmap: given with --bmap, or found next to the image.
redirect_bmap() {
	local u=$S/to/http/$HP/img.raw.bmap
	copy_fails "${TLS[@]}" --bmap "$u" "$S/img.raw"
	assert_contains "$RUN_ERR" "error: $u: $DOWNGRADE" "--bmap $u"
	# Discovery: the image's .bmap redirects; no other name is tried.
	copy_fails "${TLS[@]}" "$S/to/http/$HP/img.raw"
	assert_contains "$RUN_ERR" "error: $u: $DOWNGRADE" "discovered $u"
	assert_eq 0 "$(gets http /img.raw.bmap)" "GETs of /img.raw.bmap over http"
}
case_ "https bmap redirected to http" redirect_bmap

# The bmap's signature.
redirect_signature() {
	local u=$S/to/http/$HP/img.raw.bmap.asc
	copy_fails "${TLS[@]}" --bmap "$S/img.raw.bmap" --bmap-sig "$u" "$S/img.raw"
	assert_contains "$RUN_ERR" "error: $u: $DOWNGRADE" "--bmap-sig $u"
	assert_eq 0 "$(gets http /img.raw.bmap.asc)" "GETs of /img.raw.bmap.asc over http"
}
case_ "https signature redirected to http" redirect_signature

# What stays allowed: https to https, http to https (an upgrade), a
# relative redirect (the redirloop fault: to itself, until libcurl's limit).
redirect_allowed() {
	copy_ok "${TLS[@]}" "$S/to/https/$SP/img.raw"
	copy_ok "${TLS[@]}" "$H/to/https/$SP/img.raw"
	copy_fails "${TLS[@]}" --bmap "$IMG.bmap" "$S/_f/redirloop/x/img.raw"
	assert_contains "$RUN_ERR" "redirects followed" "a redirect loop"
}
case_ "redirects that stay allowed" redirect_allowed

# http may not go to ftp either; the message is ours.
redirect_other() {
	local u=$H/to/ftp/$HP/img.raw
	copy_fails --bmap "$IMG.bmap" "$u"
	assert_contains "$RUN_ERR" "error: $u: refusing the server's redirect from http to ftp (from http, redirects are followed to http and https only)" "$u"
	assert_not_contains "$RUN_ERR" "not supported or disabled" "$u"
}
case_ "http redirected to ftp" redirect_other

# --- SSH host keys -------------------------------------------------------------
SSH_PORT=
SSH_HOME=$E2E_TMP/home
start_ssh_server() {
	local s=$E2E_TMP/ssh
	start_sshd "$s" "$SSH_HOME" || return 1
	SSH_PORT=$SSHD_PORT
	ssh-keygen -q -t ed25519 -N '' -f "$s/other_key" ||
		fail "ssh-keygen failed"
	SSH_KEY=$(cut -d' ' -f1,2 "$s/host_key.pub")
	OTHER_KEY=$(cut -d' ' -f1,2 "$s/other_key.pub")
}
start_ssh_server || SSH_PORT=
USER_NAME=$(id -un)

# An unknown host key, with and without --insecure: refused, and the
# message says how to add it; doing so makes the copy work.
hostkey_unknown() {
	local u=sftp://$USER_NAME@127.0.0.1:$SSH_PORT$D/img.raw opt
	local shown=sftp://127.0.0.1:$SSH_PORT$D/img.raw
	local keyscan="ssh-keyscan -p $SSH_PORT 127.0.0.1 >> ~/.ssh/known_hosts"
	export HOME=$SSH_HOME
	rm -f "$HOME/.ssh/known_hosts"
	for opt in --insecure ""; do
		copy_fails --bmap "$IMG.bmap" ${opt:+"$opt"} "$u"
		assert_contains "$RUN_ERR" "error: $shown: SSH host key verification failed: the server's SSH host key is not in ~/.ssh/known_hosts; add it (after checking its fingerprint) with \"$keyscan\"" "$opt"
	done
	assert_not_contains "$RUN_ERR" "--insecure is about" "without --insecure"
	copy_fails --bmap "$IMG.bmap" --insecure "scp://$USER_NAME@127.0.0.1:$SSH_PORT$D/img.raw"
	assert_contains "$RUN_ERR" "$keyscan\" (--insecure is about TLS certificates only)" "scp"
	# What the message says to run, as it says it (~ is $HOME).
	if command -v ssh-keyscan >/dev/null; then
		bash -c "${keyscan//\~/\$HOME}" 2>"$E2E_TMP/keyscan.err" ||
			fail "$keyscan: $(cat "$E2E_TMP/keyscan.err")"
		copy_ok --bmap "$IMG.bmap" "$u"
	else
		skip_case "no ssh-keyscan to run"
	fi
}
# A known_hosts entry with another key: refused, --insecure or not.
hostkey_mismatch() {
	local u=sftp://$USER_NAME@127.0.0.1:$SSH_PORT$D/img.raw opt
	local shown=sftp://127.0.0.1:$SSH_PORT$D/img.raw
	export HOME=$SSH_HOME
	echo "[127.0.0.1]:$SSH_PORT $SSH_KEY" >"$HOME/.ssh/known_hosts"
	copy_ok --bmap "$IMG.bmap" --insecure "$u"
	echo "[127.0.0.1]:$SSH_PORT $OTHER_KEY" >"$HOME/.ssh/known_hosts"
	for opt in --insecure ""; do
		copy_fails --bmap "$IMG.bmap" ${opt:+"$opt"} "$u"
		assert_contains "$RUN_ERR" "error: $shown: SSH host key verification failed: the server's SSH host key differs from the one in ~/.ssh/known_hosts; if it changed on purpose, remove the old one with \"ssh-keygen -R '[127.0.0.1]:$SSH_PORT'\" and add the new one" "$opt"
	done
}
if [ -n "$SSH_PORT" ]; then
	case_ "unknown SSH host key, also with --insecure" hostkey_unknown
	case_ "changed SSH host key, also with --insecure" hostkey_mismatch
fi

# --- passwords -----------------------------------------------------------------
# Every failure with user:s3cret@ in each URL, with and without --json:
# the password is nowhere on stderr. Each case: WANT_RC ARG...
UH=http://user:s3cret@127.0.0.1:$HP
US=https://user:s3cret@127.0.0.1:$SP
DEAD=http://user:s3cret@127.0.0.1:$(free_port)
secret_cases=(
	"3 --nobmap $UH/missing.raw"
	"3 $UH/missing.raw"
	"2 $UH/nobmap.raw"
	"2 --bmap $UH/missing.bmap $UH/img.raw"
	"2 --bmap $UH/notbmap.bmap $UH/img.raw"
	"2 --bmap $UH/img.raw.bmap --bmap-sig $UH/missing.asc $UH/img.raw"
	"2 --nobmap $UH/img.raw.bmap"
	"2 gopher://user:s3cret@127.0.0.1/x"
	"2 --nobmap gopher://user:s3cret@127.0.0.1/x"
	"2 --nobmap $UH/a.7z"
	"2 --nobmap $UH/bad.xz"
	"2 --nobmap $UH/cut.gz"
	"3 --nobmap $DEAD/img.raw"
	"3 $DEAD/img.raw"
	"3 ${TLS[*]} --nobmap $US/to/http/$HP/img.raw"
	"3 ${TLS[*]} $US/to/http/$HP/img.raw"
	"3 --nobmap $US/img.raw"
	"3 --nobmap --retries 1 $UH/_f/dropevery=150000/s1/img.raw"
	"3 --nobmap $UH/_f/err500always/s2/img.raw --retries 1"
)
if [ -n "$SSH_PORT" ]; then
	secret_cases+=("3 --bmap $IMG.bmap sftp://user:s3cret@127.0.0.1:$SSH_PORT$D/img.raw")
fi
secrets() {
	local c want json leaks=() wrong=()
	export HOME=$E2E_TMP/nohome
	mkdir -p "$HOME"
	for c in "${secret_cases[@]}"; do
		want=${c%% *}
		for json in "" --json; do
			rm -f "$OUT/d"
			# shellcheck disable=SC2086 # the case is words
			run timeout 60 "$BMAPTK" copy $json ${c#* } "$OUT/d"
			# (A wrong status is reported after the leaks.)
			[ "$RUN_RC" = "$want" ] ||
				wrong+=("copy $json ${c#* }: exit $RUN_RC, expected $want: [$RUN_ERR]")
			[ "$RUN_RC" = 0 ] ||
				assert_no_file "$OUT/d" "DEST after copy $json ${c#* }"
			assert_contains "$RUN_ERR" "127.0.0.1" "stderr of copy $json ${c#* }"
			if grep -q s3cret <<<"$RUN_ERR"; then
				leaks+=("copy $json ${c#* }")
				note "the password leaks: $(grep s3cret <<<"$RUN_ERR" | head -n 1)"
			fi
		done
	done
	# check reads the image and finds the bmap the same way (a 404 image:
	# the URL's exit status, as copy's).
	for json in "" --json; do
		# shellcheck disable=SC2086
		run timeout 60 "$BMAPTK" check $json "$UH/missing.raw" "$IMG"
		[ "$RUN_RC" = 3 ] || fail "check $json: exit $RUN_RC: [$RUN_ERR]"
		! grep -q s3cret <<<"$RUN_ERR" || leaks+=("check $json")
	done
	[ ${#leaks[@]} = 0 ] || fail "the password is on stderr of ${#leaks[@]} runs: $(printf '[%s] ' "${leaks[@]}")"
	[ ${#wrong[@]} = 0 ] || fail "$(printf '%s; ' "${wrong[@]}")"
}
case_ "no password in any message" secrets

cases_done "all redirect, host key and password cases passed"
