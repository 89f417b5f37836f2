# The Debian packages: `dpkg-buildpackage -us -uc -b` on a copy of the
# source tree builds bmaptk, libbmaptk0, libbmaptk-dev and
# bmaptk-plugin-archive; lintian reports no error; each package holds what
# it should (dpkg-deb -c); the binary unpacked from the package (dpkg-deb
# -x) runs, and finds the archive plugin in the packaged plugin directory
# (seen through an overlay in a private mount namespace, so the system's
# /usr/lib stays as it is), and uses it.
#
# Label "release": run by the normal build only (a whole package build,
# about two minutes on two cores).
. "$(dirname "$0")/lib.sh"
set -u
e2e_init
require_cmd dpkg-buildpackage dpkg-deb dpkg-checkbuilddeps dh lintian tar cmp
MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
ARCH=$(dpkg-architecture -qDEB_HOST_ARCH)
VERSION=$(dpkg-parsechangelog -l "$BMAPTK_SRC/debian/changelog" -S Version)
PLUGIN_DIR=/usr/lib/$MA/bmaptk/plugins

# A copy of the tree without build directories, version control or
# anything ignored (dpkg-buildpackage writes into the tree and its parent).
T=$E2E_TMP/src
mkdir "$T"
(cd "$BMAPTK_SRC" && tar -c --exclude='./build*' --exclude=./.git \
	--exclude='./obj-*' --exclude=./bench/out \
	--exclude-ignore-recursive=.gitignore .) | (cd "$T" && tar -x) ||
	fail "cannot copy the source tree"
(cd "$T" && dpkg-checkbuilddeps) 2>"$E2E_TMP/deps.err" ||
	skip "build dependencies missing: $(cat "$E2E_TMP/deps.err")"

note "dpkg-buildpackage -us -uc -b (about two minutes)"
(cd "$T" && DEB_BUILD_OPTIONS="parallel=$(nproc)" \
	dpkg-buildpackage -us -uc -b) >"$E2E_TMP/build.log" 2>&1 || {
	tail -n 40 "$E2E_TMP/build.log" >&2
	fail "dpkg-buildpackage failed (log above)"
}
DEB_BIN=$E2E_TMP/bmaptk_${VERSION}_$ARCH.deb
DEB_LIB=$E2E_TMP/libbmaptk0_${VERSION}_$ARCH.deb
DEB_DEV=$E2E_TMP/libbmaptk-dev_${VERSION}_$ARCH.deb
DEB_ARC=$E2E_TMP/bmaptk-plugin-archive_${VERSION}_$ARCH.deb
CHANGES=$E2E_TMP/bmaptk_${VERSION}_$ARCH.changes
for f in "$DEB_BIN" "$DEB_LIB" "$DEB_DEV" "$DEB_ARC" "$CHANGES"; do
	[ -f "$f" ] || fail "dpkg-buildpackage made no $(basename "$f")" \
		"(made: $(cd "$E2E_TMP" && echo *.deb))"
done

# lintian: errors fail the test; warnings are shown.
run lintian --tag-display-limit 0 "$CHANGES"
[ -z "$RUN_OUT" ] || note "lintian says:"$'\n'"$RUN_OUT"
assert_not_contains "$RUN_OUT" "E: " "lintian"
[ "$RUN_RC" = 0 ] || fail "lintian failed ($RUN_RC): $RUN_ERR"

# contents DEB: the paths in a package, sorted, without "./" and
# directories.
contents() {
	dpkg-deb -c "$1" | awk '$1 !~ /^d/ {print $6}' | sed 's|^\./||' |
		LC_ALL=C sort
}
# has DEB PATH...: each PATH is in DEB.
has() {
	local deb=$1 list p
	shift
	list=$(contents "$deb")
	for p in "$@"; do
		grep -qxF "$p" <<<"$list" ||
			fail "$(basename "$deb") lacks $p; it holds: $list"
	done
}
# lacks DEB REGEX: no path of DEB matches REGEX.
lacks() {
	local bad
	bad=$(contents "$1" | grep -E "$2" || true)
	[ -z "$bad" ] || fail "$(basename "$1") should not hold: $bad"
}

has "$DEB_BIN" usr/bin/bmaptk usr/share/man/man1/bmaptk.1.gz \
	usr/share/bash-completion/completions/bmaptk \
	usr/share/zsh/vendor-completions/_bmaptk \
	usr/share/doc/bmaptk/copyright usr/share/doc/bmaptk/changelog.gz
lacks "$DEB_BIN" '^usr/(include|lib)/'
has "$DEB_LIB" "usr/lib/$MA/libbmaptk.so.0" "usr/lib/$MA/libbmaptk.so.0.1.0"
lacks "$DEB_LIB" '^usr/(bin|include)/|\.so$|pkgconfig'
has "$DEB_DEV" usr/include/bmaptk/bmaptk.h usr/include/bmaptk/module.h \
	"usr/lib/$MA/libbmaptk.so" "usr/lib/$MA/pkgconfig/bmaptk.pc" \
	"usr/lib/$MA/pkgconfig/libbmaptk.pc"
