# The archive plugin (libarchive) and the example-lz4 plugin, loaded with
# --plugin-dir: one sparse image packed by the real tools as tar, tar.gz,
# tar.xz, tar.zst, tar.bz2, tar.lz4, sparse tar, zip, .lz4, .lzo, .lz, .Z
# and .lzma must copy back byte for byte. Without the plugins the same files
# are refused with "no codec for FILE (looks like FORMAT)"; a raw image is
# never claimed by the plugins; `bmaptk plugins` lists both with their
# priorities and origins; the higher priority (example-lz4) wins for lz4;
# corrupt and truncated inputs fail with a message naming the file.
# A raw image after a compression filter stays the image (an image that
# starts with zeros is not an empty tar); lzop is decoded with liblzo2; and
# no input makes bmaptk run a program (fakes of lrzip, grzip, lzop, ...
# first in PATH must never run).
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd cmp tar gzip xz zstd bzip2 lz4 lzop lzip compress zip "$PYTHON"
[ -n "${BMAPTK_BUILD:-}" ] || skip "BMAPTK_BUILD is not set"
PLUGINS=$BMAPTK_BUILD/plugins
[ -f "$PLUGINS/archive.so" ] || skip "$PLUGINS/archive.so was not built"
[ -f "$PLUGINS/example-lz4.so" ] || skip "$PLUGINS/example-lz4.so was not built"
unset BMAPTK_PLUGIN_PATH

D=$E2E_TMP/img
mkdir "$D"
IMG=$D/disk.img
SIZE=$((4 * 1024 * 1024 + 1000))
# Fixed seed: random data, a compressible text range, the image's last bytes.
"$PYTHON" - "$IMG" "$SIZE" <<'EOF' || fail "cannot generate the image"
import os
import random
import sys

rng = random.Random(20240701)
path, size = sys.argv[1], int(sys.argv[2])
text = b"".join(b"line %d of a compressible range\n" % i for i in range(30000))
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, size)
for off, data in ((0, rng.randbytes(300000)), (2 << 20, text),
                  (size - 9, b"last-data")):
    assert os.pwrite(fd, data, off) == len(data)
os.fsync(fd)
os.close(fd)
EOF
"$BMAPTK" create "$IMG" -o "$IMG.bmap" 2>"$E2E_TMP/create.err" ||
	fail "bmaptk create: $(cat "$E2E_TMP/create.err")"

# Packed by the real tools; tar members are named disk.img, as bmaptool
# users make them. Sparse tar keeps the holes as GNU sparse entries.
P=$E2E_TMP/packed
mkdir "$P"
(
	cd "$D" || exit 1
	tar -cf "$P/disk.tar" disk.img &&
		tar -Scf "$P/disk.sparse.tar" disk.img &&
		tar -czf "$P/disk.tar.gz" disk.img &&
		tar -Sczf "$P/disk.sparse.tar.gz" disk.img &&
		tar -cJf "$P/disk.tar.xz" disk.img &&
		tar --zstd -cf "$P/disk.tar.zst" disk.img &&
		tar -cjf "$P/disk.tar.bz2" disk.img &&
		tar -I lz4 -cf "$P/disk.tar.lz4" disk.img &&
		tar -I lzop -cf "$P/disk.tar.lzo" disk.img &&
		tar --lzip -cf "$P/disk.tar.lz" disk.img &&
		tar -Z -cf "$P/disk.tar.Z" disk.img &&
		tar --lzma -cf "$P/disk.tar.lzma" disk.img &&
		lz4 -q disk.img "$P/disk.img.lz4" &&
		lzop -q disk.img -o "$P/disk.img.lzo" &&
		lzip -c disk.img >"$P/disk.img.lz" &&
		compress -c disk.img >"$P/disk.img.Z" &&
		xz --format=lzma -c disk.img >"$P/disk.img.lzma" &&
		zip -q "$P/disk.zip" disk.img &&
		mkdir -p "$E2E_TMP/z/dir" && gzip -c disk.img \
		>"$E2E_TMP/z/dir/disk.img.gz" &&
		cd "$E2E_TMP/z" && zip -qr "$P/dir-gz.zip" dir
) 2>"$E2E_TMP/pack.err" || fail "packing: $(cat "$E2E_TMP/pack.err")"

# bm WANT_RC ARG...: run bmaptk; check its exit status and that no sanitizer
# reported anything. RUN_ERR has its stderr.
bm() {
	local want=$1
	shift
	run "$BMAPTK" "$@"
	assert_rc "$want" "bmaptk $*"
	assert_no_sanitizer "stderr of bmaptk $*"
}

# On disk: copy refuses new files under /dev, where e2e_ramdir lives.
OUT=$E2E_TMP/out

