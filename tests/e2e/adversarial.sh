# An adversarial matrix of `bmaptk copy`: every way of naming the image
# (a file, a symlink, a hard link, `-` from a file and from a pipe,
# /dev/stdin, a process substitution, a FIFO by name, a read-only loop
# device, a file:// URL) x every kind of destination (a new file, an
# existing one larger and smaller than the image, a loop device, /dev/null
# and a symlink to it, a directory, a FIFO with a reader) x every bmap
# mode (discovered, --bmap, --nobmap) x
# every codec (raw, gzip, xz, bzip2, zstd, made by the real tools); then
# destinations that are an input (self-targeting) and broken inputs (a
# truncated or corrupt stream, an image shorter than its bmap, a bmap with
# a wrong range checksum, stale file checksum or bad ranges).
#
# Every run must end in one of exactly two ways (DESIGN.md §4):
#  (a) exit 0, the destination equals the image (a file: byte for byte and
#      of the image's size; a block device: the mapped ranges, or the whole
#      image with --nobmap, and nothing else changed, not even past
#      ImageSize; /dev/null: taken only to verify; a FIFO: its reader
#      got the image), a "copied" summary;
#  (b) exit 1, 2 or 3, an error line naming the file at fault, no "copied"
#      summary, and every destination as it was (a pre-existing one keeps
#      its pattern bytes) unless the message says how it was left
#      ("removed the partially written file", "incomplete"); for failures
#      that can be seen before writing (bmap problems, a destination that
#      is an input) nothing may change at all.
# Always: stdout empty, no sanitizer report, the inputs unchanged, and no
# run longer than 20 s (every call is under `timeout`).
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd cmp timeout mkfifo gzip xz bzip2 zstd "$PYTHON"

T0=$(date +%s)
e2e_ramdir R
mkdir "$R/img" "$R/keep"
IMG=$R/img/disk.img
BMAP=$IMG.bmap
# 4 MiB + 12800: a multiple of 512 (a loop device of it is the whole
# image) that ends 512 bytes into its last 4 KiB block. Little data
# (470 KiB in 5 ranges), so that even bzip2 under ASan is quick.
SIZE=4207104
MIB=$((1024 * 1024))
"$PYTHON" - "$IMG" "$SIZE" "$R/pat.big" "$R/pat.small" <<'EOF' ||
import os
import random
import sys

MIB = 1024 * 1024
path, size = sys.argv[1], int(sys.argv[2])
rng = random.Random(20261205)
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, size)
text = b"".join(b"adversarial line %d\n" % i for i in range(20000))
for off, data in [(0, rng.randbytes(64 * 1024)),
                  (1 * MIB, rng.randbytes(256 * 1024 + 12288)),
                  (2 * MIB + 8192, text[:128 * 1024]),
                  (3 * MIB + 1000, rng.randbytes(3000)),
                  (size - 6000, rng.randbytes(6000))]:
    assert os.pwrite(fd, data, off) == len(data)
os.close(fd)
# Patterns for destinations that exist before the copy: neither zeros nor
# anything in the image.
prng = random.Random(99)
open(sys.argv[3], "wb").write(prng.randbytes(8 * MIB))
open(sys.argv[4], "wb").write(prng.randbytes(1 * MIB))
EOF
	fail "cannot generate the image"
"$BMAPTK" create "$IMG" -o "$BMAP" 2>"$E2E_TMP/create.err" ||
	fail "bmaptk create: $(cat "$E2E_TMP/create.err")"
gzip -n -c "$IMG" >"$IMG.gz" && xz -T1 -c "$IMG" >"$IMG.xz" &&
	bzip2 -c "$IMG" >"$IMG.bz2" && zstd -q -c "$IMG" >"$IMG.zst" ||
	fail "cannot compress the image"
cp -p "$R/img/"* "$R/keep/"
PAT_BIG=$R/pat.big
PAT_SMALL=$R/pat.small
declare -A EXT=([raw]= [gzip]=.gz [xz]=.xz [bzip2]=.bz2 [zstd]=.zst)
CODECS=(raw gzip xz bzip2 zstd)

