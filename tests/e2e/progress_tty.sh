#!/usr/bin/env bash
# The progress line on a real terminal (a tmux pane, captured as text):
#   - at 80 and at 60 columns one line, redrawn in place, never wider than
#     the width less one column (no wrapped line, no scrolled copies, no
#     stray control characters); the bar at 80, no bar but the numbers,
#     the speed and the ETA at 60; 100 % at the end and the copy right;
#   - during a stall of the input the line still changes (a clock redraws
#     it; the speed is over the last seconds) while the bytes stay;
#   - the pane resized from 80 to 45 columns mid-copy (SIGWINCH): the next
#     line fits the new width and drops the bar and the ETA;
#   - an image of unknown size (--nobmap from a pipe): bytes and speed,
#     no '%', no ETA, no nonsense total;
#   - ^C during a stall still exits 130 at once, its message on a line of
#     its own;
#   - -q prints nothing, --json prints only JSON events, the bmaptool
#     alias prints its "N% copied" and nothing wider than the terminal
#     (none at all where "100% copied" would not fit);
# and with stderr a file, not a terminal: the line per 10 %, no carriage
# return, no escape sequence.
#
# The image: 256 MiB, sparse, 24 MiB mapped at 0, 96 and 200 MiB, fed
# through a FIFO (or a pipe) by a Python loop that sleeps after each MiB
# of data and stalls at 100 MiB, saying so in a marker file.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd tmux mkfifo cmp "$PYTHON"

e2e_ramdir D
cd "$D" || fail "cd $D"

"$PYTHON" - disk.img small.img <<'EOF' || fail "cannot make the images"
import os, random, sys
MIB = 1024 * 1024
rng = random.Random(7)
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, 256 * MIB)
for off in (0, 96, 200):
    os.pwrite(fd, rng.randbytes(8 * MIB), off * MIB)
os.close(fd)
with open(sys.argv[2], "wb") as f:
    f.write(rng.randbytes(24 * MIB))
EOF
"$BMAPTK" -q create -o disk.img.bmap disk.img 2>"$E2E_TMP/create.err" ||
	fail "bmaptk create: $(cat "$E2E_TMP/create.err")"

# feed.py IMAGE OUT STALL_AT_MIB STALL_S MARKER: IMAGE to OUT 1 MiB at a
# time, 30 ms after each MiB holding data; after STALL_AT_MIB MiB it
# writes MARKER, then stalls STALL_S s. A reader that stops early is fine.
cat >feed.py <<'EOF'
import os, sys, time
src = open(sys.argv[1], "rb")
dst = open(sys.argv[2], "wb")
stall_at, stall = int(sys.argv[3]) << 20, float(sys.argv[4])
marker, sent, zero = sys.argv[5], 0, bytes(1 << 20)
try:
    while True:
        b = src.read(1 << 20)
        if not b:
            break
        dst.write(b)
        dst.flush()
        sent += len(b)
        if b != zero[:len(b)]:
            time.sleep(0.03)
        if sent == stall_at:
            open(marker, "w").close()
            time.sleep(stall)
    dst.close()
except (BrokenPipeError, KeyboardInterrupt):
    pass
EOF

# check.py SCREEN WIDTH MODE: SCREEN is a pane captured as text. Its
# lines that are not bmaptk's messages must be exactly one progress line,
# printable ASCII, at most WIDTH - 1 long, in the form of MODE: "bar"
# (known size, with a bar), "nobar" (known size, no bar), "unknown"
# (bytes and speed only). Prints that line. With "--last", only the last
# non-empty line is looked at (what was above it may be a resize's
# leftovers).
cat >check.py <<'EOF'
import re, sys
args = sys.argv[1:]
last = "--last" in args
args = [a for a in args if a != "--last"]
path, width, mode = args[0], int(args[1]), args[2]
text = open(path, "rb").read().decode("utf-8", "replace")
lines = [l.rstrip(" ") for l in text.split("\n")]
lines = [l for l in lines if l]
def fail(msg):
    sys.exit("%s: %s; screen:\n%s" % (path, msg, text))
if last:
    prog = lines[-1:]
else:
    prog = [l for l in lines if not l.startswith("bmaptk: ")]
if len(prog) != 1:
    fail("%d progress lines, not 1" % len(prog))
line = prog[0]
if any(not (" " <= c <= "~") for c in line):
    fail("not printable: %r" % line)
if len(line) > width - 1:
    fail("%d columns wide, more than %d" % (len(line), width - 1))