# Every packing copies back to the image, with both plugins loaded.
for f in disk.tar disk.sparse.tar disk.tar.gz disk.sparse.tar.gz \
	disk.tar.xz disk.tar.zst disk.tar.bz2 disk.tar.lz4 disk.tar.lzo \
	disk.tar.lz disk.tar.Z disk.tar.lzma disk.img.lz4 disk.img.lzo \
	disk.img.lz disk.img.Z disk.img.lzma disk.zip dir-gz.zip; do
	rm -f "$OUT"
	bm 0 --plugin-dir "$PLUGINS" copy --bmap "$IMG.bmap" "$P/$f" "$OUT"
	assert_same_file "$IMG" "$OUT" "copy of $f"
done
note "19 packings copied back"

# The same without a bmap: the whole stream is decoded to its end.
for f in disk.tar.lz4 disk.img.lzo disk.zip; do
	rm -f "$OUT"
	bm 0 copy --plugin-dir "$PLUGINS" --nobmap "$P/$f" "$OUT"
	assert_same_file "$IMG" "$OUT" "--nobmap copy of $f"
done

# Without the plugins: refused with the format named, nothing written. Skip
# if plugins are installed in the default directory of this bmaptk.
run "$BMAPTK" plugins
if [[ "$RUN_OUT" == *archive.so* ]]; then
	skip_case "an archive plugin is installed in the default directory"
else
	for pair in disk.img.lz4:lz4 disk.img.lzo:lzop disk.img.lz:lzip \
		disk.img.Z:compress disk.zip:zip disk.tar:tar; do
		f=${pair%%:*}
		rm -f "$OUT"
		bm 2 copy --bmap "$IMG.bmap" "$P/$f" "$OUT"
		assert_contains "$RUN_ERR" "no codec for $P/$f" "$f without plugins"
		assert_contains "$RUN_ERR" "(looks like ${pair#*:}" \
			"$f without plugins"
		assert_contains "$RUN_ERR" "--plugin-dir" "$f without plugins"
		assert_no_file "$OUT" "output of $f without plugins"
	done
fi

# A raw image is never claimed by the plugins, nor are the built-in formats.
rm -f "$OUT"
bm 0 --plugin-dir "$PLUGINS" copy --bmap "$IMG.bmap" "$IMG" "$OUT"
assert_same_file "$IMG" "$OUT" "raw copy with plugins"

# The listing: both plugins, their priorities and where they came from.
bm 0 --plugin-dir "$PLUGINS" plugins
grep -Eq "^codec +archive +10 +[^ ]+ +$PLUGINS/archive\.so\$" \
	"$E2E_TMP/run.out" || fail "archive not listed: [$RUN_OUT]"
grep -Eq "^codec +example-lz4 +50 +[^ ]+ +$PLUGINS/example-lz4\.so\$" \
	"$E2E_TMP/run.out" || fail "example-lz4 not listed: [$RUN_OUT]"
grep -Eq "^codec +gzip +100 +[^ ]+ +built-in\$" "$E2E_TMP/run.out" ||
	fail "gzip not listed as built-in with priority 100: [$RUN_OUT]"

# Priority decides lz4: a truncated frame fails in example-lz4's words when
# both are loaded, in libarchive's with archive.so alone.
ONLY=$E2E_TMP/only-archive
mkdir "$ONLY"
ln -s "$PLUGINS/archive.so" "$ONLY/archive.so"
head -c 100000 "$P/disk.img.lz4" >"$P/cut.lz4"
rm -f "$OUT"
bm 2 --plugin-dir "$PLUGINS" copy --bmap "$IMG.bmap" "$P/cut.lz4" "$OUT"
assert_contains "$RUN_ERR" "$P/cut.lz4: truncated lz4 data at compressed offset 100000" \
	"truncated lz4, both plugins"
assert_no_file "$OUT" "output of truncated lz4"
bm 2 --plugin-dir "$ONLY" copy --bmap "$IMG.bmap" "$P/cut.lz4" "$OUT"
assert_contains "$RUN_ERR" "$P/cut.lz4: lz4 data: truncated lz4 input" \
	"truncated lz4, archive alone"
rm -f "$OUT"
bm 0 --plugin-dir "$ONLY" copy --bmap "$IMG.bmap" "$P/disk.tar.lz4" "$OUT"
assert_same_file "$IMG" "$OUT" "tar.lz4 with archive.so alone"