# expect_dev IMAGE BMAP|- OUT: what an 8 MiB pattern-filled device holds
# after IMAGE is copied onto it: the pattern, with the bmap's mapped ranges
# (or, for "-", the whole image) replaced by the image's bytes, never a
# byte past the image's end.
expect_dev() {
	"$PYTHON" - "$PAT_BIG" "$@" <<'EOF'
import re
import sys

pat, img, bmap, out = sys.argv[1:]
dev = bytearray(open(pat, "rb").read())
data = open(img, "rb").read()
if bmap == "-":
    spans = [(0, len(data))]
else:
    text = open(bmap).read()
    bs = int(re.search(r"<BlockSize>\s*(\d+)", text).group(1))
    spans = []
    for m in re.finditer(r"<Range[^>]*>\s*(\d+)\s*(?:-\s*(\d+))?\s*</Range>",
                         text):
        a = int(m.group(1))
        b = int(m.group(2) or a)
        spans.append((a * bs, min((b + 1) * bs, len(data))))
for a, b in spans:
    dev[a:b] = data[a:b]
open(out, "wb").write(dev)
EOF
}
expect_dev "$IMG" "$BMAP" "$R/dev.bmap" && expect_dev "$IMG" - "$R/dev.whole" ||
	fail "cannot compute what a device holds after a copy"

# resum BMAP: recompute the bmap's own checksum (BmapFileChecksum), so
# that only the damage a case made to it is left to find.
resum() {
	"$PYTHON" - "$1" <<'EOF'
import hashlib
import re
import sys

p = sys.argv[1]
d = open(p, "rb").read()
m = re.search(rb"<BmapFileChecksum>\s*([0-9a-fA-F]+)\s*</BmapFileChecksum>", d)
old = m.group(1)
z = d.replace(old, b"0" * len(old), 1)
open(p, "wb").write(d.replace(old, hashlib.sha256(z).hexdigest().encode(), 1))
EOF
}

# edit FILE PY-EXPR: replace FILE's text t by the value of PY-EXPR
# (python, with re imported), e.g. "re.sub(...)".
edit() {
	"$PYTHON" - "$1" "$2" <<'EOF'
import re
import sys

p, expr = sys.argv[1:]
t = open(p).read()
n = eval(expr)
assert n != t, "the edit changed nothing"
open(p, "w").write(n)
EOF
}

HAVE_LOOP=0
if [ "$(id -u)" = 0 ] && command -v losetup >/dev/null 2>&1 &&
	probe_dev=$(losetup -f --show "$PAT_SMALL" 2>/dev/null); then
	HAVE_LOOP=1
	losetup -d "$probe_dev"
fi

# inputs_unchanged WHAT: the image, its compressed forms and its bmap are
# as they were made. A changed one is put back (in place, for its hard
# links), so that the cases after this one start from the real inputs;
# each case also does that when it ends, however it ends (restore_inputs).
# A write changes a file's modification time, so a cheap stat tells
# whether to compare the bytes (kept aside in $R/keep) at all.
inputs_stamp() {
	stat -c '%n %s %.9Y' -- "$R/img/"*
}
restore_inputs() {
	local f changed=
	[ "$(inputs_stamp)" != "$INPUTS_STAMP" ] || return 0
	for f in "$R/keep/"*; do
		cmp -s "$f" "$R/img/${f##*/}" && continue
		changed+=" $R/img/${f##*/}"
		cp -p -- "$f" "$R/img/${f##*/}"
	done
	printf '%s' "$changed"
}
inputs_unchanged() {
	local changed
	changed=$(restore_inputs)
	[ -z "$changed" ] ||
		fail "$1: exit $RUN_RC and an input was changed:$changed; stderr: [$RUN_ERR]"
}
INPUTS_STAMP=$(inputs_stamp)

# error_lines: the "error:" lines of the last run's stderr.
error_lines() {
	grep -F 'error:' "$E2E_TMP/run.err" || true
}

# names_one_of WHAT NAME...: some error line contains one of the NAMEs.
names_one_of() {
	local what=$1 n errs
	shift
	errs=$(error_lines)
	[ -n "$errs" ] || fail "$what: exit $RUN_RC without an error line; stderr: [$RUN_ERR]"
	for n in "$@"; do
		case "$errs" in *"$n"*) return 0 ;; esac
	done
	fail "$what: no error line names any of [$*]; stderr: [$RUN_ERR]"
}