SIZE = r"\d+(?:\.\d)? (?:bytes|KiB|MiB|GiB)"
known = re.compile(r"copying(?P<bar> \[#* *\])? +(?P<done>\d{1,3}%% %s/%s)"
                   r"(?P<rate> %s/s)?(?P<eta> ETA \d+:\d\d(?::\d\d)?)?$"
                   % (SIZE, SIZE, SIZE))
unknown = re.compile(r"copying (?P<done>%s)(?P<rate> %s/s)?$" % (SIZE, SIZE))
m = (unknown if mode == "unknown" else known).match(line)
if not m:
    fail("not a %s progress line: %r" % (mode, line))
if mode == "bar" and not m.group("bar"):
    fail("no bar at %d columns: %r" % (width, line))
if mode == "nobar" and m.group("bar"):
    fail("a bar at %d columns: %r" % (width, line))
if mode == "unknown" and ("%" in line or "ETA" in text or "PiB" in text):
    fail("a percent, an ETA or a made-up total without a size: %r" % line)
print(line)
EOF

SOCK=$E2E_TMP/tmux.sock
tm() { # our own server, whatever tmux the test itself runs in
	env -u TMUX tmux -S "$SOCK" -f /dev/null "$@"
}
on_exit "tmux -S '$SOCK' kill-server"

# pane NAME WIDTH CMD: CMD (bash, in $D, bmaptk as \$BMAPTK) in a new
# detached WIDTH x 24 terminal; its exit status is then in NAME.rc, and
# the pane stays as it is until the end.
pane() {
	local name=$1 width=$2
	rm -f "$name.rc" "$name.stalled" "$name.fifo" "$name.out"
	mkfifo "$name.fifo" || fail "mkfifo"
	{
		printf 'cd %q || exit 1\n' "$D"
		printf 'export BMAPTK=%q ASAN_OPTIONS=%q UBSAN_OPTIONS=%q\n' \
			"$BMAPTK" "${ASAN_OPTIONS:-}" "${UBSAN_OPTIONS:-}"
		printf '%s\n' "$3"
		printf 'echo $? >%q.rc.tmp && mv %q.rc.tmp %q.rc\n' \
			"$name" "$name" "$name"
		printf 'exec sleep 600\n'
	} >"$name.sh"
	tm new-session -d -s "$name" -x "$2" -y 24 "bash $D/$name.sh" ||
		fail "tmux cannot start a session"
}

# wait_file PATH SECONDS: until PATH exists, or fail.
wait_file() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		[ -e "$1" ] && return 0
		sleep 0.1
	done
	fail "no $1 after $2 s"
}

# capture NAME FILE [-J]: the pane's text (-J: wrapped lines joined).
capture() {
	tm capture-pane -p "${@:3}" -t "$1" >"$2" || fail "capture-pane $1"
}

# finish NAME: wait for the copy in NAME to end; its exit status.
finish() {
	wait_file "$1.rc" 60
	cat "$1.rc"
}

# fifo_copy NAME WIDTH [STALL_S]: in a pane, copy disk.img through the
# FIFO NAME.fifo to NAME.out, stalling STALL_S s (3) at 100 MiB.
fifo_copy() {
	# shellcheck disable=SC2016 # $BMAPTK is the pane's
	pane "$1" "$2" "$(printf '%q feed.py disk.img %q 100 %s %q &
"$BMAPTK" copy --bmap disk.img.bmap %q %q' "$PYTHON" "$1.fifo" \
		"${3:-3}" "$1.stalled" "$1.fifo" "$1.out")"
}

# done_part LINE: "50% 12.0 MiB/24.0 MiB" of a progress line.
done_part() {
	grep -oE '[0-9]+% [0-9.]+ [A-Za-z]+/[0-9.]+ [A-Za-z]+' <<<"$1"
}

# A copy at WIDTH columns: during the stall, two captures 1 s apart.
stalled_copy() { # NAME WIDTH MODE
	local name=$1 width=$2 mode=$3 a b
	fifo_copy "$name" "$width"
	wait_file "$name.stalled" 60
	sleep 0.7
	capture "$name" "$name.a" -J
	sleep 1
	capture "$name" "$name.b" -J
	a=$("$PYTHON" check.py "$name.a" "$width" "$mode" 2>&1) || fail "$a"
	b=$("$PYTHON" check.py "$name.b" "$width" "$mode" 2>&1) || fail "$b"
	note "$width columns, stalled: [$a] then [$b]"
	[ "$a" != "$b" ] ||
		fail "$width columns: the line did not change in 1 s of stall: [$a]"
	# The same bytes (nothing came), another speed: the clock drew it.
	assert_eq "50% 12.0 MiB/24.0 MiB" "$(done_part "$a")" \
		"$width columns: the bytes in the stall"
	assert_eq "$(done_part "$a")" "$(done_part "$b")" \
		"$width columns: nothing came in the stall, the bytes stay"
	[ "$(finish "$name")" = 0 ] || fail "$width columns: copy failed"
	capture "$name" "$name.end" -J
	b=$("$PYTHON" check.py "$name.end" "$width" "$mode" 2>&1) || fail "$b"
	assert_contains "$b" " 100% 24.0 MiB/24.0 MiB" "$width columns: the end"
	grep -q '^bmaptk: copied' "$name.end" ||
		fail "$width columns: no summary after the line: $(cat "$name.end")"
	assert_same_file disk.img "$name.out" "$width columns: the copy"
	printf '%s\n' "$a"
}

