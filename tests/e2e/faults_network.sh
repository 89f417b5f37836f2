# `bmaptk copy` from misbehaving HTTP(S) servers (remote_server.py's fault
# paths and its --mute mode): every failure must end, in bounded time, with
# exit 3, one error line naming the URL and the cause, and no DEST left;
# never a hang, never exit 0 with wrong data.
#
#   a connection closed mid-body on every request (no progress): gives up
#     after --retries, each retry announced; closed after K bytes on every
#     request: K < 1 MiB gives up too, K >= 1 MiB makes progress (the retry
#     budget is per stretch without 1 MiB of progress) and completes
#   a stall beyond --timeout on every request: ends after 2 x timeout
#     without a new byte, however many retries remain; a server that never answers
#     the first request: ends after one timeout
#   fewer body bytes than Content-Length (connection closed), and more
#     (the extra bytes never reach DEST)
#   a 206 answer from another byte than asked (labelled so): refused
#   a redirect loop: "redirect" in the error
#   a TLS handshake that never completes, a plain request never answered
#     (a TCP listener that accepts and stays silent), with --timeout 3
#
# Each bmaptk runs under `timeout 60`, so a hang fails the test instead of
# hanging CI.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd cmp zstd timeout "$PYTHON"
unset http_proxy https_proxy HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

SERVER=$(dirname "$0")/remote_server.py
MIB=$((1024 * 1024))
D=$E2E_TMP/www
mkdir "$D"
IMG=$D/img.raw
SIZE=$((8 * MIB + 4321))
"$PYTHON" - "$IMG" "$SIZE" <<'EOF' || fail "cannot generate the image"
import os
import random
import sys

MIB = 1024 * 1024
rng = random.Random(20241128)
path, size = sys.argv[1], int(sys.argv[2])
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, size)
for off, n in [(0, 300000), (2 * MIB, 2 * MIB + 500000),
               (6 * MIB + 777, MIB), (size - 4000, 4000)]:
    assert os.pwrite(fd, rng.randbytes(n), off) == n
os.close(fd)
EOF
"$BMAPTK" create "$IMG" -o "$IMG.bmap" 2>"$E2E_TMP/create.err" ||
	fail "bmaptk create: $(cat "$E2E_TMP/create.err")"
zstd -q -k "$IMG" || fail "zstd"
BMAP=$IMG.bmap
OUT=$E2E_TMP/out
mkdir "$OUT"

start_server http
start_server mute --mute
# PORT_http and PORT_mute are set by start_server.
# shellcheck disable=SC2154
H=http://127.0.0.1:$PORT_http
# shellcheck disable=SC2154
M=127.0.0.1:$PORT_mute

# bm WANT_RC MAX_SECONDS ARG...: run `bmaptk ARG...` under timeout 60;
# check its exit status, that it took at most MAX_SECONDS (ELAPSED has
# the time), empty stdout, no sanitizer report.
bm() {
	local want=$1 max=$2 t0
	shift 2
	t0=$EPOCHREALTIME
	run timeout 60 "$BMAPTK" "$@"
	ELAPSED=$("$PYTHON" -c 'import sys; print("%.1f" % (float(sys.argv[2]) - float(sys.argv[1])))' \
		"$t0" "$EPOCHREALTIME")
	[ "$RUN_RC" != 124 ] || fail "bmaptk $* hung: killed after 60 s; stderr: [$RUN_ERR]"
	assert_rc "$want" "bmaptk $*"
	"$PYTHON" -c 'import sys; sys.exit(float(sys.argv[1]) > float(sys.argv[2]))' \
		"$ELAPSED" "$max" ||
		fail "bmaptk $*: took $ELAPSED s, limit $max s; stderr: [$RUN_ERR]"
	assert_eq "" "$RUN_OUT" "stdout of bmaptk $*"
	assert_no_sanitizer "stderr of bmaptk $*"
}

# fails MAX_SECONDS URL [ARG...]: copy URL (with the local bmap) into a new
# DEST; exit 3 within MAX_SECONDS, an error line naming URL, no success
# line, DEST gone.
fails() {
	local max=$1 url=$2 d=$OUT/d
	shift 2
	rm -f "$d"
	bm 3 "$max" copy --bmap "$BMAP" "$@" "$url" "$d"
	assert_contains "$RUN_ERR" "error: $url: " "error line for $url"
	assert_not_contains "$RUN_ERR" "copied " "$url"
	assert_not_contains "$RUN_ERR" "ranges verified" "$url"
	assert_no_file "$d" "DEST after the failed copy of $url"
	note "$url: exit 3 after $ELAPSED s"
}

# retried N: exactly N retry notices on stderr.
retried() {
	local n
	n=$(grep -c 'retrying in' <<<"$RUN_ERR")
	assert_eq "$1" "$n" "retry notices in [$RUN_ERR]"
}

# --- closed mid-body on every request ------------------------------------------
# Byte 3 MiB lies in the second range; 2000000 in the .zst file. Backoff
# before retries 1 and 2: 0.5 s + 1 s.
drop_every() {
	local u=$H/_f/dropevery=$((3 * MIB))/a1/img.raw
	fails 10 "$u" --retries 2
	assert_contains "$RUN_ERR" "(at byte $((3 * MIB)); gave up after 2 retries)" "$u"
	retried 2
	u=$H/_f/dropevery=2000000/a2/img.raw.zst
	fails 10 "$u" --retries 2
	assert_contains "$RUN_ERR" "(at byte 2000000; gave up after 2 retries)" "$u"
	retried 2
}
case_ "closed mid-body on every request" drop_every

