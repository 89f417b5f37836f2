# `bmaptk copy` of packed images (docs/pack.md), against the real tools:
# Debian's nginx on 127.0.0.1 (its access log counts the bytes it sent),
# zstd, gpg and Debian's bmaptool.
#
# A 64 MiB image with 11.5 MiB of random and text-like data in 9 extents
# (17 of its 65 chunks of 1 MiB hold data, the last chunk 5000 bytes) and
# v2, the same with random bytes in 3 chunks (a random one, a text one and
# the last), are packed. DESTs are regular files (copy makes them the
# image, holes as zeros) and a loop device over random bytes (where the
# bytes copy does not write stay as they were, so a DEST must equal those
# bytes with the bmap's ranges of the image written over them).
#
# 1. Local, no sidecar: the embedded bmap is used and said so; only the
#    chunks that hold data are decoded; with the sidecar beside it, or a
#    --bmap of its own (one extent left out, so the loop device shows which
#    bmap was used), that one is used and said so; --nobmap writes the
#    whole image; bmaptool copy with the sidecar gives the same DEST.
# 2. HTTP (nginx; https too): the copy equals the image, and nginx sent at
#    most 1.2 x the frames holding the needed data + the bmap frame +
#    64 KiB (computed from the pack's index and bmap by a python reader);
#    a --bmap that leaves out an extent fetches less than the file; a
#    garbage frame in a hole chunk is never fetched.
# 3. Delta: --skip-unchanged of v2 over HTTP onto DEST holding v1 equals
#    v2; nginx sent at most 1.2 x the changed chunks' frames + seek table
#    + bmap frame + 64 KiB, written_bytes (JSON) and the loop device's own
#    count of written sectors at most 1.1 x the mapped bytes of the changed
#    chunks; the same from a local pack; a raw image with a `create --split
#    1M` bmap over HTTP fetches only about the changed ranges; an identical
#    reflash sends at most the seek table + bmap frame + 64 KiB; the JSON
#    events account for the delta as for compare-while-writing (compared =
#    mapped, written + skipped = mapped, summary mapped_bytes = start's).
# 4. Signed pack (--bmap from create --split 1M, --bmap-sig): copy with
#    --keyring (no GnuPG home) and --fingerprint verifies it, also over
#    HTTP; a signature that is not the embedded bmap's (re-packed with
#    another bmap, or a comment of the embedded bmap edited with its
#    self-checksum fixed) makes copy exit 1 and write nothing.
# 5. Corrupt packs crafted from a valid one (seek table, index, truncated,
#    a frame of another length, the embedded bmap's self-checksum): exit 2
#    (1 for the bmap's checksum, as for any bmap) with one error line,
#    before the first write: an existing DEST (file, loop device) is byte
#    for byte as it was, a new one is not left behind. Over HTTP the frame
#    of another length is only found when it is decoded (exit 2, its
#    message, a new DEST removed). A plain `zstd -c` image still copies.
# Without root (loop devices), nginx, gpg or bmaptool those parts are
# skipped with a reason.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd zstd cmp sha256sum awk "$PYTHON"
unset http_proxy https_proxy HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

T=$E2E_TMP
e2e_ramdir R # images, packs and DEST files
MIB=$((1024 * 1024))
SIZE=$((64 * MIB + 5000))
KIB64=65536
PK=$T/pk.py

# ---- pk.py: reads and crafts packed images (docs/pack.md) ----------------
cat >"$PK" <<'EOF'
import hashlib
import json
import re
import struct
import sys

BMAP_MAGIC, SEEK_MAGIC = 0x184D2A5B, 0x184D2A5E


class Pack:
    def __init__(self, path):
        self.data = d = bytearray(open(path, "rb").read())
        if (len(d) < 48 or struct.unpack_from("<I", d, 0)[0] != BMAP_MAGIC
                or d[8:16] != b"BMAPTKPK"):
            sys.exit("pk: %s: not a packed image" % path)
        self.payload = struct.unpack_from("<I", d, 4)[0]
        _, self.chunk = struct.unpack_from("<II", d, 16)
        self.image_size = struct.unpack_from("<Q", d, 24)[0]
        self.n, self.blen, self.slen, _ = struct.unpack_from("<IIII", d, 32)
        self.index = list(struct.unpack_from("<%dI" % self.n, d, 48))
        self.bmap_off = 48 + 4 * self.n
        self.bmap = bytes(d[self.bmap_off:self.bmap_off + self.blen])
        self.bframe = 8 + self.payload
        self.st_len = 8 + 8 * (self.n + 1) + 9
        self.st_off = len(d) - self.st_len
        if struct.unpack_from("<I", d, self.st_off)[0] != SEEK_MAGIC:
            sys.exit("pk: %s: no seek table at its end" % path)
        table = [struct.unpack_from("<II", d, self.st_off + 8 + 8 * i)
                 for i in range(self.n + 1)]
        if table[0] != (self.bframe, 0):
            sys.exit("pk: %s: seek table entry 0 is not the bmap frame" % path)
        self.off, o = [], self.bframe
        for c in range(self.n):
            if table[c + 1][0] != self.index[c]:
                sys.exit("pk: %s: seek table and index disagree" % path)
            self.off.append(o)
            o += self.index[c]
        if o != self.st_off:
            sys.exit("pk: %s: the frames do not add up" % path)

    def set_index(self, c, v):
        struct.pack_into("<I", self.data, 48 + 4 * c, v)

    def set_table(self, c, v):  # the entry of chunk c (entry c + 1)
        struct.pack_into("<I", self.data, self.st_off + 8 + 8 * (c + 1), v)


def ranges(bmap):
    """(offset, end) in bytes of each range of a bmap's text."""
    bs = int(re.search(rb"<BlockSize>\s*(\d+)", bmap).group(1))
    size = int(re.search(rb"<ImageSize>\s*(\d+)", bmap).group(1))
    return [(int(a) * bs, min((int(b or a) + 1) * bs, size))
            for a, b in re.findall(
                rb"<Range[^>]*>\s*(\d+)(?:\s*-\s*(\d+))?\s*</Range>", bmap)]