# Corrupt and truncated inputs are errors naming the file and the format.
head -c 300000 "$P/disk.tar" >"$P/cut.tar"
head -c 100000 "$P/disk.img.lz" >"$P/cut.lz"
head -c 100000 "$P/disk.zip" >"$P/cut.zip"
printf '7z\274\257\047\034\000\004' >"$P/disk.7z"
for pair in "cut.tar:tar data: Truncated tar archive" \
	"cut.lz:lzip data:" "cut.zip:zip data:" \
	"disk.7z:7z archives cannot be read as a stream"; do
	f=${pair%%:*}
	rm -f "$OUT"
	bm 2 --plugin-dir "$PLUGINS" copy --nobmap "$P/$f" "$OUT"
	assert_contains "$RUN_ERR" "$P/$f: ${pair#*:}" "error for $f"
	assert_no_file "$OUT" "output of $f"
done
(cd "$D" && mkdir -p empty && tar -cf "$P/empty.tar" empty) ||
	fail "cannot make empty.tar"
bm 2 --plugin-dir "$PLUGINS" copy --nobmap "$P/empty.tar" "$OUT"
assert_contains "$RUN_ERR" "$P/empty.tar: no regular file in the tar archive" \
	"tar without a file"

# A raw image after a compression filter is the image unless it really is
# an archive. An image whose first 512 bytes are zero is not an empty tar
# (libarchive's tar reader bids on a zero block: "no regular file in the
# lzop+tar archive"). lz4 goes to archive.so alone: example-lz4 would take
# it otherwise.
Z=$E2E_TMP/zero
mkdir "$Z"
"$PYTHON" - "$Z/hole.img" "$Z/zero512.img" <<'EOF' || fail "cannot make images"
import os
import random
import sys

rng = random.Random(20240702)
# A 1 MiB hole first; 512 zero bytes, then data.
for path, off in ((sys.argv[1], 1 << 20), (sys.argv[2], 512)):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.ftruncate(fd, 3 << 20)
    assert os.pwrite(fd, rng.randbytes(200000), off) == 200000
    os.close(fd)
EOF
for z in hole zero512; do
	"$BMAPTK" create "$Z/$z.img" -o "$Z/$z.bmap" 2>"$E2E_TMP/create.err" ||
		fail "bmaptk create $z.img: $(cat "$E2E_TMP/create.err")"
	lz4 -q -c "$Z/$z.img" >"$Z/$z.img.lz4" &&
		lzop -q -c "$Z/$z.img" >"$Z/$z.img.lzo" &&
		lzip -c "$Z/$z.img" >"$Z/$z.img.lz" &&
		compress -c "$Z/$z.img" >"$Z/$z.img.Z" &&
		xz --format=lzma -c "$Z/$z.img" >"$Z/$z.img.lzma" ||
		fail "cannot compress $z.img"
done
zero_start() {
	local z=$1 ext=$2 dir=$PLUGINS
	[ "$ext" != lz4 ] || dir=$ONLY
	rm -f "$OUT"
	bm 0 --plugin-dir "$dir" copy --bmap "$Z/$z.bmap" "$Z/$z.img.$ext" "$OUT"
	assert_same_file "$Z/$z.img" "$OUT" "copy of $z.img.$ext"
	rm -f "$OUT"
	bm 0 --plugin-dir "$dir" copy --nobmap "$Z/$z.img.$ext" "$OUT"
	assert_same_file "$Z/$z.img" "$OUT" "--nobmap copy of $z.img.$ext"
}
for z in hole zero512; do
	for ext in lz4 lzo lz Z lzma; do
		case_ "$z.img.$ext is the image" zero_start "$z" "$ext"
	done
done

# lzop is decoded in the plugin (liblzo2): each method and checksum lzop
# writes, and members one after the other; cut, corrupt and trailing bytes
# are errors.
LZ=$E2E_TMP/lzo
mkdir "$LZ"
half=$((SIZE / 2))
lzop -1 -q -c "$IMG" >"$LZ/m1.lzo" &&
	lzop -9 -q -c "$IMG" >"$LZ/m9.lzo" &&
	lzop --crc32 -q -c "$IMG" >"$LZ/crc32.lzo" &&
	lzop -F -q -c "$IMG" >"$LZ/nosum.lzo" &&
	lzop -q -c <"$IMG" >"$LZ/stdin.lzo" &&
	{ head -c "$half" "$IMG" | lzop -q -c &&
		tail -c +$((half + 1)) "$IMG" | lzop -q -c; } >"$LZ/two.lzo" ||
	fail "cannot make the lzop variants"
lzop_ok() {
	rm -f "$OUT"
	bm 0 --plugin-dir "$PLUGINS" copy --bmap "$IMG.bmap" "$LZ/$1" "$OUT"
	assert_same_file "$IMG" "$OUT" "copy of $1"
}
for f in m1.lzo m9.lzo crc32.lzo nosum.lzo stdin.lzo two.lzo; do
	case_ "lzop variant $f" lzop_ok "$f"