# Each response closed after K bytes: 256 KiB per try never makes 1 MiB of
# progress, so the retries run out; 1.5 MiB per try always does, so the
# download goes on and the copy is exact.
cut_every() {
	local u=$H/_f/cut=262144/b1/img.raw.zst d=$OUT/d
	fails 10 "$u" --retries 2
	assert_contains "$RUN_ERR" "gave up after 2 retries" "$u"
	u=$H/_f/cut=$((3 * MIB / 2))/b2/img.raw.zst
	rm -f "$d"
	bm 0 20 copy --bmap "$BMAP" --retries 2 "$u" "$d"
	assert_same_file "$IMG" "$d" "copy through 1.5 MiB pieces"
	assert_contains "$RUN_ERR" "retrying in 0.5 s (retry 1 of 2)" "$u"
	assert_not_contains "$RUN_ERR" "retry 2 of 2" "$u"
	rm -f "$d"
}
case_ "closed after K bytes on every request" cut_every

# --- stalls -----------------------------------------------------------------------
# Silent from byte 3 MiB on, every time: retries that bring no new byte do
# not multiply the wait; the run ends when no byte came for twice the
# timeout in all (6 s), after one retry.
stall_every() {
	local u=$H/_f/stallevery=$((3 * MIB))/c1/img.raw
	fails 10 "$u" --retries 2 --timeout 3
	assert_contains "$RUN_ERR" "the transfer stalled: no new byte for 6." "$u"
	assert_contains "$RUN_ERR" "twice the 3 s timeout (at byte $((3 * MIB)) of " "$u"
	retried 1
}
case_ "stall on every request" stall_every

# No answer to the very first request: nothing to resume, one timeout.
stall_head() {
	local u=$H/_f/stallhead/c2/img.raw
	fails 8 "$u" --retries 2 --timeout 3
	assert_contains "$RUN_ERR" "3 s" "$u"
	u=http://$M/img.raw
	fails 8 "$u" --retries 2 --timeout 3
}
case_ "a request never answered" stall_head

# --- Content-Length lies ---------------------------------------------------------
# 1000 bytes fewer than announced, connection closed: the resume gets none
# of them either.
short_body() {
	local u=$H/_f/short=1000/d1/img.raw
	fails 10 "$u" --retries 2
	assert_contains "$RUN_ERR" "gave up after 2 retries" "$u"
	u=$H/_f/short=1000/d2/img.raw.zst
	fails 10 "$u" --retries 2
	assert_contains "$RUN_ERR" "gave up after 2 retries" "$u"
}
case_ "fewer bytes than Content-Length" short_body

# 5000 bytes more than announced, on a kept-alive connection: the extra
# bytes are no part of the image. Either the copy is exact or it fails
# cleanly; never exit 0 with other bytes in DEST.
extra_body() {
	local u d=$OUT/d
	for u in "$H/_f/extra=5000/e1/img.raw" "$H/_f/extra=5000/e2/img.raw.zst"; do
		rm -f "$d"
		run timeout 60 "$BMAPTK" copy --bmap "$BMAP" --retries 2 "$u" "$d"
		[ "$RUN_RC" != 124 ] || fail "$u: bmaptk hung"
		assert_not_contains "$RUN_ERR" "Sanitizer" "$u"
		case $RUN_RC in
		0) assert_same_file "$IMG" "$d" "copy from $u" ;;
		3) assert_contains "$RUN_ERR" "error: $u: " "$u"
		   assert_no_file "$d" "$u" ;;
		*) fail "$u: exit $RUN_RC: [$RUN_ERR]" ;;
		esac
		note "$u: exit $RUN_RC"
	done
	rm -f "$d"
}
case_ "more bytes than Content-Length" extra_body

# --- a 206 from the wrong byte ------------------------------------------------------
# Asked for bytes from S, the server sends (and labels) bytes from S-4096:
# refused, not spliced, even with verification off.
shifted_range() {
	local u=$H/_f/shiftrange=4096/g1/img.raw
	fails 10 "$u" --retries 2 --no-verify
	assert_contains "$RUN_ERR" "the server sent bytes from " "$u"
}
case_ "a 206 from the wrong byte" shifted_range

# --- redirect loop -----------------------------------------------------------------
redirect_loop() {
	local u=$H/_f/redirloop/f1/img.raw
	fails 10 "$u" --retries 2
	assert_contains "$RUN_ERR" "redirect" "$u"
	[ "$(grep -c 'error:' <<<"$RUN_ERR")" = 1 ] ||
		fail "$u: more than one error line: [$RUN_ERR]"
}
case_ "redirect loop" redirect_loop

# --- TLS handshake that hangs ------------------------------------------------------
tls_hang() {
	local u=https://$M/img.raw
	fails 8 "$u" --retries 2 --timeout 3 --insecure
	u=https://$M/img.raw.zst
	fails 8 "$u" --retries 2 --timeout 3
}
case_ "TLS handshake that hangs" tls_hang

cases_done "all network fault cases passed"