# verdict: check the last run against the two allowed outcomes and the
# case's expectation. Reads the caller's variables:
#   name    the case, for messages
#   dkind   new|big|small|blockdev|devnull|devnull-link|dir|fifo
#   dest    the destination's path
#   pat     the pattern a pre-existing destination was filled with
#   want    ok (must succeed) | fail (must fail) | any
#   rcs     the exit codes a failure may have (default "1 2 3")
#   strict  1: the failure is visible before writing; nothing may change
#   names   an array: a failure's error line must name one of them
#   image   the raw image the destination must equal on success
#   devexp  what the device must hold on success (blockdev)
#   capture the bytes a FIFO destination's reader got
verdict() {
	local errs
	[ "$RUN_RC" != 124 ] && [ "$RUN_RC" != 137 ] ||
		fail "$name: bmaptk hung (killed by timeout after 20 s); stderr: [$RUN_ERR]"
	assert_eq "" "$RUN_OUT" "$name: stdout"
	assert_no_sanitizer "$name: stderr"
	case $want in
	ok) assert_rc 0 "$name" ;;
	fail) [ "$RUN_RC" != 0 ] ||
		fail "$name: expected a failure, got exit 0; stderr: [$RUN_ERR]" ;;
	esac
	errs=$(error_lines)
	if [ "$RUN_RC" = 0 ]; then
		# Outcome (a).
		[ -z "$errs" ] || fail "$name: exit 0 with an error line: [$errs]"
		assert_contains "$RUN_ERR" "copied" "$name: the summary"
		case $dkind in
		new | big | small)
			assert_same_file "$image" "$dest" "$name: exit 0, DEST"
			assert_dir_entries "$W/out" disk.out "$name: DEST's directory"
			;;
		blockdev)
			cmp -s -n "$(stat -c %s "$image")" "$devexp" "$dest" ||
				fail "$name: exit 0 but $dest does not hold the image: $(cmp -n "$(stat -c %s "$image")" "$devexp" "$dest" 2>&1 | head -1)"
			cmp -s "$devexp" "$dest" ||
				fail "$name: exit 0 but $dest changed past the image's end: $(cmp "$devexp" "$dest" 2>&1 | head -1)"
			;;
		fifo)
			assert_same_file "$image" "$capture" "$name: what the FIFO's reader got"
			;;
		dir) fail "$name: a directory as DEST was accepted" ;;
		devnull | devnull-link) ;; # verified, nothing to compare
		esac
		return 0
	fi
	# Outcome (b).
	case " ${rcs:-1 2 3} " in
	*" $RUN_RC "*) ;;
	*) fail "$name: exit $RUN_RC, expected one of ${rcs:-1 2 3}; stderr: [$RUN_ERR]" ;;
	esac
	names_one_of "$name" "${names[@]}"
	assert_not_contains "$RUN_ERR" "copied" "$name: a failed copy's stderr"
	case $dkind in
	new)
		assert_no_file "$dest" "$name: a DEST the failed copy created"
		assert_dir_entries "$W/out" "" "$name: DEST's directory"
		;;
	big | small | blockdev)
		[ "$dkind" = blockdev ] ||
			assert_dir_entries "$W/out" disk.out "$name: DEST's directory"
		if ! cmp -s "$pat" "$dest"; then
			[ "${strict:-0}" = 0 ] ||
				fail "$name: refused before writing, yet $dest changed: $(cmp "$pat" "$dest" 2>&1 | head -1); stderr: [$RUN_ERR]"
			case "$errs" in
			*"$dest"*incomplete*) ;;
			*) fail "$name: $dest changed and no error line says it is incomplete; stderr: [$RUN_ERR]" ;;
			esac
		fi
		;;
	dir)
		assert_dir_entries "$dest" "" "$name: the DEST directory"
		assert_dir_entries "$W/out" dir "$name: its parent"
		;;
	fifo)
		[ ! -s "$capture" ] ||
			fail "$name: a refused copy wrote $(stat -c %s "$capture") bytes into the FIFO"
		;;
	devnull | devnull-link)
		# Refused for what it is: exit 2, one line. (A copy that
		# fails for another reason names the image instead.)
		case "$errs" in
		*"$dest"*)
			[ "$RUN_RC" = 2 ] ||
				fail "$name: $dest refused with exit $RUN_RC, not 2"
			[ "$(error_lines | wc -l)" = 1 ] ||
				fail "$name: $dest refused with more than one error line: [$errs]"
			;;
		esac
		;;
	esac
	return 0
}

# stop_job PID: end a helper job this case started (a FIFO's feeder or
# reader) if it still runs, and reap it.
stop_job() {
	[ -n "$1" ] || return 0
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}