done
head -c 100000 "$P/disk.img.lzo" >"$LZ/cut.lzo"
cp "$P/disk.img.lzo" "$LZ/flip.lzo"
printf '\377\377\377\377' |
	dd of="$LZ/flip.lzo" bs=1 seek=70000 conv=notrunc 2>/dev/null
{ cat "$P/disk.img.lzo" && echo junk; } >"$LZ/junk.lzo"
lzop_bad() {
	rm -f "$OUT"
	bm 2 --plugin-dir "$PLUGINS" copy --nobmap "$LZ/$1" "$OUT"
	assert_contains "$RUN_ERR" "$LZ/$1: $2" "error for $1"
	assert_no_file "$OUT" "output of $1"
}
case_ "truncated lzop" lzop_bad cut.lzo \
	"truncated lzop data at compressed offset 100000"
case_ "corrupt lzop" lzop_bad flip.lzo "corrupt lzop data at compressed offset"
lzo_size=$(stat -c %s "$P/disk.img.lzo")
case_ "lzop with trailing bytes" lzop_bad junk.lzo \
	"trailing garbage after lzop data at compressed offset $lzo_size"

# No input makes bmaptk run a program. Fakes of the decompressors libarchive
# knows how to run come first in PATH and leave a marker if run. lrzip and
# grzip have no library: refused in one line; lzop is decoded by the plugin,
# the others by libarchive's own code.
FAKE=$E2E_TMP/fakebin
MARK=$E2E_TMP/ran
mkdir "$FAKE" "$MARK"
for prog in lrzip grzip lzop lz4 lzip lzma unlzma xz unxz bzip2 gzip \
	zstd compress uncompress uudecode; do
	printf '#!/bin/sh\n: >"%s/%s"\nexit 1\n' "$MARK" "$prog" >"$FAKE/$prog"
	chmod 755 "$FAKE/$prog"
done
{ printf 'LRZI\000\006' && head -c 4000 "$IMG"; } >"$P/disk.img.lrz"
{ printf 'GRZipII\000\002\004:)' && head -c 4000 "$IMG"; } >"$P/disk.img.grz"
# fake_bm WANT_RC ARG...: bm with the fakes first in PATH; fail if one ran.
fake_bm() {
	local ran
	rm -f -- "$MARK"/*
	PATH=$FAKE:$PATH bm "$@"
	ran=$(ls -A "$MARK")
	[ -z "$ran" ] || fail "bmaptk $* ran: $ran"
}
no_program_refused() {
	local f=$1 like=$2
	rm -f "$OUT"
	fake_bm 2 --plugin-dir "$PLUGINS" copy --nobmap "$P/$f" "$OUT"
	assert_contains "$RUN_ERR" "$P/$f: no codec for $like data" "error for $f"
	assert_eq 1 "$(printf '%s\n' "$RUN_ERR" | wc -l)" "lines of [$RUN_ERR]"
	assert_no_file "$OUT" "output of $f"
}
case_ "lrzip refused, lrzip not run" no_program_refused disk.img.lrz lrzip
case_ "grzip refused, grzip not run" no_program_refused disk.img.grz grzip
no_program_copied() {
	local f=$1 img=${2:-$IMG}
	rm -f "$OUT"
	fake_bm 0 --plugin-dir "$ONLY" copy --nobmap "$f" "$OUT"
	assert_same_file "$img" "$OUT" "copy of $f with fake programs in PATH"
}
for f in disk.img.lzo disk.tar.lzo disk.img.lz4 disk.tar.lz4 disk.img.lz \
	disk.img.Z disk.img.lzma disk.tar.lzma disk.zip; do
	case_ "$f, no program run" no_program_copied "$P/$f"
done
case_ "hole.img.lzo, no program run" no_program_copied \
	"$Z/hole.img.lzo" "$Z/hole.img"
# Where strace works: no execve but bmaptk's own, whatever PATH holds.
if strace -f -qq -e trace=execve -o "$E2E_TMP/strace.try" true 2>/dev/null; then
	no_exec() {
		rm -f "$OUT"
		PATH=$FAKE:$PATH strace -f -qq -e trace=execve \
			-o "$E2E_TMP/strace.log" "$BMAPTK" --plugin-dir "$PLUGINS" \
			copy --nobmap "$P/$1" "$OUT" 2>/dev/null
		assert_eq 1 "$(grep -c 'execve(' "$E2E_TMP/strace.log")" \
			"execve calls for $1: $(cat "$E2E_TMP/strace.log")"
	}
	for f in disk.img.lrz disk.img.grz disk.img.lzo disk.tar.lzo; do
		case_ "strace: no execve for $f" no_exec "$f"
	done
else
	skip_case "strace cannot trace here"
fi
cases_done "all cases passed"
