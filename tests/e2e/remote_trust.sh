# What an HTTP download may trust, and how long it may wait
# (remote_server.py on 127.0.0.1; DESIGN.md section 4: "HTTP: a transfer
# split into ranges or resumed after a drop is tied to the first answer
# with If-Range"; "every wait ends within 2 s of SIGINT or SIGTERM";
# "retries that make no progress do not multiply the wait").
#
#   versions: every ranged request after the first answer carries
#     If-Range with the first ETag, else its Last-Modified (also when the
#     ETag is weak, which If-Range must not carry); a server that sends
#     neither gets the file asked for once more, whole, and read as one
#     stream: a file that changes after the first request is copied as
#     one version (--nobmap, where no checksum would notice), and a drop
#     cannot be resumed (exit 3, the message says why); a file that
#     changes under If-Range (the server answers 200) is refused, exit 3
#   signals: SIGINT while the server sends headers and then nothing,
#     SIGTERM in the back-off between retries, SIGINT while a server
#     never answers: exit 130 within 2 s, "interrupted after writing"
#   dead servers: silent after the headers on every request, or closing
#     the connection at the same byte every time (--retries 10): exit 3
#     once no new byte came for twice --timeout, whatever retries are
#     left, saying how long it waited and how many bytes it had; a
#     transfer that stalls but makes progress between the stalls keeps
#     its --retries and completes
#
# Each bmaptk runs under a 60 s watchdog, so a hang fails the test.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd cmp zstd timeout stat "$PYTHON"
unset http_proxy https_proxy HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

SERVER=$(dirname "$0")/remote_server.py
MIB=$((1024 * 1024))
D=$E2E_TMP/www
mkdir "$D"
IMG=$D/img.raw
SIZE=$((8 * MIB + 4321))
# img.raw: sparse, 4 ranges; img.v2: the version the "change" fault
# serves after the first GET (every byte inverted); big.bin: 6 MiB of
# random bytes (its .zst is read in doubling requests).
"$PYTHON" - "$IMG" "$SIZE" "$D/img.v2" "$D/big.bin" <<'EOF' || fail "cannot generate the images"
import os
import random
import sys

MIB = 1024 * 1024
rng = random.Random(20241204)
path, size, v2, big = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, size)
for off, n in [(0, 300000), (2 * MIB, 2 * MIB + 500000),
               (6 * MIB + 777, MIB), (size - 4000, 4000)]:
    assert os.pwrite(fd, rng.randbytes(n), off) == n
os.close(fd)
with open(path, "rb") as f, open(v2, "wb") as g:
    g.write(bytes(b ^ 0xFF for b in f.read()))
with open(big, "wb") as f:
    f.write(rng.randbytes(6 * MIB + 999))
EOF
"$BMAPTK" create "$IMG" -o "$IMG.bmap" 2>"$E2E_TMP/create.err" ||
	fail "bmaptk create: $(cat "$E2E_TMP/create.err")"
zstd -q -k "$D/big.bin" || fail "zstd"
BMAP=$IMG.bmap
OUT=$E2E_TMP/out
mkdir "$OUT"
MTIME=$(stat -c %Y "$IMG")
# What remote_server.py sends for img.raw.
ETAG=$(printf '"%x-%x"' "$SIZE" "$MTIME")
LASTMOD=$("$PYTHON" -c 'import email.utils, sys; print(email.utils.formatdate(int(sys.argv[1]), usegmt=True).replace(" ", "_"))' "$MTIME")

start_server http
start_server mute --mute
# shellcheck disable=SC2154 # set by start_server
H=http://127.0.0.1:$PORT_http
# shellcheck disable=SC2154
M=127.0.0.1:$PORT_mute
LOG=$E2E_TMP/http.log

secs() { # T0 T1: T1 - T0 in seconds, one decimal
	"$PYTHON" -c 'import sys; print("%.1f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$1" "$2"
}
between() { # VALUE MIN MAX: MIN <= VALUE <= MAX
	"$PYTHON" -c 'import sys; v, a, b = map(float, sys.argv[1:]); sys.exit(not a <= v <= b)' "$@"
}