# make_variant VARIANT CODEC DIR: write DIR/disk.img$ext and
# DIR/disk.img.bmap, broken as VARIANT says.
make_variant() {
	local v=$1 codec=$2 dir=$3 ext=${EXT[$2]} cut src bmap
	mkdir -p "$dir"
	src=$dir/disk.img$ext
	bmap=$dir/disk.img.bmap
	cp "$BMAP" "$bmap"
	case $v in
	trunc) # the compressed stream cut at 60%; raw: the file cut in a range
		if [ "$codec" = raw ]; then
			head -c $((MIB + 100000)) "$IMG" >"$src"
		else
			cut=$(($(stat -c %s "$IMG$ext") * 6 / 10))
			head -c "$cut" "$IMG$ext" >"$src"
		fi
		;;
	short) # a whole, valid stream of an image that ends inside a range
		head -c $((3 * MIB + 2000)) "$IMG" >"$dir/short.raw"
		case $codec in
		raw) cp "$dir/short.raw" "$src" ;;
		gzip) gzip -n -c "$dir/short.raw" >"$src" ;;
		xz) xz -T1 -c "$dir/short.raw" >"$src" ;;
		bzip2) bzip2 -c "$dir/short.raw" >"$src" ;;
		zstd) zstd -q -c "$dir/short.raw" >"$src" ;;
		esac
		rm "$dir/short.raw"
		;;
	corrupt) # one byte flipped in the middle (raw: in a mapped range)
		cp "$IMG$ext" "$src"
		"$PYTHON" - "$src" <<'EOF'
import os
import sys

fd = os.open(sys.argv[1], os.O_RDWR)
n = os.fstat(fd).st_size
off = n // 2 if not sys.argv[1].endswith("disk.img") else 1024 * 1024 + 4242
b = os.pread(fd, 1, off)
os.pwrite(fd, bytes([b[0] ^ 0x5a]), off)
os.close(fd)
EOF
		;;
	badsum) # one range's chksum wrong, the file checksum made to match
		cp "$IMG$ext" "$src"
		edit "$bmap" 're.sub(r"(<Range chksum=\")([0-9a-f])([0-9a-f]*\"> 256-)", lambda m: m.group(1) + ("0" if m.group(2) != "0" else "1") + m.group(3), t)'
		resum "$bmap"
		;;
	stalesum) # one range's chksum wrong, the file checksum left stale
		cp "$IMG$ext" "$src"
		edit "$bmap" 're.sub(r"(<Range chksum=\")([0-9a-f])([0-9a-f]*\"> 256-)", lambda m: m.group(1) + ("0" if m.group(2) != "0" else "1") + m.group(3), t)'
		;;
	beyond) # the last range ends past BlocksCount
		cp "$IMG$ext" "$src"
		edit "$bmap" 're.sub(r"> (\d+)-(\d+) </Range>\s*</BlockMap>", lambda m: "> %s-%d </Range>\n    </BlockMap>" % (m.group(1), int(m.group(2)) + 3), t)'
		edit "$bmap" 're.sub(r"<MappedBlocksCount> (\d+)", lambda m: "<MappedBlocksCount> %d" % (int(m.group(1)) + 3), t)'
		resum "$bmap"
		;;
	overlap) # the second range starts inside the first
		cp "$IMG$ext" "$src"
		edit "$bmap" 're.sub(r"> 256-", "> 10-", t, count=1)'
		edit "$bmap" 're.sub(r"<MappedBlocksCount> (\d+)", lambda m: "<MappedBlocksCount> %d" % (int(m.group(1)) + 246), t)'
		resum "$bmap"
		;;
	unsorted) # the first two ranges swapped
		cp "$IMG$ext" "$src"
		edit "$bmap" 're.sub(r"(<Range [^>]*> 0-\d+ </Range>)(\s*)(<Range [^>]*> \d+-\d+ </Range>)", lambda m: m.group(3) + m.group(2) + m.group(1), t, count=1)'
		resum "$bmap"
		;;
	*) fail "unknown variant $v" ;;
	esac
}

# variant_expect VARIANT: what a copy of it must do (sets the caller's
# want, rcs, strict): data problems are found mid-copy, bmap problems
# before the first write.
variant_expect() {
	want=fail strict=0 rcs="1 2 3"
	case $1 in
	badsum) rcs=1 ;;                           # the range does not verify
	stalesum) strict=1 rcs="1 2" ;;            # the bmap's own checksum
	beyond | overlap | unsorted) strict=1 rcs=2 ;; # an invalid bmap
	esac
}

