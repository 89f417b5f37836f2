#!/usr/bin/env bash
# Build one fully static bmaptk (musl libc) for NFS roots and rescue systems:
#
#   scripts/build-static.sh [-B DIR] [--prefix-only] [--check-cache]
#
#   -B DIR         build directory (default: build-static in the source tree);
#                  the binary is DIR/bmaptk (stripped), its linker map
#                  DIR/bmaptk.map; the bytes each library adds are printed
#   --prefix-only  build (or find) the dependency prefix, print its path
#   --check-cache  exit 0 if the prefix for this script and today's Debian
#                  sources is cached (printing its path), 1 if not; builds
#                  nothing
#
# 1. A private prefix of the libraries bmaptk needs, built with musl-gcc from
#    Debian's source packages (so Debian's security fixes are in): zlib,
#    bzip2, liblzma (decoders), zstd (decompression), OpenSSL (TLS 1.2/1.3,
#    SHA; assembly kept for SHA-NI), libssh2, libxml2 (no ICU/HTTP/FTP),
#    libcurl (file ftp ftps http https scp sftp), jansson. Debian's own
#    static archives cannot be used: their libcurl needs Kerberos and p11-kit
#    (no static libraries), their libxml2 pulls in 31 MB of ICU data.
#    The deb-src entries live in a private apt configuration in the cache;
#    the system's sources are never changed.
# 2. cmake -DBMAPTK_STATIC=ON (cmake/static.cmake) links DIR/bmaptk with
#    -static -Wl,--gc-sections. Plugins cannot be loaded by a static binary.
#
# The prefix is cached in $BMAPTK_STATIC_CACHE (default
# /var/cache/bmaptk-static) under a key hashed from the part of this script
# that builds it, musl's version and the versions of the source packages,
# so CI and later runs reuse it (a few seconds, then about a minute for
# bmaptk itself). From scratch: about 3 minutes on 2 idle cores. Needs:
# musl-tools, dpkg-dev, cmake, make, perl; the Debian mirror on a cold cache.
# Exit status: 0 ok, 1 not cached (--check-cache), 2 usage, 3 failure.
set -euo pipefail

SRC=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
CACHE=${BMAPTK_STATIC_CACHE:-/var/cache/bmaptk-static}
JOBS=$(nproc 2>/dev/null || echo 2)

die() {
	echo "build-static: $*" >&2
	exit 3
}

say() {
	printf 'build-static: %s\n' "$*" >&2
}