# bmt WANT_RC MAX_SECONDS ARG...: `bmaptk ARG...` under timeout 60: its
# exit status, at most MAX_SECONDS (ELAPSED), empty stdout.
bmt() {
	local want=$1 max=$2 t0
	shift 2
	t0=$EPOCHREALTIME
	run timeout 60 "$BMAPTK" "$@"
	ELAPSED=$(secs "$t0" "$EPOCHREALTIME")
	[ "$RUN_RC" != 124 ] || fail "bmaptk $* hung: killed after 60 s; stderr: [$RUN_ERR]"
	assert_rc "$want" "bmaptk $*"
	between "$ELAPSED" 0 "$max" ||
		fail "bmaptk $*: took $ELAPSED s, limit $max s; stderr: [$RUN_ERR]"
	assert_eq "" "$RUN_OUT" "stdout of bmaptk $*"
	assert_no_sanitizer "stderr of bmaptk $*"
}

# fails MAX_SECONDS URL [ARG...]: copy URL with the local bmap into a new
# DEST: exit 3 within MAX_SECONDS, an error naming URL, DEST gone.
fails() {
	local max=$1 url=$2 d=$OUT/d
	shift 2
	rm -f "$d"
	bmt 3 "$max" copy --bmap "$BMAP" "$@" "$url" "$d"
	assert_contains "$RUN_ERR" "error: $url: " "error line for $url"
	assert_not_contains "$RUN_ERR" "ranges verified" "$url"
	assert_no_file "$d" "DEST after the failed copy of $url"
	note "$url: exit 3 after $ELAPSED s"
}

# gets PATH: the log lines of the GETs of PATH, in order.
gets() {
	awk -v p="$1" '$1 == "GET" && $2 == p' "$LOG"
}

# --- versions --------------------------------------------------------------------
# Neither ETag nor Last-Modified, and the file changes after the first
# GET: without a bmap nothing checks the bytes, so only reading one
# stream keeps the versions apart. After the first answer no GET may ask
# for a range.
unversioned_change() {
	local p=/_f/noetag,nolm,change/a1/img.raw d=$OUT/d later
	rm -f "$d"
	bmt 0 20 copy --nobmap "$H$p" "$d"
	cmp -s "$IMG" "$d" || cmp -s "$D/img.v2" "$d" ||
		fail "$p: DEST is neither version of the file, but a mix: $(cmp "$IMG" "$d"; cmp "$D/img.v2" "$d")"
	later=$(gets "$p" | tail -n +2)
	[ -n "$later" ] || fail "$p: one GET only: [$(gets "$p")]"
	assert_eq "" "$(awk '$3 != "-"' <<<"$later")" "ranged GETs after the first answer"
	rm -f "$d"
}
case_ "no validators, a file that changes: one version" unversioned_change

# With a bmap, no validators (and a weak ETag only, which If-Range must
# not carry): one GET of the whole file after the first, exact copy.
unversioned_stream() {
	local p d=$OUT/d
	for p in /_f/noetag,nolm/a3/img.raw /_f/weak,nolm/a3w/img.raw; do
		rm -f "$d"
		bmt 0 20 copy --bmap "$BMAP" "$H$p" "$d"
		assert_same_file "$IMG" "$d" "copy of $p"
		assert_eq "1 -" "$(gets "$p" | tail -n +2 | awk '{ print $3 }' | uniq -c | awk '{ print $1, $2 }')" \
			"$p: GETs after the first (count, Range): [$(gets "$p")]"
		assert_eq "" "$(gets "$p" | awk '$6 != "-"')" "$p: GETs with If-Range"
	done
	rm -f "$d"
}
case_ "no validators: one stream" unversioned_stream

# No validators and a drop: resuming could splice two versions.
unversioned_drop() {
	local u=$H/_f/noetag,nolm,drop=$((3 * MIB))/a2/img.raw
	fails 10 "$u"
	assert_contains "$RUN_ERR" "the server gave no ETag or Last-Modified to tie a resumed request to the same version of the file, so the download cannot resume at byte $((3 * MIB))" "$u"
	assert_not_contains "$RUN_ERR" "retrying" "$u"
}
case_ "no validators, a drop: no resume" unversioned_drop