# one NAME INPUT DEST MODE CODEC [VARIANT]: set up one combination, run
# `bmaptk copy`, and check the outcome (see verdict).
one() {
	local name=$1 input=$2 dkind=$3 mode=$4 codec=$5 variant=${6:-good}
	local ext=${EXT[$codec]} W src bmap inp dest pat= capture= devexp=
	local want=ok rcs="1 2 3" strict=0 image=$IMG feeder= reader= dev
	local -a names=() opt=() cmd=()
	W=$(mktemp -d "$R/case.XXXXXX") || fail "mktemp"
	on_exit "rm -rf -- '$W'"
	on_exit restore_inputs
	mkdir "$W/in" "$W/out"
	src=$IMG$ext bmap=$BMAP
	if [ "$variant" != good ]; then
		src=$R/var/$variant.$codec/disk.img$ext
		bmap=$R/var/$variant.$codec/disk.img.bmap
		variant_expect "$variant"
	fi
	case $mode in
	discover) ;;
	given) opt=(--bmap "$bmap") ;;
	nobmap) opt=(--nobmap) ;;
	esac

	# The input, and what a refusal of it names.
	case $input in
	file) inp=$src ;;
	symlink | hardlink)
		# Beside links to the bmap, so that discovery finds one.
		if [ "$input" = symlink ]; then
			ln -s "$src" "$W/in/disk.img$ext"
			ln -s "$bmap" "$W/in/disk.img.bmap"
		else
			ln "$src" "$W/in/disk.img$ext"
			ln "$bmap" "$W/in/disk.img.bmap"
		fi
		inp=$W/in/disk.img$ext
		;;
	stdin-file | stdin-pipe) inp=- ;;
	devstdin) inp=/dev/stdin ;;
	procsub) inp=/dev/fd/ ;;
	fifo)
		mkfifo "$W/in/disk.img$ext"
		ln -s "$bmap" "$W/in/disk.img.bmap"
		inp=$W/in/disk.img$ext
		# The FIFO is opened under timeout too: if nothing reads it, the
		# feeder ends by itself.
		timeout 25 sh -c 'exec cat -- "$1" >"$2"' _ "$src" "$inp" &
		feeder=$!
		;;
	blockdev)
		e2e_losetup dev -r "$src" ||
			fail "$name: losetup -r: $(cat "$E2E_TMP/losetup.err")"
		inp=$dev
		;;
	url) inp=file://$src ;;
	esac
	case $input in
	stdin-file | stdin-pipe) names+=("-:" "stdin" "$bmap") ;;
	*) names+=("$inp" "$bmap") ;;
	esac
	if [ "$mode" = discover ]; then
		case $input in
		stdin-file | stdin-pipe | devstdin | procsub | blockdev)
			want=fail rcs=2 strict=1 ;; # nothing to discover a bmap by
		esac
	fi

	# The destination, and what a refusal of it must leave.
	case $dkind in
	new) dest=$W/out/disk.out ;;
	big) dest=$W/out/disk.out pat=$PAT_BIG ;;
	small) dest=$W/out/disk.out pat=$PAT_SMALL ;;
	blockdev)
		cp "$PAT_BIG" "$W/back"
		e2e_losetup dest "$W/back" ||
			fail "$name: losetup: $(cat "$E2E_TMP/losetup.err")"
		pat=$PAT_BIG
		devexp=$R/dev.bmap
		[ "$mode" = nobmap ] && devexp=$R/dev.whole
		;;
	devnull | devnull-link)
		dest=/dev/null
		if [ "$dkind" = devnull-link ]; then
			ln -s /dev/null "$W/out/null"
			dest=$W/out/null
		fi
		# Either taken (nothing written, the ranges verified) or
		# refused; a broken input must still fail.
		[ "$want" = fail ] || { want=any rcs=2 strict=1; }
		;;
	dir)
		dest=$W/out/dir
		mkdir "$dest"
		want=fail rcs="2 3" strict=1
		;;
	fifo)
		dest=$W/out/fifo
		capture=$W/captured
		mkfifo "$dest"
		: >"$capture"
		timeout 25 cat -- "$dest" >"$capture" &
		reader=$!
		[ "$want" = fail ] || want=any
		rcs="2 3"
		;;
	esac
	[ -z "$pat" ] || cp "$pat" "$dest"
	case $dkind in devnull* | dir | fifo) names+=("$dest") ;; esac

	cmd=(timeout -k 5 20 "$BMAPTK" copy "${opt[@]}")
	case $input in
	stdin-file) run "${cmd[@]}" - "$dest" <"$src" ;;
	stdin-pipe | devstdin)
		run bash -c 'cat -- "$1" 2>/dev/null | "${@:2}"' _ "$src" \
			"${cmd[@]}" "$inp" "$dest" </dev/null
		;;
	procsub) run "${cmd[@]}" <(cat -- "$src" 2>/dev/null) "$dest" </dev/null ;;
	*) run "${cmd[@]}" "$inp" "$dest" </dev/null ;;
	esac
	stop_job "$feeder"
	if [ -n "$reader" ]; then
		if [ "$RUN_RC" = 0 ]; then
			wait "$reader"
		else
			stop_job "$reader"
		fi
	fi
	verdict
	inputs_unchanged "$name"
}

