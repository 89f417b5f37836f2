# Which plugin files bmaptk loads. dlopen runs a file's constructors before
# any ABI check, so the only protection against a hostile .so is who could
# have put it there: the file and every directory above it must be owned
# by root or the user running bmaptk and not writable by group or others
# (a sticky directory like /tmp is fine); relative entries are refused.
# Each refusal is one warning naming the path and the reason, and the
# plugin's modules do not appear.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
[ "$(id -u)" = 0 ] || skip "needs root to chown files to another user"
GOOD=$BMAPTK_TEST_PLUGINS/good.so
[ -f "$GOOD" ] || skip "test plugin $GOOD is not built"
unset BMAPTK_PLUGIN_PATH

# fresh DIR: a trusted directory (0755, root) holding a copy of good.so.
fresh() {
	rm -rf "$1"
	mkdir -m 755 "$1" && cp "$GOOD" "$1/good.so" && chmod 644 "$1/good.so"
}

# loaded WANT HOW...: `bmaptk HOW... plugins` lists testcodec iff WANT=yes.
loaded() {
	local want=$1
	shift
	run "$@" "$BMAPTK" "${PLUGARGS[@]}" plugins
	assert_rc 0 "bmaptk plugins"
	assert_no_sanitizer
	case $want in
	yes) assert_contains "$RUN_OUT" testcodec "plugin from a trusted place" ;;
	no) assert_not_contains "$RUN_OUT" testcodec "refused plugin" ;;
	esac
}

# refused REASON-TEXT PATH-IN-MESSAGE: the last run warned once about it.
refused() {
	assert_contains "$RUN_ERR" "not loading plugins" "warning"
	assert_contains "$RUN_ERR" "$1" "reason"
	assert_contains "$RUN_ERR" "$2" "path in the warning"
	[ "$(grep -c 'not loading plugins' "$E2E_TMP/run.err")" = 1 ] ||
		fail "expected one warning, got: [$RUN_ERR]"
}

D=$E2E_TMP/plugins
fresh "$D"
PLUGARGS=(--plugin-dir "$D")
loaded yes env
note "ok: a root-owned 0755 directory under a 0700 one loads"

chmod 777 "$D"
loaded no env
refused "writable by group or others" "$D"
chmod 1777 "$D"
loaded yes env
note "ok: world-writable directory refused, unless sticky"

fresh "$D"
chmod 664 "$D/good.so"
loaded no env
refused "writable by group or others" "$D/good.so"
fresh "$D"
chown nobody "$D/good.so"
loaded no env
refused "owned by another user" "$D/good.so"
fresh "$D"
chown nobody "$D"
loaded no env
refused "owned by another user" "$D"
note "ok: group-writable file, file or directory of another user refused"

# A parent that anyone may write to (and so rename the directory below).
P=$E2E_TMP/open
mkdir -m 777 "$P"
fresh "$P/plugins"
PLUGARGS=(--plugin-dir "$P/plugins")
loaded no env
refused "$P is writable by group or others" "$P/plugins"
note "ok: a writable parent directory refused"

# Relative entries, from --plugin-dir and from BMAPTK_PLUGIN_PATH.
fresh "$D"
cd "$E2E_TMP" || fail "cd"
PLUGARGS=(--plugin-dir plugins)
loaded no env
refused "relative path" "plugins"
PLUGARGS=()
loaded no env BMAPTK_PLUGIN_PATH=plugins
refused "relative path" "plugins"
loaded yes env BMAPTK_PLUGIN_PATH="$D"
note "ok: relative entries refused"