lacks "$DEB_DEV" '^usr/bin/|\.so\.0'
has "$DEB_ARC" "${PLUGIN_DIR#/}/archive.so"
lacks "$DEB_ARC" 'example-lz4|^usr/bin/'

# The shared library: SONAME libbmaptk.so.0, the API of bmaptk.h and no
# internal symbol.
X=$E2E_TMP/x
mkdir "$X"
for deb in "$DEB_BIN" "$DEB_LIB" "$DEB_DEV" "$DEB_ARC"; do
	dpkg-deb -x "$deb" "$X" || fail "dpkg-deb -x $deb failed"
done
LIB=$X/usr/lib/$MA/libbmaptk.so.0
if command -v objdump >/dev/null; then
	assert_contains "$(objdump -p "$LIB")" "SONAME               libbmaptk.so.0" \
		"SONAME of libbmaptk"
fi
if command -v nm >/dev/null; then
	syms=$(nm -D --defined-only "$LIB" | awk '{print $3}' | sed 's/@.*//' |
		grep -v '^BMAPTK_0$' | LC_ALL=C sort)
	want=$(grep -oE 'bmaptk_[a-z0-9_]+\(' "$BMAPTK_SRC/include/bmaptk/bmaptk.h" |
		tr -d '(' | LC_ALL=C sort -u)
	assert_eq "$want" "$syms" "symbols exported by libbmaptk.so.0"
fi

# A program built against the unpacked -dev package links and runs.
cat >"$E2E_TMP/prog.c" <<'EOF'
#include <stdio.h>
#include <bmaptk/bmaptk.h>
int main(void)
{
	struct bmaptk_registry *reg = bmaptk_registry_new();

	printf("%s %zu\n", bmaptk_version(), bmaptk_registry_count(reg));
	bmaptk_registry_free(reg);
	return 0;
}
EOF
if command -v cc >/dev/null && command -v pkg-config >/dev/null; then
	PC=$X/usr/lib/$MA/pkgconfig
	# shellcheck disable=SC2046 # pkg-config prints flags
	cc -o "$E2E_TMP/prog" "$E2E_TMP/prog.c" \
		$(PKG_CONFIG_PATH=$PC pkg-config --cflags --libs libbmaptk) ||
		fail "a program does not build against libbmaptk-dev"
	run env LD_LIBRARY_PATH="$X/usr/lib/$MA" "$E2E_TMP/prog"
	assert_rc 0 "a program linked with libbmaptk"
	assert_contains "$RUN_OUT" "$VERSION " "a program linked with libbmaptk"
	# bmaptk.pc is relative to where it lies: here, the unpacked tree.
	assert_eq "$X$PLUGIN_DIR" "$(readlink -m \
		"$(PKG_CONFIG_PATH=$PC pkg-config --variable=plugindir bmaptk)")" \
		"plugindir of bmaptk.pc"
fi

# The packaged binary.
run "$X/usr/bin/bmaptk" --version
assert_rc 0 "the packaged bmaptk --version"
assert_contains "$RUN_OUT" "$VERSION" "the packaged bmaptk --version"
run "$X/usr/bin/bmaptk" plugins
assert_rc 0 "the packaged bmaptk plugins"
assert_contains "$RUN_OUT" "plugin directory: $PLUGIN_DIR" \
	"the packaged bmaptk's plugin directory"

# Its default plugin directory, as the packages would install it: the
# unpacked tree laid over /usr/lib/$MA in a private mount namespace.
IMG=$E2E_TMP/img.raw
head -c 200000 /dev/urandom >"$IMG"
truncate -s 1M "$IMG"
(cd "$E2E_TMP" && tar -cf img.tar img.raw) || fail "tar failed"
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null &&
	unshare -m true 2>/dev/null; then
	# shellcheck disable=SC2016 # expanded by the inner sh
	run unshare -m sh -c '
		mount -t overlay overlay \
			-o "lowerdir=$1/usr/lib/$2:/usr/lib/$2" "/usr/lib/$2" &&
		"$1/usr/bin/bmaptk" plugins &&
		"$1/usr/bin/bmaptk" copy --nobmap "$3" "$4"' sh "$X" "$MA" \
		"$E2E_TMP/img.tar" "$E2E_TMP/out.raw"
	assert_rc 0 "the packaged bmaptk with the packaged plugin"
	assert_contains "$RUN_OUT" "$PLUGIN_DIR/archive.so" \
		"bmaptk plugins with the packaged plugin directory"
	assert_same_file "$IMG" "$E2E_TMP/out.raw" "copy of a tar through archive.so"
else
	skip_case "no mount namespace (needs root): plugin dir laid over"
	run env BMAPTK_PLUGIN_PATH="$X$PLUGIN_DIR" "$X/usr/bin/bmaptk" plugins
	assert_rc 0 "the packaged bmaptk plugins with BMAPTK_PLUGIN_PATH"
	assert_contains "$RUN_OUT" "$X$PLUGIN_DIR/archive.so" \
		"the packaged archive plugin"
fi
note "ok: 4 packages, lintian clean of errors"
