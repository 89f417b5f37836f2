#!/usr/bin/env bash
# Benchmark `bmaptk copy` from an http:// URL served by nginx on loopback.
#
#   bench/remote.sh [-n RUNS]
#
# Image: 2 GiB sparse, ~16% mapped in 60 ranges (bench_image), its bmap,
# and a .zst of it. Figures:
#   - raw image: bytes nginx sent (sum of $body_bytes_sent) for one copy,
#     against the mapped bytes (target <= 1.05x), and the wall time against
#     `bmaptool copy` of the same URL (bmaptool downloads everything; target
#     >= 3x faster);
#   - .zst: wall time against `curl -s URL | zstd -dc >/dev/null`
#     (target <= 1.1x).
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/common.sh"

runs=3
while (($#)); do
	case $1 in
	-n) runs=$2 && shift ;;
	*) echo "usage: $0 [-n RUNS]" >&2 && exit 2 ;;
	esac
	shift
done
size=$((2048 * MIB))
mapped=$((size * 16 / 100))
ranges=60

bench_need nginx curl zstd bmaptool python3 cmp
unset http_proxy https_proxy all_proxy no_proxy
bench_header "remote: $((size / MIB)) MiB image, ~$((mapped / MIB)) MiB mapped in $ranges ranges over loopback HTTP (nginx), best of $runs (bmaptool: 1 run)"
bench_image remote-2g "$size" "$mapped" "$ranges"
img=$BENCH_IMG
if [[ ! -s $img.bmap || $img.bmap -ot $img ]]; then
	"$BMAPTK" create "$img" -o "$img.bmap.tmp" 2>/dev/null ||
		bench_die "bmaptk create failed"
	mv "$img.bmap.tmp" "$img.bmap"
fi
bench_compress "$img" "$img.zst" zstd -q -T0 -c
mapped_bytes=$(($(sed -n 's/.*<MappedBlocksCount> *\([0-9]*\).*/\1/p' \
	"$img.bmap") * 4096))

# nginx on a free port, serving links to the files, logging bytes sent.
www=$BENCH_TMP/www
mkdir -p "$www" "$BENCH_TMP/nginx"
ln -s "$img" "$www/disk.img"
ln -s "$img.bmap" "$www/disk.img.bmap"
ln -s "$img.zst" "$www/disk.img.zst"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
n=$BENCH_TMP/nginx
cat >"$n/nginx.conf" <<EOF
daemon off;
master_process off;
$( ((EUID == 0)) && echo "user root;")
pid $n/nginx.pid;
error_log $n/error.log;
events { worker_connections 256; }
http {
	log_format bytes '\$request_method \$uri \$status \$body_bytes_sent';
	access_log $n/access.log bytes;
	client_body_temp_path $n/body;
	proxy_temp_path $n/proxy;
	fastcgi_temp_path $n/fastcgi;
	uwsgi_temp_path $n/uwsgi;
	scgi_temp_path $n/scgi;
	default_type application/octet-stream;
	sendfile on;
	server {
		listen 127.0.0.1:$port;
		root $www;
	}
}
EOF
nginx -e "$n/error.log" -p "$n" -c "$n/nginx.conf" 2>"$n/stderr" &
nginx_pid=$!
trap 'kill $nginx_pid 2>/dev/null; wait $nginx_pid 2>/dev/null; rm -rf "$BENCH_TMP"' EXIT
for ((i = 0; i < 100; i++)); do
	curl -s -o /dev/null "http://127.0.0.1:$port/disk.img.bmap" && break
	sleep 0.1
done
url=http://127.0.0.1:$port/disk.img

# sent PATH: body bytes nginx sent for GETs of PATH since the log was cut.
sent() {
	awk -v p="$1" '$1 == "GET" && $2 == p { s += $4 } END { print s + 0 }' \
		"$n/access.log"
}

out=$BENCH_TMP/out.img
bench_warm "$img" "$img.zst"

# Raw: bytes on the wire for one copy, then timed runs.
: >"$n/access.log"
rm -f "$out"
"$BMAPTK" copy "$url" "$out" 2>"$BENCH_TMP/copy.err" ||
	bench_die "bmaptk copy $url failed: $(cat "$BENCH_TMP/copy.err")"
cmp -s "$img" "$out" || bench_die "bmaptk copy $url: output differs"
raw_sent=$(sent /disk.img)
requests=$(grep -c '^GET /disk.img ' "$n/access.log")
BENCH_BEFORE='rm -f "$out"'
bench_time "$runs" "$BMAPTK" copy "$url" "$out" || bench_die "bmaptk copy failed"
tk=$BEST_S
bench_row "bmaptk copy URL (raw)" "$BEST_S" "$BEST_RSS" \
	"$requests requests, $raw_sent bytes sent for $mapped_bytes mapped"
: >"$n/access.log"
bench_time 1 bmaptool copy "$url" "$out" || bench_die "bmaptool copy failed"
tool_sent=$(sent /disk.img)
bench_row "  bmaptool copy URL (raw)" "$BEST_S" "$BEST_RSS" \
	"$(printf '%.1fx bmaptk, %d MiB sent' "$(bench_calc 'b / t' b="$BEST_S" t="$tk")" $((tool_sent / MIB)))"
unset BENCH_BEFORE
rm -f "$out"
bench_target "raw: bytes sent / mapped bytes" \
	"$(bench_calc 's / m' s="$raw_sent" m="$mapped_bytes")" "<=" 1.05 x
bench_target "raw: bmaptool / bmaptk (speed-up)" \
	"$(bench_calc 'b / t' b="$BEST_S" t="$tk")" ">=" 3 x

# .zst: streamed once, against curl | zstd.
BENCH_BEFORE='rm -f "$out"'
bench_time "$runs" "$BMAPTK" copy --bmap "$img.bmap" "$url.zst" "$out" ||
	bench_die "bmaptk copy $url.zst failed"
unset BENCH_BEFORE
cmp -s "$img" "$out" || bench_die "bmaptk copy $url.zst: output differs"
rm -f "$out"
tk=$BEST_S
bench_row "bmaptk copy URL.zst" "$BEST_S" "$BEST_RSS" \
	"$(du -m --apparent-size "$img.zst" | cut -f1) MiB compressed"
bench_time "$runs" sh -c 'curl -s "$1" | zstd -dcq >/dev/null' sh "$url.zst" ||
	bench_die "curl | zstd failed"
bench_row "  curl -s URL.zst | zstd -dc" "$BEST_S" "$BEST_RSS"
bench_target "zst: bmaptk / (curl | zstd -dc)" \
	"$(bench_calc 't / c' t="$tk" c="$BEST_S")" "<=" 1.1 x
bench_print