case_80() {
	local a
	a=$(stalled_copy w80 80 bar) || exit 1
	# 80 columns have room for it all.
	assert_contains "$a" "/s" "80 columns: the speed"
	assert_contains "$a" " ETA " "80 columns: the ETA"
}
case_ "80 columns: bar, numbers, speed, ETA; redrawn in a stall" case_80

case_60() {
	local a
	a=$(stalled_copy w60 60 nobar) || exit 1
	assert_contains "$a" "/s" "60 columns: the speed stays"
}
case_ "60 columns: the bar goes first" case_60

case_resize() {
	local s
	fifo_copy rs 80 4
	wait_file rs.stalled 60
	sleep 0.7
	capture rs rs.a -J
	s=$("$PYTHON" check.py rs.a 80 bar 2>&1) || fail "$s"
	tm resize-window -t rs -x 45 -y 24 || fail "tmux resize-window"
	# The clock draws within 0.25 s of the signal.
	sleep 1
	capture rs rs.b
	s=$("$PYTHON" check.py --last rs.b 45 nobar 2>&1) || fail "$s"
	note "resized to 45 columns: [$s]"
	assert_not_contains "$s" "ETA" "45 columns: the ETA goes before the speed"
	assert_contains "$s" "/s" "45 columns: the speed stays"
	[ "$(finish rs)" = 0 ] || fail "the resized copy failed"
	capture rs rs.end
	grep -q ' 100% 24.0 MiB/24.0 MiB' rs.end ||
		fail "no 100% after the resize: $(cat rs.end)"
	assert_same_file disk.img rs.out "the resized copy"
}
case_ "resized mid-copy: SIGWINCH, the line fits again" case_resize

case_unknown() {
	local a b
	pane un 80 "$PYTHON feed.py small.img /dev/stdout 12 2.5 un.stalled |
\"\$BMAPTK\" copy --nobmap /dev/stdin un.out"
	wait_file un.stalled 60
	sleep 0.7
	capture un un.a -J
	sleep 1
	capture un un.b -J
	a=$("$PYTHON" check.py un.a 80 unknown 2>&1) || fail "$a"
	b=$("$PYTHON" check.py un.b 80 unknown 2>&1) || fail "$b"
	note "unknown size, stalled: [$a] then [$b]"
	assert_contains "$a" "copying 12.0 MiB " "bytes so far"
	[ "$a" != "$b" ] || fail "unknown size: no redraw in a stall: [$a]"
	[ "$(finish un)" = 0 ] || fail "the copy from a pipe failed"
	capture un un.end -J
	b=$("$PYTHON" check.py un.end 80 unknown 2>&1) || fail "$b"
	assert_contains "$b" "copying 24.0 MiB" "unknown size: the end"
	assert_same_file small.img un.out "the copy from a pipe"
}
case_ "unknown size: bytes and speed, no % or ETA" case_unknown

case_interrupt() {
	local i s
	fifo_copy in 80 20
	wait_file in.stalled 60
	sleep 0.7
	tm send-keys -t in C-c
	for ((i = 0; i < 50; i++)); do
		[ -e in.rc ] && break
		sleep 0.1
	done
	[ -e in.rc ] || fail "^C in a stall: still running after 5 s"
	assert_eq 130 "$(cat in.rc)" "^C in a stall: exit status"
	capture in in.end -J
	grep -q '^bmaptk: .*interrupted' in.end ||
		fail "^C: no 'interrupted' message on its own line: $(cat in.end)"
	# (the terminal's echo of ^C may follow it)
	s=$(grep '^copying' in.end | sed 's/\^C$//') ||
		fail "^C: no progress line left"
	"$PYTHON" check.py --last <(printf '%s\n' "$s") 80 bar >/dev/null ||
		fail "^C: the last progress line: [$s]"
}
case_ "^C in a stall: exits 130 at once" case_interrupt