# --- the matrix ------------------------------------------------------------

# only NAME: 0 if the case is to run: all of them, or (to debug) those
# whose name matches the regular expression in $ADV_ONLY.
only() {
	[ -z "${ADV_ONLY:-}" ] || [[ $1 =~ $ADV_ONLY ]]
}
run_case() {
	local t0=$EPOCHREALTIME
	only "$1" || return 0
	case_ "$@"
	# (milliseconds, name) of every case, for the slowest in the log
	printf '%s %s\n' $(((${EPOCHREALTIME/./} - ${t0/./}) / 1000)) "$1" >>"$E2E_TMP/times"
}

INPUTS=(file symlink hardlink stdin-file stdin-pipe devstdin procsub fifo blockdev url)
DESTS=(new big small blockdev devnull devnull-link dir fifo)
MODES=(discover given nobmap)

# runnable INPUT DEST CODEC: 0 if the combination can run here.
runnable() {
	case "$1/$2" in
	blockdev/* | */blockdev) [ "$HAVE_LOOP" = 1 ] || return 1 ;;
	esac
	# A loop device is a whole number of 512-byte sectors: of a compressed
	# file it would cut the stream's end.
	[ "$1" != blockdev ] || [ "$3" = raw ]
}
[ "$HAVE_LOOP" = 1 ] ||
	skip_case "the loop device cases (input and DEST) need root and a free loop device"
skip_case "a loop device of a compressed image (it is rounded down to 512 bytes): blockdev input with raw images only"

# Every input x mode x codec into a new file; every DEST x mode x codec
# from a plain file; every input x DEST, mode and codec taking turns
# (--bmap, which every input can use, on every other one).
declare -A DONE=()
add() {
	local key="$1/$2/$3/$4"
	[ -z "${DONE[$key]:-}" ] || return 0
	DONE[$key]=1
	runnable "$1" "$2" "$4" || return 0
	run_case "$key" one "$key" "$@"
}
for input in "${INPUTS[@]}"; do
	for mode in "${MODES[@]}"; do
		for codec in "${CODECS[@]}"; do
			add "$input" new "$mode" "$codec"
		done
	done
done
for dkind in "${DESTS[@]}"; do
	for mode in "${MODES[@]}"; do
		for codec in "${CODECS[@]}"; do
			# A DEST refused for what it is is refused before any
			# byte is decoded: two codecs are enough there.
			case $dkind/$codec in
			devnull*/[gxb]* | dir/[gxb]* | fifo/[gxb]*) continue ;;
			esac
			add file "$dkind" "$mode" "$codec"
		done
	done