def chunks_of(rs, chunk):
    cs = set()
    for off, end in rs:
        cs.update(range(off // chunk, (end - 1) // chunk + 1))
    return cs


def main():
    cmd, a = sys.argv[1], sys.argv[2:]
    if cmd == "info":  # OUT: its layout, as shell assignments
        p = Pack(a[0])
        dc = chunks_of(ranges(p.bmap), p.chunk)
        print("P_N=%d P_BFRAME=%d P_STLEN=%d P_FILE=%d P_DATA_CHUNKS=%d "
              "P_DATA_FRAMES=%d P_HOLE_FRAMES=%d" % (
                  p.n, p.bframe, p.st_len, len(p.data), len(dc),
                  sum(p.index[c] for c in dc),
                  sum(p.index[c] for c in range(p.n) if c not in dc)))
    elif cmd == "need":  # OUT BMAP: "CHUNKS BYTES" of the frames BMAP needs
        p = Pack(a[0])
        cs = chunks_of(ranges(open(a[1], "rb").read()), p.chunk)
        print(len(cs), sum(p.index[c] for c in cs))
    elif cmd == "frames":  # OUT C,C,...: compressed bytes of those frames
        p = Pack(a[0])
        print(sum(p.index[int(c)] for c in a[1].split(",") if c))
    elif cmd == "embedded":  # OUT BMAP: write the embedded bmap to BMAP
        open(a[1], "wb").write(Pack(a[0]).bmap)
    elif cmd == "changed":  # IMG1 IMG2 BMAP CHUNK: the chunks whose mapped
        # bytes differ, and how many mapped bytes they hold
        f1, f2, chunk = open(a[0], "rb"), open(a[1], "rb"), int(a[3])
        bad, held = set(), {}
        for off, end in ranges(open(a[2], "rb").read()):
            for c in range(off // chunk, (end - 1) // chunk + 1):
                lo, hi = max(off, c * chunk), min(end, (c + 1) * chunk)
                f1.seek(lo)
                f2.seek(lo)
                if f1.read(hi - lo) != f2.read(hi - lo):
                    bad.add(c)
                held[c] = held.get(c, 0) + hi - lo
        print("CH_CHUNKS=%s CH_MAPPED=%d" % (
            ",".join(map(str, sorted(bad))), sum(held[c] for c in bad)))
    elif cmd == "expect":  # BASE IMG BMAP OUT: BASE with IMG's ranges on it
        img, out = open(a[1], "rb"), bytearray(open(a[0], "rb").read())
        for off, end in ranges(open(a[2], "rb").read()):
            img.seek(off)
            out[off:end] = img.read(end - off)
        open(a[3], "wb").write(out)
    elif cmd == "json":  # FILE EVENT FIELD: FIELD of the last EVENT line
        v = None
        for line in open(a[0], encoding="utf-8"):
            o = json.loads(line)
            if o.get("event") == a[1] and a[2] in o:
                v = o[a[2]]
        if v is None:
            sys.exit("pk: no %s event with %s in %s" % (a[1], a[2], a[0]))
        print(v)
    elif cmd == "craft":  # KIND IN OUT [FRAME]: IN made corrupt; prints the
        # chunk it broke
        kind, p, out = a[0], Pack(a[1]), a[2]
        d = p.data
        dc = sorted(chunks_of(ranges(p.bmap), p.chunk))
        c = dc[len(dc) // 2]  # a chunk with data, in the middle
        if kind == "table-sum":  # a seek table entry 4 KiB too big
            p.set_table(c, p.index[c] + 4096)
        elif kind == "index-off-by-one":  # the index only: 1 byte too many
            p.set_index(c, p.index[c] + 1)
        elif kind == "frame-off-by-one":  # index and table agree, the sum
            # too, but frame c + 1 would start a byte late
            for f in (p.set_index, p.set_table):
                f(c, p.index[c] + 1)
                f(c + 1, p.index[c + 1] - 1)
        elif kind == "past-end":  # index and table: the last frame runs
            # 1 MiB past the end of the file
            for f in (p.set_index, p.set_table):
                f(p.n - 1, p.index[p.n - 1] + (1 << 20))
        elif kind == "footer-count":  # the footer counts one entry more
            struct.pack_into("<I", d, len(d) - 9, p.n + 2)
        elif kind == "cut-frame":  # the file ends in the middle of frame c
            del d[p.off[c] + p.index[c] // 2:]
        elif kind == "cut-table":  # the file ends where the seek table starts
            del d[p.st_off:]
        elif kind == "bmap-byte":  # one hex digit of a range's digest
            i = p.bmap_off + p.bmap.index(b'chksum="') + 8
            d[i] = ord("1") if d[i] == ord("0") else ord("0")
        elif kind == "bmap-comment":  # a letter of a comment changed and
            # the bmap's self-checksum made right again
            b = bytearray(p.bmap)
            i = b.index(b"<!--") + 5
            b[i] = ord("X") if b[i] != ord("X") else ord("Y")
            m = re.search(rb"<BmapFileChecksum>\s*([0-9a-f]+)\s*<", b)
            b[m.start(1):m.end(1)] = b"0" * len(m.group(1))
            b[m.start(1):m.end(1)] = hashlib.sha256(b).hexdigest().encode()
            d[p.bmap_off:p.bmap_off + p.blen] = b
        elif kind == "other-length":  # frame c replaced by the valid zstd
            # frame FRAME of another content size; index and table follow
            new = open(a[3], "rb").read()
            d[p.off[c]:p.off[c] + p.index[c]] = new
            p.st_off += len(new) - p.index[c]
            for f in (p.set_index, p.set_table):
                f(c, len(new))
        elif kind == "hole-garbage":  # a chunk without data: its frame
            # overwritten with as many garbage bytes
            c = [x for x in range(p.n) if x not in set(dc)][1]
            d[p.off[c]:p.off[c] + p.index[c]] = b"\xa5" * p.index[c]
        elif kind == "bad-checksum":  # a byte inside frame c flipped
            d[p.off[c] + p.index[c] // 2] ^= 0xFF
        else:
            sys.exit("pk: unknown corruption " + kind)
        open(out, "wb").write(d)
        print(c)
    else:
        sys.exit("pk: unknown command " + cmd)


main()
EOF
pk() { "$PYTHON" "$PK" "$@"; }

# ---- the images --------------------------------------------------------
# v1; v2: random bytes in chunks 6 (text), 13 (random) and 64 (the last,
# 5000 bytes); sub: v1 without the extent at 30 MiB (chunks 30 to 33).
"$PYTHON" - "$R" "$SIZE" <<'EOF' || fail "cannot generate the images"
import os
import random
import sys

M = 1 << 20
d, size = sys.argv[1], int(sys.argv[2])
rng = random.Random(20251206)
words = [b"kernel", b"module", b"usr/lib", b"libc.so.6", b"#include",
         b"return", b"config", b"0x%08x", b"systemd", b"\n", b"  ", b"EFI"]
text = b" ".join(rng.choice(words) for _ in range(520000))[:3 * M]
assert len(text) == 3 * M
ext = [(0, rng.randbytes(M + 4096)),
       (5 * M - 8192, text),
       (12 * M, rng.randbytes(2 * M)),
       (20 * M + 12288, text[M:M + M // 2]),
       (30 * M, rng.randbytes(3 * M + 12288)),
       (40 * M, text[7:M + 7]),
       (47 * M + 100, text[:5000]),
       (55 * M + 4096, rng.randbytes(M - 8192)),
       (size - 5000, rng.randbytes(5000))]
changes = [(6 * M + 100, rng.randbytes(64 * 1024)),
           (13 * M + 4096, rng.randbytes(300 * 1024)),
           (size - 3000, rng.randbytes(1000))]


def write(name, extents):
    fd = os.open(os.path.join(d, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                 0o644)
    os.ftruncate(fd, size)
    for off, data in extents:
        assert os.pwrite(fd, data, off) == len(data)
    os.close(fd)


write("v1.img", ext)
write("v2.img", ext + changes)
write("sub.img", [e for e in ext if e[0] != 30 * M])
EOF
V1=$R/v1.img
V2=$R/v2.img
X=$T/bmaps # bmaps kept away from the packs
P=$R/p     # the local packs, nothing beside them
W=$R/www   # what nginx serves
mkdir "$X" "$P" "$W" || fail "mkdir"
# sub.bmap: a bmap of v1 (sub's ranges hold v1's bytes) that leaves out
# the extent at 30 MiB; not split, so its ranges cross chunks.
"$BMAPTK" -q create "$R/sub.img" -o "$X/sub.bmap" &&
	"$BMAPTK" -q create "$V1" -o "$X/v1.bmap" &&
	"$BMAPTK" -q create --split 1M "$V2" -o "$X/v2split.bmap" ||
	fail "bmaptk create"
grep -q '<Range.*> *1278 *- *2045 *</Range>' "$X/sub.bmap" ||
	fail "sub.bmap: no range across chunks 4 to 7"

bm 0 pack "$V1" -o "$P/v1.zst"
mv "$P/v1.zst.bmap" "$X/v1.zst.bmap" || fail "no sidecar v1.zst.bmap"
pk embedded "$P/v1.zst" "$X/v1.embedded" || fail "pk embedded"
assert_same_file "$X/v1.zst.bmap" "$X/v1.embedded" "sidecar vs embedded bmap"
bm 0 pack --no-sidecar "$V2" -o "$W/v2.zst"
ln "$P/v1.zst" "$W/v1.zst" || fail "ln v1.zst"
eval "$(pk info "$P/v1.zst")" || fail "pk info"
V1_INFO="frames $P_N, $P_DATA_CHUNKS with data ($P_DATA_FRAMES bytes), holes $P_HOLE_FRAMES bytes, bmap frame $P_BFRAME, file $P_FILE"
note "v1.zst: $V1_INFO"
[ "$P_N" = 65 ] && [ "$P_DATA_CHUNKS" = 17 ] || fail "layout: $V1_INFO"
eval "$(pk changed "$V1" "$V2" "$X/v2split.bmap" "$MIB")" || fail "pk changed"
assert_eq "6,13,64" "$CH_CHUNKS" "the chunks v2 changes"
CH_FRAMES=$(pk frames "$W/v2.zst" "$CH_CHUNKS") || fail "pk frames"
note "v2 changes chunks $CH_CHUNKS: $CH_MAPPED mapped bytes, frames of $CH_FRAMES bytes in v2.zst"

# ---- a loop device over random bytes ----------------------------------------
# $R/pristine: what the device holds before each use (reset_loop); 2 MiB
# more than the image.
L=
if [ "$(id -u)" != 0 ] || ! command -v losetup >/dev/null 2>&1; then
	note "no loop device (needs root and losetup): block-device DESTs skipped"
else
	head -c $((SIZE - 5000 + 3 * MIB)) /dev/urandom >"$R/pristine" &&
		cp "$R/pristine" "$R/backing" || fail "cannot fill the backing file"
	if e2e_losetup L "$R/backing"; then
		LOOPSTAT=/sys/block/$(basename "$L")/stat
		[ -r "$LOOPSTAT" ] || fail "no $LOOPSTAT"
	else
		note "no loop device: $(cat "$T/losetup.err")"
		L=
	fi
fi
reset_loop() {
	dd if="$R/pristine" of="$L" bs=4M conv=fsync status=none ||
		fail "cannot reset $L"
}
# loop_holds IMG BMAP WHAT: the device is the pristine bytes with IMG's
# ranges (BMAP's) written over them.
loop_holds() {
	pk expect "$R/pristine" "$1" "$2" "$R/expect" || fail "pk expect"
	cmp -s "$R/expect" "$L" ||
		fail "$3: $L is not the random bytes with $(basename "$1")'s" \
			"ranges of $(basename "$2") over them" \
			"($(cmp "$R/expect" "$L" 2>&1 | head -n 1))"
	rm -f "$R/expect"
}
written_sectors() { awk '{ print $7 }' "$LOOPSTAT"; }

# fresh FILE: a regular file of random bytes, bigger than the image.
head -c $((SIZE + 3 * MIB)) /dev/urandom >"$R/random" ||
	fail "cannot make $R/random"
fresh() {
	cp "$R/random" "$1" || fail "cannot fill $1"
}
F=$R/dest.img

# ---- nginx ----------------------------------------------------------------
G=
GS=
NLOG=
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
start_nginx() {
	local n=$T/nginx tls=
	[ -x "$NGINX" ] || {
		NGINX_WHY="nginx is not installed"
		return 1
	}
	mkdir -p "$n"
	NPORT=$(free_port)
	SPORT=$(free_port)
	if command -v openssl >/dev/null 2>&1 &&
		openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
			-keyout "$n/key.pem" -out "$n/cert.pem" -subj "/CN=127.0.0.1" \
			-addext "subjectAltName=IP:127.0.0.1" >"$n/openssl.log" 2>&1; then
		tls="server { listen 127.0.0.1:$SPORT ssl; root $W;
		ssl_certificate $n/cert.pem; ssl_certificate_key $n/key.pem; }"
	fi
	cat >"$n/nginx.conf" <<EOF2
daemon off;
master_process off;
$( ((EUID == 0)) && echo "user root;")
pid $n/nginx.pid;
error_log $n/error.log;
events { worker_connections 64; }
http {
	log_format bytes '\$request_method \$uri \$status \$body_bytes_sent \$http_range';
	access_log $n/access.log bytes;
	client_body_temp_path $n/body;
	proxy_temp_path $n/proxy;
	fastcgi_temp_path $n/fastcgi;
	uwsgi_temp_path $n/uwsgi;
	scgi_temp_path $n/scgi;
	default_type application/octet-stream;
	sendfile on;
	server { listen 127.0.0.1:$NPORT; root $W; }
	$tls
}
EOF2
	"$NGINX" -e "$n/error.log" -p "$n" -c "$n/nginx.conf" 2>"$n/stderr" &
	NPID=$!
	on_exit "kill $NPID; wait $NPID"
	wait_port "$NPORT" "$NPID" || {
		NGINX_WHY="nginx did not start: $(cat "$n/stderr" "$n/error.log" 2>/dev/null)"
		return 1
	}
	G=http://127.0.0.1:$NPORT
	NLOG=$n/access.log
	if [ -n "$tls" ]; then
		GS=https://127.0.0.1:$SPORT
		CACERT=$n/cert.pem
	fi
}
start_nginx || note "HTTP cases skipped: $NGINX_WHY"
# mark: remember where the access log ends; sent PATH: body bytes nginx
# sent for GETs of PATH since the mark (nginx logs a request once it is
# done, which may be a moment after the client has it all).
mark() { NMARK=$(wc -l <"$NLOG"); }
sent() {
	local s prev=x
	for _ in 1 2 3 4 5; do
		sleep 0.1
		s=$(tail -n +$((NMARK + 1)) "$NLOG" |
			awk -v p="$1" '$1 == "GET" && $2 == p { s += $4 } END { print s + 0 }')
		[ "$prev" = "$s" ] && break
		prev=$s
	done
	echo "$s"
}
# at_most WHAT GOT LIMIT [FLOOR]: GOT <= LIMIT (and >= FLOOR: the bytes
# that must have come, so that a log that counts nothing cannot pass).
at_most() {
	[ "$2" -le "$3" ] || fail "$1: $2 bytes, more than the $3 allowed"
	[ "$2" -ge "${4:-0}" ] || fail "$1: $2 bytes, fewer than the $4 needed"
	note "$1: $2 bytes (at most $3)"
}

# ---- 1. local ----------------------------------------------------------------
local_embedded() {
	local threads
	# A new file; then over a bigger file of random bytes.
	rm -f "$F"
	bm 0 -d copy "$P/v1.zst" "$F"
	assert_contains "$RUN_ERR" "using the bmap embedded in $P/v1.zst" \
		"no sidecar"
	assert_not_contains "$RUN_ERR" "also carries a bmap" "no sidecar"
	assert_contains "$RUN_ERR" "decoding $P_DATA_CHUNKS of $P_N frames" \
		"only the chunks with data are decoded"
	assert_contains "$RUN_ERR" "$P_DATA_CHUNKS decoded" "frames decoded"
	# On every core (at most one a frame).
	threads=$(sed -n 's/.*frames ([^)]*) on \([0-9]*\) thread(s).*/\1/p' \
		"$T/run.err")
	if [ "$(nproc)" -ge 2 ]; then
		[ "${threads:-0}" -ge 2 ] ||
			fail "decoded on [$threads] threads with $(nproc) cores"
	fi
	assert_same_file "$V1" "$F" "copy of v1.zst into a new file"
	fresh "$F"
	bm 0 --json copy "$P/v1.zst" "$F"
	printf '%s\n' "$RUN_ERR" >"$T/l.json"
	assert_same_file "$V1" "$F" "copy of v1.zst over random bytes"
	assert_eq "$P/v1.zst (embedded)" "$(pk json "$T/l.json" bmap source)" \
		"JSON bmap source"
	assert_eq "$(pk json "$T/l.json" start mapped_bytes)" \
		"$(pk json "$T/l.json" dest written_bytes)" "written = mapped bytes"
	if [ -z "$L" ]; then
		skip_case "loop device DEST"
		return 0
	fi
	reset_loop
	bm 0 copy "$P/v1.zst" "$L"
	assert_contains "$RUN_ERR" "using the bmap embedded in $P/v1.zst" \
		"loop device"
	loop_holds "$V1" "$X/v1.zst.bmap" "copy of v1.zst onto $L"
}
case_ "1: local, no sidecar: the embedded bmap" local_embedded

local_named() {
	cp "$X/v1.zst.bmap" "$P/v1.zst.bmap" || fail "cp"
	on_exit "rm -f '$P/v1.zst.bmap'"
	rm -f "$F"
	bm 0 --json copy "$P/v1.zst" "$F"
	printf '%s\n' "$RUN_ERR" >"$T/n.json"
	assert_contains "$RUN_ERR" \
		"$P/v1.zst also carries a bmap; using $P/v1.zst.bmap" "sidecar"
	assert_eq "$P/v1.zst.bmap" "$(pk json "$T/n.json" bmap source)" \
		"JSON bmap source with the sidecar"
	assert_same_file "$V1" "$F" "copy with the sidecar"
	# --bmap wins over both; it leaves out the extent at 30 MiB.
	rm -f "$F"
	bm 0 -d copy --bmap "$X/sub.bmap" "$P/v1.zst" "$F"
	assert_contains "$RUN_ERR" \
		"$P/v1.zst also carries a bmap; using $X/sub.bmap" "--bmap"
	assert_not_contains "$RUN_ERR" "using the bmap embedded" "--bmap"
	read -r nsub _ <<<"$(pk need "$P/v1.zst" "$X/sub.bmap")"
	assert_contains "$RUN_ERR" "decoding $nsub of $P_N frames" \
		"--bmap: frames decoded"
	assert_same_file "$R/sub.img" "$F" "copy with --bmap sub.bmap"
	if [ -n "$L" ]; then
		reset_loop
		bm 0 copy --bmap "$X/sub.bmap" "$P/v1.zst" "$L"
		loop_holds "$V1" "$X/sub.bmap" "--bmap sub.bmap onto $L"
	else
		skip_case "loop device DEST"
	fi
}
case_ "1: local, sidecar or --bmap win and are named" local_named

local_nobmap() {
	fresh "$F"
	bm 0 copy --nobmap "$P/v1.zst" "$F"
	assert_contains "$RUN_ERR" "copying the entire image" "--nobmap"
	assert_same_file "$V1" "$F" "--nobmap into a file"
	if [ -n "$L" ]; then
		reset_loop
		bm 0 copy --nobmap "$P/v1.zst" "$L"
		cmp -n "$SIZE" "$V1" "$L" || fail "--nobmap: $L does not hold v1"
		cmp -s <(tail -c +$((SIZE + 1)) "$R/pristine") \
			<(tail -c +$((SIZE + 1)) "$L") ||
			fail "--nobmap: the bytes after the image on $L changed"
	fi
}
case_ "1: --nobmap writes the whole image" local_nobmap

local_bmaptool() {
	local mine=$R/bmaptk.img
	if ! command -v bmaptool >/dev/null 2>&1; then
		skip_case "bmaptool is not installed"
		return 0
	fi
	rm -f "$F" "$mine"
	"$BMAPTK" -q copy "$P/v1.zst" "$mine" || fail "bmaptk copy"
	run bmaptool copy --bmap "$X/v1.zst.bmap" "$P/v1.zst" "$F"
	assert_rc 0 "bmaptool copy --bmap v1.zst.bmap v1.zst"
	assert_same_file "$mine" "$F" "bmaptool's DEST vs bmaptk's"
	assert_same_file "$V1" "$F" "bmaptool copy"
	rm -f "$mine"
	if [ -n "$L" ]; then
		reset_loop
		run bmaptool copy --bmap "$X/v1.zst.bmap" "$P/v1.zst" "$L"
		assert_rc 0 "bmaptool copy onto $L"
		loop_holds "$V1" "$X/v1.zst.bmap" "bmaptool copy onto $L"
	fi
}
case_ "1: bmaptool copy with the sidecar" local_bmaptool

# ---- 2. HTTP ------------------------------------------------------------------
http_copy() {
	local got need nsub limit
	if [ -z "$G" ]; then
		skip_case "HTTP: $NGINX_WHY"
		return 0
	fi
	rm -f "$F"
	mark
	bm 0 copy "$G/v1.zst" "$F"
	assert_contains "$RUN_ERR" "using the bmap embedded in $G/v1.zst" \
		"over HTTP"
	assert_same_file "$V1" "$F" "copy of $G/v1.zst"
	got=$(sent /v1.zst)
	at_most "v1.zst over HTTP, sent for $P_DATA_FRAMES bytes of frames with data" \
		"$got" $((P_DATA_FRAMES * 12 / 10 + P_BFRAME + KIB64)) \
		$((P_DATA_FRAMES + P_BFRAME))
	# Leaving out the extent at 30 MiB: its frames are not fetched.
	rm -f "$F"
	mark
	bm 0 copy --bmap "$X/sub.bmap" "$G/v1.zst" "$F"
	assert_same_file "$R/sub.img" "$F" "copy of $G/v1.zst with sub.bmap"
	read -r nsub need <<<"$(pk need "$P/v1.zst" "$X/sub.bmap")"
	got=$(sent /v1.zst)
	at_most "v1.zst over HTTP with sub.bmap, sent for $need bytes of $nsub frames" \
		"$got" $((need * 12 / 10 + P_BFRAME + KIB64)) $((need + P_BFRAME))
	limit=$((P_FILE - (P_DATA_FRAMES - need) * 8 / 10))
	at_most "v1.zst over HTTP with sub.bmap, sent of the $P_FILE-byte file" \
		"$got" "$limit"
	# A frame no copy needs is garbage: never fetched, never decoded.
	pk craft hole-garbage "$P/v1.zst" "$W/hole.zst" >/dev/null || fail "craft"
	rm -f "$F"
	bm 0 copy "$G/hole.zst" "$F"
	assert_same_file "$V1" "$F" "copy of a pack with a garbage hole frame"
	if [ -n "$GS" ]; then
		rm -f "$F"
		bm 0 copy --cacert "$CACERT" "$GS/v1.zst" "$F"
		assert_contains "$RUN_ERR" "using the bmap embedded in $GS/v1.zst" \
			"https"
		assert_same_file "$V1" "$F" "copy of $GS/v1.zst"
	else
		skip_case "https: openssl could not make a certificate"
	fi
}
case_ "2: HTTP: only the frames with data are fetched" http_copy

# ---- 3. delta ---------------------------------------------------------------
# delta_checks JSON WHAT: written_bytes at most 1.1 x the changed chunks'
# mapped bytes, and the summary of the comparison.
delta_checks() {
	local w
	w=$(pk json "$1" dest written_bytes) || fail "$2: no written_bytes"
	[ "$w" -gt 0 ] || fail "$2: nothing written"
	at_most "$2: written_bytes for $CH_MAPPED mapped bytes in the changed chunks" \
		"$w" $((CH_MAPPED * 11 / 10))
	grep -q 'already on DEST; fetching the other 3 ' "$1" ||
		fail "$2: no 'already on DEST; fetching the other 3' in $(cat "$1")"
}

delta_http() {
	local s0 s1 dev limit
	if [ -z "$G" ]; then
		skip_case "HTTP: $NGINX_WHY"
		return 0
	fi
	limit=$((CH_FRAMES * 12 / 10 + P_STLEN + P_BFRAME + KIB64))
	if [ -n "$L" ]; then
		reset_loop
		bm 0 -q copy "$P/v1.zst" "$L"
		mark
		s0=$(written_sectors)
		bm 0 --json copy --skip-unchanged "$G/v2.zst" "$L"
		s1=$(written_sectors)
		printf '%s\n' "$RUN_ERR" >"$T/d.json"
		loop_holds "$V2" "$X/v2split.bmap" "--skip-unchanged v2.zst onto $L"
		delta_checks "$T/d.json" "delta over HTTP onto $L"
		dev=$(((s1 - s0) * 512))
		at_most "delta over HTTP: the kernel's count of bytes written to $L" \
			"$dev" $((CH_MAPPED * 11 / 10))
		at_most "delta over HTTP onto $L: sent for $CH_FRAMES bytes of changed frames" \
			"$(sent /v2.zst)" "$limit" "$CH_FRAMES"
	else
		skip_case "delta onto a loop device"
	fi
	cp --sparse=always "$V1" "$F" || fail "cp"
	mark
	bm 0 --json copy --skip-unchanged "$G/v2.zst" "$F"
	printf '%s\n' "$RUN_ERR" >"$T/f.json"
	assert_same_file "$V2" "$F" "--skip-unchanged $G/v2.zst onto a file"
	delta_checks "$T/f.json" "delta over HTTP onto a file"
	at_most "delta over HTTP onto a file: sent for $CH_FRAMES bytes of changed frames" \
		"$(sent /v2.zst)" "$limit" "$CH_FRAMES"
}
case_ "3: delta of a packed image over HTTP" delta_http

delta_local() {
	cp --sparse=always "$V1" "$F" || fail "cp"
	bm 0 --json copy --skip-unchanged "$W/v2.zst" "$F"
	printf '%s\n' "$RUN_ERR" >"$T/dl.json"
	assert_same_file "$V2" "$F" "--skip-unchanged v2.zst (local) onto a file"
	delta_checks "$T/dl.json" "local delta"
}
case_ "3: delta of a local packed image" delta_local

delta_raw() {
	if [ -z "$G" ]; then
		skip_case "HTTP: $NGINX_WHY"
		return 0
	fi
	cp --sparse=always "$V2" "$W/v2.raw" &&
		cp "$X/v2split.bmap" "$W/v2.raw.bmap" || fail "cp"
	cp --sparse=always "$V1" "$F" || fail "cp"
	mark
	bm 0 --json copy --skip-unchanged "$G/v2.raw" "$F"
	printf '%s\n' "$RUN_ERR" >"$T/r.json"
	assert_same_file "$V2" "$F" "--skip-unchanged $G/v2.raw onto a file"
	assert_eq "$G/v2.raw.bmap" "$(pk json "$T/r.json" bmap source)" \
		"the raw image's bmap"
	delta_checks "$T/r.json" "raw delta over HTTP"
	at_most "raw delta over HTTP: sent for $CH_MAPPED changed mapped bytes" \
		"$(sent /v2.raw)" $((CH_MAPPED * 12 / 10 + KIB64)) "$CH_MAPPED"
	if [ -n "$L" ]; then
		reset_loop
		bm 0 -q copy "$P/v1.zst" "$L"
		mark
		bm 0 --json copy --skip-unchanged "$G/v2.raw" "$L"
		printf '%s\n' "$RUN_ERR" >"$T/rl.json"
		loop_holds "$V2" "$X/v2split.bmap" "--skip-unchanged v2.raw onto $L"
		delta_checks "$T/rl.json" "raw delta over HTTP onto $L"
		at_most "raw delta over HTTP onto $L: sent for $CH_MAPPED changed mapped bytes" \
			"$(sent /v2.raw)" $((CH_MAPPED * 12 / 10 + KIB64)) \
			"$CH_MAPPED"
	fi
}
case_ "3: delta of a raw image over HTTP (create --split 1M)" delta_raw

# The delta's accounting, as docs/json-events.md and the compare-while-
# writing path (farm_skip_unchanged.sh) give it: every mapped byte was
# compared, the unchanged ones skipped, and the summary counts the image's
# mapped bytes, as the start event does.
delta_accounting() {
	local j=$T/a.json w c s m
	cp --sparse=always "$V1" "$F" || fail "cp"
	bm 0 --json copy --skip-unchanged "$W/v2.zst" "$F"
	printf '%s\n' "$RUN_ERR" >"$j"
	assert_same_file "$V2" "$F" "--skip-unchanged v2.zst"
	m=$(pk json "$j" start mapped_bytes) &&
		w=$(pk json "$j" dest written_bytes) &&
		c=$(pk json "$j" dest compared_bytes) &&
		s=$(pk json "$j" dest skipped_bytes) || fail "JSON fields"
	note "delta: mapped $m, written $w, compared $c, skipped $s;" \
		"summary mapped_bytes $(pk json "$j" summary mapped_bytes)"
	assert_eq "$m" "$(pk json "$j" summary mapped_bytes)" \
		"summary mapped_bytes vs start mapped_bytes"
	assert_eq "$m" "$c" "compared_bytes (every mapped byte was hashed)"
	assert_eq "$m" "$((w + s))" "written_bytes + skipped_bytes"
}
case_ "3: delta accounting in the JSON events" delta_accounting

# Nothing changed: the issue's bound with no changed chunk.
delta_identical() {
	local w
	if [ -z "$G" ]; then
		skip_case "HTTP: $NGINX_WHY"
		return 0
	fi
	cp --sparse=always "$V2" "$F" || fail "cp"
	mark
	bm 0 --json copy --skip-unchanged "$G/v2.zst" "$F"
	printf '%s\n' "$RUN_ERR" >"$T/i.json"
	assert_same_file "$V2" "$F" "identical reflash"
	w=$(pk json "$T/i.json" dest written_bytes) || fail "no written_bytes"
	assert_eq 0 "$w" "written_bytes of an identical reflash"
	at_most "identical reflash over HTTP: sent" "$(sent /v2.zst)" \
		$((P_STLEN + P_BFRAME + KIB64)) "$P_BFRAME"
}
case_ "3: an identical reflash over HTTP" delta_identical

# ---- 4. signed --------------------------------------------------------------
signed() {
	local gh=$T/gnupg s=$R/signed fpr
	if [ ! -x /usr/bin/gpg ]; then
		skip_case "gpg is not installed"
		return 0
	fi
	mkdir -m 700 "$gh" && mkdir "$s" || fail "mkdir"
	on_exit "/usr/bin/gpgconf --homedir '$gh' --kill all"
	export GNUPGHOME=$gh
	/usr/bin/gpg --batch --passphrase '' --quick-gen-key \
		"Sid Signer <sid@example.org>" future-default default 1y \
		>"$T/gen.log" 2>&1 || fail "gpg: $(cat "$T/gen.log")"
	fpr=$(/usr/bin/gpg --batch --with-colons --list-keys sid@example.org \
		2>/dev/null | awk -F: '$1 == "fpr" { print $10; exit }')
	[ ${#fpr} = 40 ] || fail "no fingerprint: [$fpr]"
	/usr/bin/gpg --batch --export "$fpr" >"$T/sid.kr" 2>/dev/null &&
		[ -s "$T/sid.kr" ] || fail "gpg --export"
	"$BMAPTK" -q create --split 1M "$V1" -o "$X/s.bmap" &&
		"$BMAPTK" -q create --split 512K "$V1" -o "$X/s512.bmap" ||
		fail "bmaptk create --split"
	cmp -s "$X/s.bmap" "$X/s512.bmap" && fail "the two bmaps are the same"
	/usr/bin/gpg --batch --yes --armor --detach-sign --output \
		"$X/s.bmap.asc" "$X/s.bmap" >"$T/sign.log" 2>&1 ||
		fail "gpg --detach-sign: $(cat "$T/sign.log")"
	bm 0 pack "$V1" --bmap "$X/s.bmap" --bmap-sig "$X/s.bmap.asc" \
		-o "$s/s.zst"
	rm -f "$s/s.zst.bmap" "$s/s.zst.bmap.asc"
	# --keyring with no GnuPG home at all; --fingerprint with one.
	rm -f "$F"
	run env -u GNUPGHOME HOME="$T/nohome" "$BMAPTK" copy --keyring \
		"$T/sid.kr" "$s/s.zst" "$F"
	assert_rc 0 "copy --keyring of a signed pack"
	assert_no_sanitizer
	assert_contains "$RUN_ERR" "using the bmap embedded in $s/s.zst" "signed"
	assert_contains "$RUN_ERR" \
		"successfully verified bmap file signature of Sid Signer <sid@example.org> (fingerprint $fpr)" \
		"--keyring"
	assert_same_file "$V1" "$F" "copy of the signed pack, --keyring"
	rm -f "$F"
	bm 0 --json copy --fingerprint "$fpr" "$s/s.zst" "$F"
	printf '%s\n' "$RUN_ERR" >"$T/s.json"
	assert_eq verified "$(pk json "$T/s.json" bmap signature)" \
		"--fingerprint: JSON signature"
	assert_same_file "$V1" "$F" "copy of the signed pack, --fingerprint"
	if [ -n "$G" ]; then
		ln "$s/s.zst" "$W/s.zst" || fail "ln"
		rm -f "$F"
		bm 0 copy --fingerprint "$fpr" "$G/s.zst" "$F"
		assert_contains "$RUN_ERR" "successfully verified bmap file signature" \
			"over HTTP"
		assert_same_file "$V1" "$F" "copy of $G/s.zst"
	fi
	# The signature of another bmap: packed again with s512.bmap (pack
	# may refuse), and a comment of the embedded bmap edited, its
	# self-checksum made right.
	run "$BMAPTK" pack "$V1" --bmap "$X/s512.bmap" --bmap-sig \
		"$X/s.bmap.asc" -o "$s/t.zst"
	if [ "$RUN_RC" != 0 ]; then
		assert_no_file "$s/t.zst" "a refused pack"
		note "pack refused a signature of another bmap: $RUN_ERR"
	else
		note "pack embedded the signature of another bmap (not checked)"
		rm -f "$s/t.zst.bmap" "$s/t.zst.bmap.asc"
		refused_sig "$s/t.zst" "$fpr" "re-packed with another bmap"
	fi
	pk craft bmap-comment "$s/s.zst" "$s/u.zst" >/dev/null || fail "craft"
	refused_sig "$s/u.zst" "$fpr" "an edited embedded bmap"
}
# refused_sig PACK FPR WHAT: copy exits 1, writes nothing, with and
# without --fingerprint.
refused_sig() {
	local before
	rm -f "$F"
	bm 1 copy --fingerprint "$2" "$1" "$F"
	assert_contains "$RUN_ERR" "requested fingerprint $2 did not sign" "$3"
	assert_no_file "$F" "$3: new DEST"
	fresh "$F"
	before=$(sha256sum <"$F")
	bm 1 copy "$1" "$F"
	assert_contains "$RUN_ERR" "discovered a BAD GPG signature" "$3"
	assert_not_contains "$RUN_ERR" "successfully verified" "$3"
	assert_eq "$before" "$(sha256sum <"$F")" "$3: existing DEST"
}
case_ "4: signed pack: --keyring, --fingerprint, bad signatures" signed

# ---- 5. corrupt packs ---------------------------------------------------------
# refused WANT_RC MSG IMAGE WHAT: copy exits WANT_RC with MSG on one error
# line, onto a new file (not left behind) and an existing one (unchanged).
refused() {
	local rc=$1 msg=$2 img=$3 what=$4 before
	rm -f "$F"
	bm "$rc" copy "$img" "$F"
	assert_contains "$RUN_ERR" "$msg" "$what"
	assert_eq 1 "$(grep -c 'error:' "$T/run.err")" "$what: error lines in [$RUN_ERR]"
	assert_not_contains "$RUN_ERR" "copied " "$what"
	assert_no_file "$F" "$what: new DEST"
	fresh "$F"
	before=$(stat -c '%s %y' "$F")$(sha256sum <"$F")
	bm "$rc" copy "$img" "$F"
	assert_contains "$RUN_ERR" "$msg" "$what (existing DEST)"
	assert_eq "$before" "$(stat -c '%s %y' "$F")$(sha256sum <"$F")" \
		"$what: size, mtime and bytes of the existing DEST"
}

corrupt_local() {
	local k c=$R/c msg before
	mkdir -p "$c"
	head -c $((512 * 1024)) /dev/urandom >"$c/half" &&
		zstd -q -C -f "$c/half" -o "$c/half.zst" || fail "zstd"
	while read -r k msg; do
		pk craft "$k" "$P/v1.zst" "$c/$k.zst" "$c/half.zst" >"$c/$k.chunk" ||
			fail "pk craft $k"
		refused 2 "$c/$k.zst: corrupt packed image: " "$c/$k.zst" "$k"
		assert_contains "$RUN_ERR" "$msg" "$k"
		note "ok: $k: ${RUN_ERR##*error: }"
	done <<EOF2
table-sum the seek table disagrees with the index at entry
index-off-by-one its index accounts for $((P_FILE + 1)) bytes, the file has $P_FILE
frame-off-by-one is not a checksummed zstd frame of 1048576 bytes
past-end the index gives frame 64 
footer-count no seek table of 66 entries at its end
cut-frame its index accounts for $P_FILE bytes, the file has
cut-table its index accounts for $P_FILE bytes, the file has $((P_FILE - P_STLEN))
other-length frame $(pk craft other-length "$P/v1.zst" /dev/null "$c/half.zst") (at byte
EOF2
	# The embedded bmap fails its own checksum: exit 1, like any bmap.
	pk craft bmap-byte "$P/v1.zst" "$c/bmap-byte.zst" >/dev/null || fail "craft"
	refused 1 "$c/bmap-byte.zst (embedded): checksum mismatch for the bmap file" \
		"$c/bmap-byte.zst" "bmap-byte"
	if [ -n "$L" ]; then
		reset_loop
		before=$(sha256sum <"$L")
		bm 2 copy "$c/other-length.zst" "$L"
		assert_contains "$RUN_ERR" "corrupt packed image" "other-length onto $L"
		assert_eq "$before" "$(sha256sum <"$L")" "other-length: $L"
	fi
	# A frame that fails its checksum: found when decoded; a new DEST goes.
	pk craft bad-checksum "$P/v1.zst" "$c/bad.zst" >/dev/null || fail "craft"
	rm -f "$F"
	bm 2 copy "$c/bad.zst" "$F"
	assert_contains "$RUN_ERR" "$c/bad.zst: corrupt packed image: frame" \
		"bad checksum"
	assert_contains "$RUN_ERR" "does not decode" "bad checksum"
	assert_no_file "$F" "bad checksum: new DEST"
}
case_ "5: corrupt packs refused before the first write" corrupt_local

corrupt_http() {
	local c=$R/c2 frame
	if [ -z "$G" ]; then
		skip_case "HTTP: $NGINX_WHY"
		return 0
	fi
	mkdir -p "$c"
	head -c $((512 * 1024)) /dev/urandom >"$c/half" &&
		zstd -q -C -f "$c/half" -o "$c/half.zst" || fail "zstd"
	pk craft cut-frame "$P/v1.zst" "$W/cut.zst" >/dev/null &&
		pk craft bmap-byte "$P/v1.zst" "$W/bmapbyte.zst" >/dev/null &&
		frame=$(pk craft other-length "$P/v1.zst" "$W/other.zst" \
			"$c/half.zst") || fail "craft"
	refused 2 "$G/cut.zst: corrupt packed image: its index accounts for $P_FILE bytes" \
		"$G/cut.zst" "cut-frame over HTTP"
	refused 1 "checksum mismatch for the bmap file" "$G/bmapbyte.zst" \
		"bmap-byte over HTTP"
	# Over HTTP no frame header is read ahead: the frame of another
	# length is found when it is decoded, after the first writes.
	rm -f "$F"
	bm 2 copy "$G/other.zst" "$F"
	assert_contains "$RUN_ERR" \
		"$G/other.zst: corrupt packed image: frame $frame (at byte" \
		"other-length over HTTP"
	assert_contains "$RUN_ERR" "decodes to 524288 bytes, the index says 1048576" \
		"other-length over HTTP"
	assert_no_file "$F" "other-length over HTTP: new DEST"
}
case_ "5: corrupt packs over HTTP" corrupt_http

plain_zst() {
	local z=$R/plain
	mkdir -p "$z"
	zstd -q -c "$V1" >"$z/v1.img.zst" || fail "zstd"
	rm -f "$F"
	bm 2 copy "$z/v1.img.zst" "$F"
	assert_contains "$RUN_ERR" "bmap file not found" "plain .zst, no bmap"
	assert_no_file "$F" "plain .zst, no bmap"
	bm 0 copy --bmap "$X/v1.bmap" "$z/v1.img.zst" "$F"
	assert_not_contains "$RUN_ERR" "embedded" "plain .zst"
	assert_same_file "$V1" "$F" "plain .zst with --bmap"
	cp "$X/v1.bmap" "$z/v1.img.bmap" || fail "cp"
	rm -f "$F"
	bm 0 copy "$z/v1.img.zst" "$F"
	assert_contains "$RUN_ERR" "discovered bmap file '$z/v1.img.bmap'" \
		"plain .zst"
	assert_same_file "$V1" "$F" "plain .zst with a discovered bmap"
	# A pack is a plain .zst to zstd.
	zstd -q -dc "$P/v1.zst" | cmp -s - "$V1" || fail "zstd -dc v1.zst"
}
case_ "5: a plain .zst copies as before" plain_zst

cases_done "pack_copy: all cases passed"
