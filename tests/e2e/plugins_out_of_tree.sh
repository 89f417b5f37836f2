# Building a plugin out of tree, as a distributor would: install this build
# into a temporary prefix (`cmake --install --prefix`), configure
# plugins/example on its own against that prefix's bmaptk.pc, build and
# install it into `pkg-config --variable=plugindir bmaptk`, then copy an lz4
# image through it: the copy must equal the image.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd cmake pkg-config cmp lz4 "$PYTHON"
[ -n "${BMAPTK_BUILD:-}" ] || skip "BMAPTK_BUILD is not set"
[ -n "${BMAPTK_SRC:-}" ] || skip "BMAPTK_SRC is not set"
pkg-config --exists liblz4 || skip "liblz4 (liblz4-dev) is not installed"
unset BMAPTK_PLUGIN_PATH

PREFIX=$E2E_TMP/prefix
run cmake --install "$BMAPTK_BUILD" --prefix "$PREFIX"
assert_rc 0 "cmake --install $BMAPTK_BUILD"
[ -x "$PREFIX/bin/bmaptk" ] || fail "no bin/bmaptk in the installed tree"
[ -f "$PREFIX/include/bmaptk/module.h" ] ||
	fail "no include/bmaptk/module.h in the installed tree"
# GNUInstallDirs puts it in lib/ or, on Debian with prefix /usr,
# lib/<multiarch>/.
PC=$(find "$PREFIX" -name bmaptk.pc -path '*/pkgconfig/*' | head -n 1)
[ -n "$PC" ] ||
	skip "the install has no bmaptk.pc (its install rule is not in CMakeLists.txt yet)"
export PKG_CONFIG_PATH=${PC%/bmaptk.pc}
unset PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR

# bmaptk.pc must describe where the tree landed, not where it was meant to.
PLUGINDIR=$(pkg-config --variable=plugindir bmaptk) ||
	fail "pkg-config --variable=plugindir bmaptk failed"
INCLUDEDIR=$(pkg-config --variable=includedir bmaptk)
[ -f "$INCLUDEDIR/bmaptk/module.h" ] ||
	fail "includedir $INCLUDEDIR from bmaptk.pc has no bmaptk/module.h"
case $(realpath -m "$PLUGINDIR") in
"$(realpath "$PREFIX")"/lib*/bmaptk/plugins) ;;
*) fail "plugindir $PLUGINDIR is not <prefix>/<libdir>/bmaptk/plugins" ;;
esac
[ -f "$PLUGINDIR/archive.so" ] || [ ! -f "$BMAPTK_BUILD/plugins/archive.so" ] ||
	fail "archive.so was not installed into $PLUGINDIR"
ABI=$(sed -n 's/^#define BMAPTK_ABI_VERSION \([0-9]*\).*/\1/p' \
	"$INCLUDEDIR/bmaptk/module.h")
assert_eq "$ABI" "$(pkg-config --variable=abi_version bmaptk)" \
	"abi_version in bmaptk.pc"

# The example alone: a fresh copy of its directory, so nothing of the
# bmaptk tree is in reach.
cp -r "$BMAPTK_SRC/plugins/example" "$E2E_TMP/example"
B=$E2E_TMP/example-build
run cmake -S "$E2E_TMP/example" -B "$B" -DCMAKE_BUILD_TYPE=Release
assert_rc 0 "configuring plugins/example out of tree"
run cmake --build "$B"
assert_rc 0 "building plugins/example out of tree"
[ -f "$B/example-lz4.so" ] || fail "the build made no example-lz4.so"
run cmake --install "$B"
assert_rc 0 "installing plugins/example out of tree"
[ -f "$PLUGINDIR/example-lz4.so" ] ||
	fail "example-lz4.so was not installed into $PLUGINDIR"

# An lz4 image through the freshly built plugin, and only it.
IMG=$E2E_TMP/disk.img
"$PYTHON" - "$IMG" <<'EOF' || fail "cannot generate the image"
import os
import random
import sys

rng = random.Random(20240702)
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, 3 * 1024 * 1024 + 512)
os.pwrite(fd, rng.randbytes(200000), 0)
os.pwrite(fd, b"x" * 100000, 2 * 1024 * 1024)
os.close(fd)
EOF
"$BMAPTK" create "$IMG" -o "$IMG.bmap" 2>"$E2E_TMP/create.err" ||
	fail "bmaptk create: $(cat "$E2E_TMP/create.err")"
lz4 -q "$IMG" "$IMG.lz4" || fail "lz4 failed"

run "$BMAPTK" --plugin-dir "$B" plugins
assert_rc 0 "bmaptk plugins"
grep -Eq "^codec +example-lz4 +50 +[^ ]+ +$B/example-lz4\.so\$" \
	"$E2E_TMP/run.out" || fail "example-lz4 not listed: [$RUN_OUT]"
RAM=$E2E_TMP # not e2e_ramdir: copy refuses new files under /dev
run "$BMAPTK" --plugin-dir "$B" copy --bmap "$IMG.bmap" "$IMG.lz4" "$RAM/out"
assert_rc 0 "copy through the out-of-tree plugin"
assert_not_contains "$RUN_ERR" "Sanitizer" "stderr of bmaptk copy"
assert_same_file "$IMG" "$RAM/out" "copy through the out-of-tree plugin"

# The installed binary with the installed plugin directory.
rm -f "$RAM/out"
run "$PREFIX/bin/bmaptk" --plugin-dir "$PLUGINDIR" copy --bmap "$IMG.bmap" \
	"$IMG.lz4" "$RAM/out"
assert_rc 0 "installed bmaptk with the installed plugin"
assert_same_file "$IMG" "$RAM/out" "installed bmaptk with the installed plugin"
note "example-lz4 built against $PC and used"