done
i=0
for input in "${INPUTS[@]}"; do
	for dkind in "${DESTS[@]}"; do
		codec=${CODECS[i % ${#CODECS[@]}]}
		[ "$input" = blockdev ] && codec=raw
		mode=given
		[ $((i % 2)) = 1 ] && mode=${MODES[(i / 2) % 3]}
		add "$input" "$dkind" "$mode" "$codec"
		i=$((i + 1))
	done
done
T1=$(date +%s)

# --- broken inputs -----------------------------------------------------------

# A failure found in the data (a cut or corrupt stream, a short image, a
# range that does not verify) is seen mid-copy: a DEST is said incomplete
# or removed. A bad bmap is seen before writing: nothing changes.
broken() {
	local v=$1 codec=$2 input dkind mode
	make_variant "$v" "$codec" "$R/var/$v.$codec"
	for dkind in new big blockdev devnull; do
		[ "$dkind" != blockdev ] || [ "$HAVE_LOOP" = 1 ] || continue
		for mode in discover nobmap; do
			# /dev/null only verifies: there is nothing to verify
			# without a bmap.
			[ "$dkind/$mode" != devnull/nobmap ] || continue
			case $v/$mode in
			short/nobmap | badsum/nobmap | stalesum/nobmap | \
				beyond/nobmap | overlap/nobmap | unsorted/nobmap)
				continue ;; # no bmap to disagree with
			esac
			# A raw image with a flipped byte or cut short, read
			# whole without a bmap, is just another image.
			case $v/$codec/$mode in
			corrupt/raw/nobmap | trunc/raw/nobmap) continue ;;
			esac
			run_case "broken-$v/file/$dkind/$mode/$codec" \
				one "broken-$v/file/$dkind/$mode/$codec" file "$dkind" "$mode" "$codec" "$v"
		done
	done
	# The same from a pipe, and (codecs taking turns) a FIFO or a URL,
	# with the bmap given.
	for input in stdin-pipe fifo url; do
		case $input/$codec in
		fifo/gzip | fifo/bzip2 | url/xz | url/zstd) continue ;;
		esac
		run_case "broken-$v/$input/big/given/$codec" \
			one "broken-$v/$input/big/given/$codec" "$input" big given "$codec" "$v"
	done
}
for codec in "${CODECS[@]}"; do
	for v in trunc short corrupt badsum stalesum; do
		broken "$v" "$codec"
	done
done
for v in beyond overlap unsorted; do
	broken "$v" raw
	broken "$v" zstd
done
T2=$(date +%s)

# --- self-targeting ------------------------------------------------------------

# self NAME [--keep FILE | --absent FILE]... -- ARG...: `bmaptk copy
# ARG...` must be refused with exit 2 naming one of its operands, and
# leave every input as it was; a FILE given with --keep keeps its bytes
# (copied aside first), one given with --absent does not come to exist.
self() {
	local name=$1 f
	local -a keep=() absent=() ops=()
	shift
	while [ "$1" != -- ]; do
		case $1 in
		--keep) keep+=("$2") ;;
		--absent) absent+=("$2") ;;
		esac
		shift 2
	done
	shift
	for f in "$@"; do
		case $f in -*) ;; *) ops+=("$f") ;; esac
	done
	for f in "${keep[@]}"; do cp -p -- "$f" "$f.before"; done
	on_exit restore_inputs
	run timeout -k 5 20 "$BMAPTK" copy "$@" </dev/null
	[ "$RUN_RC" != 124 ] && [ "$RUN_RC" != 137 ] ||
		fail "$name: bmaptk hung; stderr: [$RUN_ERR]"
	inputs_unchanged "$name"
	assert_eq "" "$RUN_OUT" "$name: stdout"
	assert_no_sanitizer "$name: stderr"
	assert_rc 2 "$name: a DEST that is an input"
	assert_not_contains "$RUN_ERR" "copied" "$name"
	names_one_of "$name" "${ops[@]}"
	for f in "${keep[@]}"; do
		cmp -s -- "$f.before" "$f" || fail "$name: $f was changed"
	done
	for f in "${absent[@]}"; do assert_no_file "$f" "$name: the other DEST"; done
}

# self_stdin NAME FILE ARG...: the same, with stdin redirected from FILE.
self_stdin() {
	local name=$1 stdin=$2
	shift 2
	on_exit restore_inputs
	run timeout -k 5 20 "$BMAPTK" copy "$@" <"$stdin"
	[ "$RUN_RC" != 124 ] && [ "$RUN_RC" != 137 ] ||
		fail "$name: bmaptk hung; stderr: [$RUN_ERR]"
	inputs_unchanged "$name"
	assert_no_sanitizer "$name: stderr"
	assert_eq "" "$RUN_OUT" "$name: stdout"
	assert_rc 2 "$name: DEST is stdin's file"
	assert_not_contains "$RUN_ERR" "copied" "$name"
	names_one_of "$name" "${@: -1}"
}