# If-Range on every GET after the first: the ETag, else Last-Modified
# (also when the ETag is weak). A drop's resume as well.
if_range() {
	local p want d=$OUT/d n
	for p in "/_f/plain/a4/img.raw $ETAG" "/_f/drop=$((3 * MIB))/a4d/img.raw $ETAG" \
		"/_f/noetag/a5/img.raw $LASTMOD" "/_f/weak/a5w/img.raw $LASTMOD"; do
		want=${p#* }
		p=${p%% *}
		rm -f "$d"
		bmt 0 20 copy --bmap "$BMAP" "$H$p" "$d"
		assert_same_file "$IMG" "$d" "copy of $p"
		assert_eq "-" "$(gets "$p" | head -n 1 | awk '{ print $6 }')" "$p: If-Range of the first GET"
		n=$(gets "$p" | tail -n +2 | wc -l)
		[ "$n" -ge 2 ] || fail "$p: only $n GETs after the first: [$(gets "$p")]"
		assert_eq "" "$(gets "$p" | tail -n +2 | awk -v w="$want" '$3 == "-" || $4 != 206 || $6 != w')" \
			"$p: GETs after the first without Range, 206 and If-Range $want"
	done
	rm -f "$d"
}
case_ "If-Range on every later request" if_range

# The file changes after the first GET: If-Range makes the server answer
# the next ranged request with the whole new file (200), which is no part
# of the image: refused, also without verification.
if_range_changed() {
	local p=/_f/change/a6/img.raw
	fails 10 "$H$p" --no-verify
	assert_contains "$RUN_ERR" "the file changed on the server during the download (ETag $ETAG, now " "$p"
	# The server logs a request when it is done sending, which may be
	# after bmaptk has hung up and exited.
	for _ in $(seq 100); do
		[ -n "$(gets "$p" | awk -v w="$ETAG" '$3 != "-" && $4 == 200 && $6 == w')" ] &&
			break
		sleep 0.05
	done
	[ -n "$(gets "$p" | awk -v w="$ETAG" '$3 != "-" && $4 == 200 && $6 == w')" ] ||
		fail "$p: no 200 answer to a ranged GET with If-Range $ETAG: [$(gets "$p")]"
}
case_ "a changed file under If-Range" if_range_changed

# --- signals ---------------------------------------------------------------------
# bg ARG...: `bmaptk ARG...` in the background (BG_PID), output in
# $E2E_TMP/bg.{out,err}.
bg() {
	rm -f "$E2E_TMP/bg.out" "$E2E_TMP/bg.err"
	"$BMAPTK" "$@" >"$E2E_TMP/bg.out" 2>"$E2E_TMP/bg.err" &
	BG_PID=$!
	on_exit "kill -9 $BG_PID"
}
# wait_until SECONDS CMD...: until CMD succeeds; fail if bmaptk ends first.
wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		kill -0 "$BG_PID" 2>/dev/null ||
			fail "bmaptk ended early: $(cat "$E2E_TMP/bg.err")"
		((SECONDS < deadline)) || fail "timed out waiting for: $*"
		sleep 0.05
	done
}
# stop SIGNAL MAX_SECONDS: send SIGNAL, wait (10 s at most, then kill -9)
# and check that bmaptk ended within MAX_SECONDS; RUN_RC, RUN_ERR.
stop() {
	local t0=$EPOCHREALTIME i
	kill "-$1" "$BG_PID"
	for ((i = 0; i < 200; i++)); do
		kill -0 "$BG_PID" 2>/dev/null || break
		sleep 0.05
	done
	kill -9 "$BG_PID" 2>/dev/null
	RUN_RC=0
	wait "$BG_PID" || RUN_RC=$?
	ELAPSED=$(secs "$t0" "$EPOCHREALTIME")
	RUN_ERR=$(cat "$E2E_TMP/bg.err")
	between "$ELAPSED" 0 "$2" ||
		fail "SIG$1: bmaptk took $ELAPSED s to stop (limit $2 s; exit $RUN_RC): [$RUN_ERR]"
	assert_rc 130 "exit after SIG$1"
	assert_no_sanitizer
	assert_eq "" "$(cat "$E2E_TMP/bg.out")" "stdout"
	note "SIG$1: exit 130 after $ELAPSED s"
}
logged() { # PATH: the server logged a GET of PATH
	[ -n "$(gets "$1")" ]
}
said() { # TEXT: bmaptk's stderr has TEXT
	grep -qF -- "$1" "$E2E_TMP/bg.err"
}

asked_for() { # PATH BYTE: a GET of PATH asked for a range holding BYTE
	gets "$1" | awk -v b="$2" '{ split(substr($3, 7), r, "-") }
		$3 ~ /^bytes=/ && r[1] <= b && (r[2] == "" || r[2] >= b) { f = 1 }
		END { exit !f }'
}

# Headers, then silence (the stall detection would wait 60 s): the image
# is opened (its first bytes are read to find its format) and never
# comes; SIGINT ends the wait all the same.
sigint_headers() {
	local p=/_f/stallevery=0/b1/img.raw d=$OUT/d
	rm -f "$d"
	bg copy --bmap "$BMAP" "$H$p" "$d"
	wait_until 10 logged "$p"
	sleep 0.5
	stop INT 2
	assert_contains "$RUN_ERR" "error: $H$p: interrupted" "$p"
	assert_no_file "$d" "DEST after the interrupted copy"
}
case_ "SIGINT while the server sends headers and nothing" sigint_headers