usage() {
	sed -n '3,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

need_tools() {
	local t
	for t in musl-gcc dpkg-source apt-get cmake make perl sha256sum flock; do
		command -v "$t" >/dev/null ||
			die "$t not found (apt-get install musl-tools dpkg-dev cmake make perl)"
	done
}

# apt with a private configuration: deb-src twins of the system's Debian
# deb entries, package lists in the cache, no binary cache written.
APT_DIR=$CACHE/apt
apt_opts() {
	printf '%s\n' \
		-o "Dir::Etc::SourceList=$APT_DIR/sources.list" \
		-o "Dir::Etc::SourceParts=$APT_DIR/sources.list.d" \
		-o "Dir::State::Lists=$APT_DIR/lists" \
		-o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=" \
		-o "APT::Sandbox::User=root"
}

apt_setup() {
	local -a opts
	local entries line
	mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/sources.list.d"
	# shellcheck disable=SC2016 # apt's own $(FIELD) syntax
	entries=$(apt-get indextargets --format \
		'$(REPO_URI) $(RELEASE) $(COMPONENT)' \
		'Created-By: Packages' 'Origin: Debian' | sort -u)
	[[ -n $entries ]] ||
		die "no Debian entry in the system's apt sources to take deb-src from"
	local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	while read -r line; do
		echo "deb-src [signed-by=$keyring] $line"
	done <<<"$entries" >"$APT_DIR/sources.list"
	mapfile -t opts < <(apt_opts)
	# Offline, the lists of an earlier run still name the versions.
	if ! apt-get "${opts[@]}" -qq update </dev/null >/dev/null \
		2>"$APT_DIR/update.err"; then
		compgen -G "$APT_DIR/lists/*_Sources*" >/dev/null ||
			die "apt-get update of the deb-src lists failed:" \
				"$(tail -n 1 "$APT_DIR/update.err")"
		say "apt-get update failed; using the lists of an earlier run"
	fi
}

# Candidates for every source package, "PKG SUITE NAME_VERSION" a line, the
# newest first: a mirror may lack the newest .dsc (seen here for security
# updates), and then the next one is taken.
source_candidates() {
	local -a opts suites
	local p s dsc
	mapfile -t opts < <(apt_opts)
	mapfile -t suites < <(awk '{print $4}' "$APT_DIR/sources.list" | sort -u)
	for p in "${PKGS[@]}"; do
		local -a found=()
		for s in "${suites[@]}"; do
			dsc=$(apt-get "${opts[@]}" source --print-uris "$p/$s" \
				2>/dev/null | grep -o "[^/' ]*\.dsc'" | tr -d "'") ||
				continue
			found+=("$p $s ${dsc%.dsc}")
		done
		((${#found[@]})) || die "no source package $p in the Debian lists"
		sort_newest "${found[@]}"
	done
}

# sort_newest LINE...: "PKG SUITE NAME_VERSION" lines by Debian version,
# newest first (a few lines: insertion sort with dpkg's comparison).
sort_newest() {
	local -a out=()
	local line i v
	for line in "$@"; do
		v=${line##*_}
		for ((i = 0; i < ${#out[@]}; i++)); do
			dpkg --compare-versions "$(urldecode "$v")" gt \
				"$(urldecode "${out[i]##*_}")" && break
		done
		out=("${out[@]:0:i}" "$line" "${out[@]:i}")
	done
	printf '%s\n' "${out[@]}"
}

urldecode() {
	local s=${1//%7e/\~}
	s=${s//%7E/\~}
	s=${s//%2b/+}
	s=${s//%2B/+}
	s=${s//%3a/:}
	printf '%s' "${s//%3A/:}"
}

cache_key() {
	{
		sed -n '/^# ---- the prefix/,/^# ---- end of the prefix/p' \
			"${BASH_SOURCE[0]}"
		musl-gcc -dumpversion
		dpkg-query -W -f='${Version}\n' musl-dev 2>/dev/null
		printf '%s\n' "$CANDIDATES"
	} | sha256sum | cut -c1-16
}

# ---- the prefix: this part of the script, down to its end mark, keys the cache

# Source packages, in build order (later ones use earlier ones).
PKGS=(zlib bzip2 xz-utils libzstd jansson libxml2 openssl libssh2 curl)

export CC=musl-gcc
# Sections per function and object, so --gc-sections drops what bmaptk
# never calls. The decoders, which bound copy speed, are optimised for
# speed; TLS, SSH, HTTP and XML for size (OpenSSL's hashes and ciphers are
# assembly either way).
SPEED="-O2 -ffunction-sections -fdata-sections -g0"
SMALL="-Os -ffunction-sections -fdata-sections -g0"
export CFLAGS=$SPEED
export PKG_CONFIG_LIBDIR   # set to the prefix in build_prefix
export PKG_CONFIG_PATH=""

# Download each package's newest source that the mirror has; sets CHOSEN
# ("NAME_VERSION" of each, in build order).
fetch_sources() {
	local -a opts
	local p s nv last
	mapfile -t opts < <(apt_opts)
	mkdir -p "$CACHE/sources"
	CHOSEN=()
	for p in "${PKGS[@]}"; do
		last=
		while read -r _ s nv; do
			if (cd "$CACHE/sources" && apt-get "${opts[@]}" -qq source \
				--download-only "$p/$s" </dev/null >"$WORK/fetch.log" 2>&1); then
				CHOSEN+=("$(urldecode "$nv")")
				continue 2
			fi
			last=$(grep -m1 -E '^(E|Err):' "$WORK/fetch.log" || true)
			say "$p/$s: not on the mirror, trying an older one (${last:-?})"
		done < <(grep "^$p " <<<"$CANDIDATES")
		die "no source of $p could be downloaded: $last"
	done
}

# unpack NAME_VERSION: extract the Debian source (patches applied) into
# $WORK/NAME and cd there. Debian's patches also touch Makefile.am and
# configure.ac (curl's for its GnuTLS and NSS flavours, tests, docs); the
# generated files are made newer so that the release's own configure and
# Makefile.in are used and no autotools are needed.
unpack() {
	local dsc=$CACHE/sources/$1.dsc name=${1%%_*}
	[[ -f $dsc ]] || die "$dsc missing after download"
	dpkg-source --no-check -x "$dsc" "$WORK/$name" >/dev/null
	cd "$WORK/$name"
	find . \( -name aclocal.m4 -o -name configure -o -name config.h.in \
		-o -name Makefile.in \) -exec touch {} +
}

# The kernel's UAPI headers (FIEMAP, BLK* ioctls) next to musl's, which
# ship none.
kernel_headers() {
	local multiarch
	multiarch=$(gcc -print-multiarch)
	mkdir -p "$P/include"
	cp -r /usr/include/linux /usr/include/asm-generic "$P/include/"
	cp -r "/usr/include/$multiarch/asm" "$P/include/asm"
}

b_zlib() {
	./configure --static --prefix="$P" >/dev/null
	make -j"$JOBS" libz.a >/dev/null
	make install-libs install-headers >/dev/null 2>&1 ||
		make install >/dev/null
}

b_bzip2() {
	local f
	for f in blocksort huffman crctable randtable compress decompress bzlib; do
		# shellcheck disable=SC2086 # CFLAGS holds several flags
		$CC $CFLAGS -D_FILE_OFFSET_BITS=64 -c "$f.c" -o "$f.o" &
	done
	wait
	ar rcs libbz2.a blocksort.o huffman.o crctable.o randtable.o \
		compress.o decompress.o bzlib.o
	install -m 644 libbz2.a "$P/lib/"
	install -m 644 bzlib.h "$P/include/"
}

b_xz() {
	./configure --prefix="$P" --disable-shared --enable-static \
		--disable-xz --disable-xzdec --disable-lzmadec --disable-lzmainfo \
		--disable-lzma-links --disable-scripts --disable-doc --disable-nls \
		--disable-encoders --enable-threads=posix >/dev/null
	make -C src/liblzma -j"$JOBS" >/dev/null
	make -C src/liblzma install >/dev/null
}

b_zstd() {
	local -a vars=(ZSTD_LIB_COMPRESSION=0 ZSTD_LIB_DICTBUILDER=0
		ZSTD_LIB_DEPRECATED=0 ZSTD_LEGACY_SUPPORT=0 PREFIX="$P")
	make -C lib -j"$JOBS" libzstd.a "${vars[@]}" >/dev/null
	make -C lib install-static install-includes install-pc "${vars[@]}" >/dev/null
}

b_jansson() {
	CFLAGS=$SMALL
	cmake -S . -B build -DCMAKE_C_COMPILER="$CC" -DCMAKE_BUILD_TYPE=None \
		-DCMAKE_C_FLAGS="$CFLAGS" -DCMAKE_INSTALL_PREFIX="$P" \
		-DCMAKE_INSTALL_LIBDIR=lib -DJANSSON_BUILD_DOCS=OFF \
		-DJANSSON_EXAMPLES=OFF -DJANSSON_WITHOUT_TESTS=ON >/dev/null
	make -C build -j"$JOBS" install >/dev/null
}

b_libxml2() {
	export CFLAGS=$SMALL
	./configure --prefix="$P" --disable-shared --enable-static \
		--with-minimum --with-tree --with-threads --without-python \
		--without-icu --without-http --without-ftp --without-lzma \
		--without-zlib --without-iconv --without-debug >/dev/null
	make -j"$JOBS" libxml2.la >/dev/null
	make install-libLTLIBRARIES install-pkgconfigDATA >/dev/null
	make -C include install >/dev/null
}

b_openssl() {
	# TLS 1.2/1.3, SHA and what libssh2 needs; no loadable modules, no
	# engines, no configuration file read behind bmaptk's back.
	export CFLAGS=$SMALL
	./Configure linux-x86_64 --prefix="$P" --libdir=lib --openssldir=/etc/ssl \
		no-shared no-module no-dso no-engine no-afalgeng no-ktls \
		no-autoload-config no-tests no-ui-console no-filenames \
		no-legacy no-comp no-ssl3 no-tls1 no-tls1_1 no-dtls no-srp \
		no-srtp no-sctp no-psk no-rfc3779 no-ec2m no-siv \
		no-idea no-mdc2 no-rc2 no-rc4 no-rc5 no-md4 no-des no-dsa \
		no-camellia no-aria no-seed no-sm2 no-sm3 no-sm4 no-whirlpool \
		no-gost no-siphash no-cms no-ts no-ocsp no-ct no-cmac \
		no-scrypt no-ocb no-bf no-cast -ffunction-sections \
		-fdata-sections >/dev/null
	make -j"$JOBS" build_libs >/dev/null
	make install_dev >/dev/null
}

b_libssh2() {
	export CFLAGS=$SMALL
	./configure --prefix="$P" --disable-shared --enable-static \
		--with-crypto=openssl --with-libssl-prefix="$P" --without-libz \
		--disable-examples-build >/dev/null
	make -C src -j"$JOBS" >/dev/null
	make -C src install >/dev/null
	make -C include install >/dev/null 2>&1 || cp include/*.h "$P/include/"
	make install-pkgconfigDATA >/dev/null
}

b_curl() {
	export CFLAGS=$SMALL
	./configure --prefix="$P" --disable-shared --enable-static \
		--with-openssl="$P" --with-libssh2="$P" \
		--without-zlib --without-brotli --without-zstd --without-libpsl \
		--without-libidn2 --without-nghttp2 --without-librtmp \
		--without-gssapi --without-ca-bundle --without-ca-path \
		--with-ca-fallback --disable-openssl-auto-load-config \
		--enable-threaded-resolver --disable-dict --disable-gopher \
		--disable-imap --disable-ldap --disable-ldaps --disable-mqtt \
		--disable-pop3 --disable-rtsp --disable-smb --disable-smtp \
		--disable-telnet --disable-tftp --disable-manual \
		--disable-ntlm --disable-ntlm-wb --disable-kerberos-auth \
		--disable-negotiate-auth --disable-aws --disable-unix-sockets \
		--disable-alt-svc --disable-hsts --disable-cookies \
		--disable-mime --disable-netrc --disable-doh \
		--disable-libcurl-option --disable-progress-meter \
		--disable-verbose --disable-get-easy-options \
		--disable-headers-api >/dev/null
	make -C lib -j"$JOBS" >/dev/null
	make -C lib install >/dev/null
	make -C include install >/dev/null
	install -m 644 libcurl.pc "$P/lib/pkgconfig/"
}

# build_chain NAME_VERSION...: unpack and build each library in turn with
# its b_NAME, logging to $WORK/NAME.log. Each build and each chain runs in
# the background and is waited for: errexit holds there, while bash ignores
# it in anything run inside `cmd || ...`, however deep.
build_chain() {
	local nv name t0
	for nv in "$@"; do
		name=${nv%%_*}
		t0=$SECONDS
		(unpack "$nv"; "${BUILDER[$name]}") >"$WORK/$name.log" 2>&1 &
		if ! wait $!; then
			tail -n 30 "$WORK/$name.log" >&2
			say "building $name failed (log above, $WORK/$name.log)"
			return 1
		fi
		say "$(printf '%-9s %3d s' "$name" $((SECONDS - t0)))"
	done
}

declare -A BUILDER=([zlib]=b_zlib [bzip2]=b_bzip2 [xz-utils]=b_xz
	[libzstd]=b_zstd [jansson]=b_jansson [libxml2]=b_libxml2
	[openssl]=b_openssl [libssh2]=b_libssh2 [curl]=b_curl)

build_prefix() {
	local t0=$SECONDS nv pid_tls rc=0
	local -a tls=() rest=()
	# Built in place (the .pc files name the prefix); SOURCES, written
	# last, marks it complete.
	P=$CACHE/$KEY
	WORK=$CACHE/work.$$
	rm -rf "$P" "$WORK"
	mkdir -p "$P/lib/pkgconfig" "$P/include" "$WORK"
	PKG_CONFIG_LIBDIR=$P/lib/pkgconfig
	export CPPFLAGS="-I$P/include" LDFLAGS="-L$P/lib"
	fetch_sources
	say "sources fetched in $((SECONDS - t0)) s; building into $P"
	kernel_headers
	# Two chains side by side: OpenSSL, the longest build, and what
	# needs it; everything else. Configure scripts use one core.
	for nv in "${CHOSEN[@]}"; do
		case $nv in
		openssl_* | libssh2_* | curl_*) tls+=("$nv") ;;
		*) rest+=("$nv") ;;
		esac
	done
	build_chain "${tls[@]}" &
	pid_tls=$!
	build_chain "${rest[@]}" &
	wait $! || rc=1
	wait "$pid_tls" || rc=1
	((rc == 0)) || die "the prefix was not built"
	rm -rf "$WORK" "${P:?}/share" "${P:?}/bin" "$P/lib"/*.la
	printf '%s\n' "${CHOSEN[@]}" >"$P/SOURCES"
	say "prefix built in $((SECONDS - t0)) s"
}

# ---- end of the prefix ----------------------------------------------------------

# Keep the three newest prefixes (other checkouts may want theirs), not
# the downloaded sources: fetching them again takes seconds.
prune() {
	local -a dirs
	# shellcheck disable=SC2010 # names are 16 hex digits, newest first
	mapfile -t dirs < <(ls -1td "$CACHE"/*/ | grep -E '/[0-9a-f]{16}/$')
	((${#dirs[@]} <= 3)) || rm -rf "${dirs[@]:3}"
	rm -rf "$CACHE"/work.* "$CACHE/sources"
}

# sizes_by_library MAP: bytes each archive brings into the binary (input
# sections of loaded, allocated output sections; .bss takes no file space),
# from the linker map, largest first.
sizes_by_library() {
	awk '
	function hex(s, i, n) { # mawk has no strtonum
		n = 0
		for (i = 3; i <= length(s); i++)
			n = n * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
		return n
	}
	function add(size, file, lib) {
		if (out ~ /^\.(debug|comment|bss|tbss)/ || out == "/DISCARD/")
			return
		lib = file
		if (lib ~ /\(/)
			sub(/\(.*/, "", lib)
		sub(/.*\//, "", lib)
		if (lib ~ /\.c\.o$/)
			lib = "bmaptk (src/cmd, src/main.c)"
		bytes[lib] += hex(size)
		total += hex(size)
	}
	/^Linker script and memory map/ { on = 1; next }
	!on { next }
	/^[^ ]/ { out = $1; pending = ""; next }
	/^ [^ ]+ +0x[0-9a-f]+ +0x[0-9a-f]+ +[^ ]/ && $4 !~ /^\*/ {
		add($3, $4); pending = ""; next
	}
	/^ \.[^ ]+$/ { pending = $1; next }
	pending != "" && /^ +0x[0-9a-f]+ +0x[0-9a-f]+ +[^ ]/ {
		add($2, $3); pending = ""; next
	}
	{ pending = "" }
	END {
		for (l in bytes)
			if (bytes[l] >= 1024)
				printf "%9d  %s\n", bytes[l], l
		printf "%9d  total (file size adds headers and alignment)\n", total
	}' "$1" | sort -rn
}

build_bmaptk() {
	local dir=$1 t0=$SECONDS old
	# A build directory configured against another prefix keeps that
	# prefix's paths in its cache: start it afresh.
	old=$(sed -n 's/^BMAPTK_STATIC_PREFIX:PATH=//p' "$dir/CMakeCache.txt" \
		2>/dev/null || true)
	[[ -z $old || $old == "$CACHE/$KEY" ]] ||
		rm -rf "$dir/CMakeCache.txt" "$dir/CMakeFiles"
	mkdir -p "$dir"
	cmake -S "$SRC" -B "$dir" -DCMAKE_C_COMPILER=musl-gcc \
		-DCMAKE_BUILD_TYPE=Release -DBMAPTK_STATIC=ON \
		-DBMAPTK_STATIC_PREFIX="$CACHE/$KEY" -DBMAPTK_TESTS=OFF \
		>"$dir/configure.log" 2>&1 || {
		tail -n 20 "$dir/configure.log" >&2
		die "cmake configure of $dir failed (log above)"
	}
	make -C "$dir" --no-print-directory -j"$JOBS" bmaptk \
		>"$dir/build.log" 2>&1 || {
		grep -E -A3 'error|Error' "$dir/build.log" | head -n 30 >&2
		die "building $dir/bmaptk failed ($dir/build.log)"
	}
	say "$dir/bmaptk: $(stat -c %s "$dir/bmaptk") bytes, built in" \
		"$((SECONDS - t0)) s; bytes by library ($dir/bmaptk.map):"
	sizes_by_library "$dir/bmaptk.map" >&2
}

main() {
	local dir=$SRC/build-static mode=build
	while (($#)); do
		case $1 in
		-B)
			(($# >= 2)) || usage
			dir=$2
			shift
			;;
		--prefix-only) mode=prefix ;;
		--check-cache) mode=check ;;
		*) usage ;;
		esac
		shift
	done
	need_tools
	mkdir -p "$CACHE"
	exec 9>"$CACHE/lock"
	flock 9 # one build of the prefix at a time
	apt_setup
	CANDIDATES=$(source_candidates)
	KEY=$(cache_key)
	if [[ $mode == check ]]; then
		[[ -f $CACHE/$KEY/SOURCES ]] && echo "$CACHE/$KEY" && exit 0
		exit 1
	fi
	if [[ -f $CACHE/$KEY/SOURCES ]]; then
		say "using cached prefix $CACHE/$KEY"
	else
		build_prefix
		prune
	fi
	if [[ $mode == prefix ]]; then
		echo "$CACHE/$KEY"
		exit 0
	fi
	flock -u 9
	build_bmaptk "$dir"
}

main "$@"