# self_cases CODEC FULL: the image (of CODEC), its bmap, links to them,
# the same DEST twice. Name tricks do not depend on the codec: FULL=0 runs
# only those where the codec changes what the input is (URLs, loops).
self_cases() {
	local codec=$1 full=$2 e=${EXT[$1]} s=$IMG${EXT[$1]} W
	W=$R/self.$codec
	mkdir -p "$W"
	ln -sf "$s" "$W/sym-img"
	ln -f "$s" "$W/hard-img"
	ln -sf "$BMAP" "$W/sym-bmap"
	ln -f "$BMAP" "$W/hard-bmap"
	cp "$PAT_SMALL" "$W/out"
	ln -sf "$W/out" "$W/sym-out"
	ln -f "$W/out" "$W/hard-out"
	sc() { # NAME [FUNC] ARG...: one self-targeting case
		local n="self/$codec/$1" f=self
		shift
		[ "$1" != self_stdin ] || { f=self_stdin; shift; }
		run_case "$n" "$f" "$n" "$@"
	}
	sc "image (bmap discovered)" -- "$s" "$s"
	sc "image (--nobmap)" -- --nobmap "$s" "$s"
	sc "discovered bmap" -- "$s" "$BMAP"
	sc "hard link of the image" -- --nobmap "$s" "$W/hard-img"
	sc "second DEST is the image" --absent "$W/new" -- "$s" "$W/new" "$s"
	sc "stdin is the image" self_stdin "$s" --bmap "$BMAP" - "$s"
	sc "file:// URL of the image" -- "file://$s" "$s"
	sc "file://localhost/ URL of the image" -- "file://localhost$s" "$s"
	sc "percent-encoded file:// URL of the image" -- "file://$R/img/disk%2Eimg$e" "$s"
	if [ "$HAVE_LOOP" = 1 ]; then
		run_case "self/$codec/loop device backed by the image as DEST" eval '
			e2e_losetup dev "$s" || fail "losetup"
			self "self/$codec/loop device backed by the image as DEST" \
				-- --bmap "$BMAP" "$s" "$dev"'
		run_case "self/$codec/image read through its loop device, DEST the file" eval '
			e2e_losetup dev -r "$s" || fail "losetup"
			self "self/$codec/image read through its loop device, DEST the file" \
				-- --bmap "$BMAP" "$dev" "$s"'
	fi
	[ "$full" = 1 ] || return 0
	sc "image (--bmap)" -- --bmap "$BMAP" "$s" "$s"
	sc "given bmap" -- --bmap "$BMAP" "$s" "$BMAP"
	sc "symlink to the image" -- "$s" "$W/sym-img"
	sc "image via its symlink, DEST the image" -- --bmap "$BMAP" "$W/sym-img" "$s"
	sc "symlink to the bmap" -- "$s" "$W/sym-bmap"
	sc "hard link of the bmap" -- "$s" "$W/hard-bmap"
	sc "image by a dotted path" -- "$s" "$R/img/./disk.img$e"
	sc "image by a doubled slash" -- "$s" "$R//img//disk.img$e"
	sc "same DEST twice (new)" --absent "$W/new" -- "$s" "$W/new" "$W/new"
	sc "same DEST twice (existing)" --keep "$W/out" -- "$s" "$W/out" "$W/out"
	sc "same DEST by a symlink" --keep "$W/out" -- "$s" "$W/out" "$W/sym-out"
	sc "same DEST by a hard link" --keep "$W/out" -- "$s" "$W/hard-out" "$W/out"
	sc "/dev/stdin is the image" self_stdin "$s" --bmap "$BMAP" /dev/stdin "$s"
	if [ "$HAVE_LOOP" = 1 ]; then
		run_case "self/$codec/same device twice" eval '
			cp "$PAT_BIG" "$W/back"
			e2e_losetup dev "$W/back" || fail "losetup"
			self "self/$codec/same device twice" --keep "$W/back" \
				-- "$s" "$dev" "$dev"'
	fi
}
for codec in "${CODECS[@]}"; do
	case $codec in raw | gzip) self_cases "$codec" 1 ;; *) self_cases "$codec" 0 ;; esac
done
T3=$(date +%s)
note "times: matrix $((T1 - T0)) s, broken inputs $((T2 - T1)) s, self-targeting $((T3 - T2)) s"
note "slowest cases (ms): $(sort -rn "$E2E_TMP/times" | head -5 | paste -sd, -)"
cases_done "every combination either copied the image exactly or failed cleanly"