case_quiet() {
	pane q 80 "$PYTHON feed.py disk.img q.fifo 100 0.5 q.stalled &
\"\$BMAPTK\" -q copy --bmap disk.img.bmap q.fifo q.out"
	[ "$(finish q)" = 0 ] || fail "-q copy failed"
	capture q q.end -J
	[ -z "$(tr -d ' \n' <q.end)" ] || fail "-q printed: $(cat q.end)"
	assert_same_file disk.img q.out "the -q copy"
}
case_ "-q on a terminal: nothing" case_quiet

case_json() {
	pane js 80 "$PYTHON feed.py disk.img js.fifo 100 1 js.stalled &
\"\$BMAPTK\" --json copy --bmap disk.img.bmap js.fifo js.out"
	[ "$(finish js)" = 0 ] || fail "--json copy failed"
	capture js js.end -J
	"$PYTHON" - js.end <<'EOF' || fail "--json on a terminal: $(cat js.end)"
import json, sys
evs = []
for l in open(sys.argv[1]):
    l = l.strip()
    if l:
        evs.append(json.loads(l))  # a progress line would not parse
assert any(e["event"] == "progress" for e in evs), evs
assert any(e["event"] == "summary" for e in evs), evs
EOF
	assert_same_file disk.img js.out "the --json copy"
}
case_ "--json on a terminal: JSON only" case_json

case_alias() {
	local s
	{ mkdir -p bin && ln -sf "$BMAPTK" bin/bmaptool; } || fail "the alias"
	pane al80 80 "bin/bmaptool copy disk.img al80.out"
	pane al20 20 "bin/bmaptool copy disk.img al20.out"
	[ "$(finish al80)" = 0 ] || fail "alias copy at 80 columns failed"
	[ "$(finish al20)" = 0 ] || fail "alias copy at 20 columns failed"
	capture al80 al80.end -J
	capture al20 al20.end -J
	grep -qx 'bmaptool: info: 100% copied' al80.end ||
		fail "alias, 80 columns: no 100% copied: $(cat al80.end)"
	s=$(grep -E '[0-9]+% copied' al80.end | awk 'length > 80')
	[ -z "$s" ] || fail "alias, 80 columns: too wide: $s"
	! grep -Eq '[0-9]+% copied' al20.end ||
		fail "alias, 20 columns: a progress line wraps: $(cat al20.end)"
	assert_same_file disk.img al80.out "alias copy"
	assert_same_file disk.img al20.out "alias copy, narrow"
}
case_ "the bmaptool alias: its format, never wider" case_alias

case_pipe() {
	local err
	rm -f p.fifo p.stalled
	mkfifo p.fifo || fail "mkfifo"
	"$PYTHON" feed.py disk.img p.fifo 100 1.2 p.stalled &
	run "$BMAPTK" copy --bmap disk.img.bmap p.fifo p.out
	wait
	assert_rc 0 "copy with stderr a file"
	assert_no_sanitizer "copy with stderr a file"
	err=$(cat "$E2E_TMP/run.err")
	[ "$(tr -d '\r\033' <"$E2E_TMP/run.err")" = "$err" ] ||
		fail "a carriage return or an escape with stderr a file: $(cat -v "$E2E_TMP/run.err")"
	# Not 50 %: it came before a second had passed.
	assert_contains "$err" "bmaptk: copying: 60% (15.0 MiB of 24.0 MiB)" \
		"the line per 10 %"
	assert_contains "$err" "bmaptk: copying: 100% (24.0 MiB of 24.0 MiB)" \
		"the line per 10 %: the last"
	assert_not_contains "$err" "ETA" "no bar with stderr a file"
	[ "$(grep -c '^bmaptk: copying: ' "$E2E_TMP/run.err")" -le 10 ] ||
		fail "more than a line per 10 %: $err"
	assert_same_file disk.img p.out "the copy with stderr a file"

	# Unknown size, stderr a pipe: nothing made up either.
	"$PYTHON" feed.py small.img /dev/stdout 12 1.2 p2.stalled |
		"$BMAPTK" copy --nobmap /dev/stdin p2.out 2>&1 | cat >p2.err
	[ "$(tr -d '\r\033' <p2.err)" = "$(cat p2.err)" ] ||
		fail "a carriage return on a pipe: $(cat -v p2.err)"
	assert_not_contains "$(cat p2.err)" "PiB" "unknown size on a pipe"
	assert_not_contains "$(cat p2.err)" "ETA" "unknown size on a pipe"
	assert_same_file small.img p2.out "the copy from a pipe to a pipe"
}
case_ "stderr a file or a pipe: lines, no carriage returns" case_pipe

cases_done "progress fits the terminal, follows the clock, says no nonsense"
