# Hostile cases for packed images (docs/pack.md), each a test that failed
# before its fix:
# 1. A bmap whose image size is not the pack's (a --bmap of another image,
#    a sidecar of another version found by name, or a crafted pack whose
#    embedded bmap disagrees with its header) is refused before any DEST
#    is touched: an existing file DEST keeps its size and bytes, as it
#    does for a raw image; a block device is not discarded (--discard).
# 2. A bmap frame whose image_size overflows the chunk count (2^64 - 1
#    bytes in 0 chunks) is a corrupt pack (exit 2), not an I/O error.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd zstd cmp sha256sum "$PYTHON"
unset http_proxy https_proxy HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

T=$E2E_TMP
MIB=$((1024 * 1024))

# An 8 MiB + 5000 image: data in chunks 0, 1-2 (across their boundary),
# 5 to 7 (all of them) and 8 (the last 3000 bytes); packed as p.zst (no
# sidecar), and a bmap of another, 16 MiB image.
"$PYTHON" - "$T/a.img" "$T/other.img" <<'EOF' || fail "cannot generate the images"
import os
import random
import sys

MIB = 1 << 20
rng = random.Random(7)
size = 8 * MIB + 5000
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, size)
for off, n in [(0, 300000), (2 * MIB - 4096, 8192), (5 * MIB, 3 * MIB),
               (size - 3000, 3000)]:
    os.pwrite(fd, rng.randbytes(n), off)
os.close(fd)
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, 16 * MIB)
os.pwrite(fd, rng.randbytes(MIB), 0)
os.close(fd)
EOF
bm 0 pack --no-sidecar "$T/a.img" -o "$T/p.zst"
bm 0 create "$T/other.img" -o "$T/other.bmap"

# fresh FILE: 9 MB of random bytes (an older image, say).
fresh() {
	head -c 9000000 /dev/urandom >"$1" || fail "head"
}

# untouched WANT_RC MSG WHAT COPY-ARGS...: copy onto an existing file
# exits WANT_RC with MSG and leaves the file's size and bytes as they were.
untouched() {
	local rc=$1 msg=$2 what=$3 before
	shift 3
	fresh "$T/dest"
	before=$(stat -c %s "$T/dest")$(sha256sum <"$T/dest")
	bm "$rc" copy "$@" "$T/dest"
	assert_contains "$RUN_ERR" "$msg" "$what"
	assert_eq "$before" "$(stat -c %s "$T/dest")$(sha256sum <"$T/dest")" \
		"$what: size and bytes of the existing DEST"
}

other_size_bmap() {
	# A raw image: refused before DEST is opened (this passes).
	untouched 2 "describes a 16.0 MiB image" "raw image, for comparison" \
		--bmap "$T/other.bmap" "$T/a.img"
	untouched 2 "describes a 16.0 MiB image" "--bmap of a 16 MiB image" \
		--bmap "$T/other.bmap" "$T/p.zst"
	untouched 2 "describes a 16.0 MiB image" "--bmap of a 16 MiB image, --skip-unchanged" \
		--skip-unchanged --bmap "$T/other.bmap" "$T/p.zst"
	# The same mistake with a sidecar found by name.
	mkdir -p "$T/side" && cp "$T/p.zst" "$T/side/p.zst" &&
		cp "$T/other.bmap" "$T/side/p.zst.bmap" || fail "cp"
	untouched 2 "describes a 16.0 MiB image" "a sidecar of a 16 MiB image" "$T/side/p.zst"
}
case_ "1: a bmap of another size leaves an existing DEST alone" other_size_bmap

embedded_size_lie() {
	# The embedded bmap says 8396800 bytes (same block count), the header
	# 8393608; its own checksum made right.
	"$PYTHON" - "$T/p.zst" "$T/lie.zst" <<'EOF' || fail "craft"
import hashlib
import re
import struct
import sys

d = bytearray(open(sys.argv[1], "rb").read())
n, blen = struct.unpack_from("<II", d, 32)
off = 48 + 4 * n
b = bytes(d[off:off + blen])
b2 = b.replace(b"<ImageSize> 8393608 </ImageSize>",
               b"<ImageSize> 8396800 </ImageSize>")
assert b2 != b and len(b2) == len(b)
b2 = bytearray(b2)
m = re.search(rb"<BmapFileChecksum>\s*([0-9a-f]+)\s*<", b2)
b2[m.start(1):m.end(1)] = b"0" * len(m.group(1))
b2[m.start(1):m.end(1)] = hashlib.sha256(b2).hexdigest().encode()
d[off:off + blen] = b2
open(sys.argv[2], "wb").write(d)
EOF
	untouched 2 "8396800" "embedded bmap of another size" "$T/lie.zst"
	rm -f "$T/new"
	bm 2 copy "$T/lie.zst" "$T/new"
	assert_no_file "$T/new" "embedded bmap of another size: new DEST"
}
case_ "1: an embedded bmap that disagrees with the header" embedded_size_lie

discard_loop() {
	local dev before
	if [ "$(id -u)" != 0 ]; then
		skip_case "loop devices need root"
		return 0
	fi
	head -c $((20 * MIB)) /dev/urandom >"$T/back" || fail "head"
	e2e_losetup dev "$T/back" || fail "losetup: $(cat "$T/losetup.err")"
	before=$(sha256sum <"$dev")
	bm 2 copy --discard --bmap "$T/other.bmap" "$T/p.zst" "$dev"
	assert_contains "$RUN_ERR" "describes a 16.0 MiB image" "--discard, a bmap of another size"
	assert_eq "$before" "$(sha256sum <"$dev")" \
		"--discard with a bmap of another size: $dev was discarded"
}
case_ "1: --discard with a bmap of another size leaves the device alone" discard_loop

size_overflow() {
	# image_size 2^64 - 1 in 0 chunks of 256 MiB: ceil() overflows to 0.
	"$PYTHON" - "$T/p.zst" "$T/ovf.zst" <<'EOF' || fail "craft"
import struct
import sys

d = open(sys.argv[1], "rb").read()
n, blen, slen = struct.unpack_from("<III", d, 32)
off = 48 + 4 * n
bmap = d[off:off + blen]
body = b"BMAPTKPK" + struct.pack("<IIQIIII", 1, 1 << 28, (1 << 64) - 1, 0,
                                 blen, 0, 0) + bmap
head = struct.pack("<II", 0x184D2A5B, len(body)) + body
st = struct.pack("<II", len(head), 0) + struct.pack("<IBI", 1, 0, 0x8F92EAB1)
open(sys.argv[2], "wb").write(head + struct.pack("<II", 0x184D2A5E, len(st))
                              + st)
EOF
	bm 2 copy --nobmap "$T/ovf.zst" /dev/null
	assert_contains "$RUN_ERR" "corrupt packed image" "image_size 2^64 - 1"
}
case_ "2: an image size that overflows the chunk count" size_overflow

cases_done "every hostile pack case held"