# Mid-copy: silent from byte 3 MiB on.
sigint_stall() {
	local p=/_f/stall=$((3 * MIB))/b2/img.raw d=$OUT/d
	rm -f "$d"
	bg copy --bmap "$BMAP" "$H$p" "$d"
	wait_until 10 asked_for "$p" $((3 * MIB))
	sleep 0.5
	stop INT 2
	assert_contains "$RUN_ERR" "interrupted after writing" "$p"
	assert_no_file "$d" "DEST after the interrupted copy"
}
case_ "SIGINT during a stalled download" sigint_stall

# The 4 s back-off before the 4th retry.
sigterm_backoff() {
	local p=/_f/dropevery=$((3 * MIB))/b3/img.raw d=$OUT/d
	rm -f "$d"
	bg copy --bmap "$BMAP" --retries 10 "$H$p" "$d"
	wait_until 15 said "retrying in 4.0 s (retry 4 of 10)"
	sleep 0.3
	stop TERM 2
	assert_contains "$RUN_ERR" "interrupted after writing" "$p"
	assert_no_file "$d" "DEST after the interrupted copy"
}
case_ "SIGTERM during the back-off" sigterm_backoff

# A server that accepts the connection and never answers: the image
# cannot even be opened; the interruption still ends the wait.
sigint_no_answer() {
	local d=$OUT/d
	rm -f "$d"
	bg copy --bmap "$BMAP" "http://$M/img.raw" "$d"
	wait_until 10 grep -q ACCEPT "$E2E_TMP/mute.log"
	sleep 0.5
	stop INT 2
	assert_contains "$RUN_ERR" "interrupted" "no answer"
	assert_no_file "$d" "DEST"
}
case_ "SIGINT while the server does not answer" sigint_no_answer

# --- dead servers ----------------------------------------------------------------
# Headers, then silence, on every request: a stall of 2 s, 0.5 s of
# back-off, and the second try ends when 4 s without a new byte are up
# (before: every retry waited its full timeout, 5 x 60 s by default).
dead_after_headers() {
	local u=$H/_f/stallevery=0/c1/img.raw
	fails 7 "$u" --timeout 2 --retries 5
	between "$ELAPSED" 3.5 7 || fail "$u: gave up after $ELAPSED s, not after about 4 s"
	assert_contains "$RUN_ERR" "no new byte for 4." "$u"
	assert_contains "$RUN_ERR" "twice the 2 s timeout (at byte 0 of $SIZE; 0 bytes received; 1 retry)" "$u"
}
case_ "silent after the headers on every request" dead_after_headers

# Closed at the same byte on every request: back-off 0.5 + 1 + 2 s, and
# the next one (4 s) would pass 4 s without a new byte; --retries 10
# would have waited about 150 s.
dead_at_byte() {
	local u=$H/_f/dropevery=$((3 * MIB))/c2/img.raw
	fails 7 "$u" --timeout 2 --retries 10
	assert_contains "$RUN_ERR" "; no new byte for 3." "$u"
	assert_contains "$RUN_ERR" "in all, and the next retry would pass twice the 2 s timeout (at byte $((3 * MIB)) of $SIZE; " "$u"
	assert_contains "$RUN_ERR" " bytes received; 3 retries)" "$u"
}
case_ "closed at the same byte on every request" dead_at_byte

# Silent after 1.25 MiB of every long request, --timeout 2 --retries 1:
# each stall (2 s + 0.5 s back-off) comes after new bytes, so neither the
# retries nor the time without a new byte (4 s) run out.
stalls_with_progress() {
	local u=$H/_f/stallcut=$((5 * MIB / 4))/c3/big.bin.zst d=$OUT/d n
	rm -f "$d"
	bmt 0 30 copy --nobmap --timeout 2 --retries 1 "$u" "$d"
	assert_same_file "$D/big.bin" "$d" "copy of $u"
	n=$(grep -c 'retrying in 0.5 s (retry 1 of 1)' <<<"$RUN_ERR")
	[ "$n" -ge 2 ] || fail "$u: $n stalls, expected 2 or more: [$RUN_ERR]"
	rm -f "$d"
}
case_ "stalls with progress between them" stalls_with_progress

cases_done "all trust and wait cases passed"
