# The release files against the binary: every option that `bmaptk --help`
# and each `bmaptk COMMAND --help` print must be offered by the bash and zsh
# completions (and nothing else), and be described in the man page (in the
# command's own section); the man page must pass `mandoc -T lint`; the
# install rules of cmake/release.cmake must put each file in place, with
# the bmaptool symlinks relative and under DESTDIR.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
[ -n "${BMAPTK_SRC:-}" ] || fail "BMAPTK_SRC is not set (the source tree)"
SRC=$BMAPTK_SRC
MAN=$SRC/docs/bmaptk.1
BASHCOMP=$SRC/completions/bmaptk.bash
ZSHCOMP=$SRC/completions/_bmaptk
for f in "$MAN" "$BASHCOMP" "$ZSHCOMP" "$SRC/cmake/release.cmake"; do
	[ -f "$f" ] || fail "$f is missing"
done
COMMANDS="create copy check pack plugins"

# help_options [ARGS...]: the options listed by `bmaptk ARGS --help`, one a
# line, sorted: the words starting with '-' before the description.
help_options() {
	"$BMAPTK" "$@" --help | "$PYTHON" -c '
import re, sys
opts = set()
for line in sys.stdin:
    if not line.startswith("  ") or not line.strip().startswith("-"):
        continue
    left = re.split(r"\s{2,}", line.strip())[0]
    opts.update(re.findall(r"(?<![\w-])--?[A-Za-z][\w-]*", left))
print("\n".join(sorted(opts)))' || fail "bmaptk $* --help failed"
}

declare -A HELP
HELP[global]=$(help_options)
for c in $COMMANDS; do
	HELP[$c]=$(help_options "$c")
	[ -n "${HELP[$c]}" ] || fail "no options parsed from bmaptk $c --help"
done
# The parser itself: a few options it must have found.
assert_contains "${HELP[global]}" "--plugin-dir" "options of bmaptk --help"
assert_contains "${HELP[create]}" "-o" "options of bmaptk create --help"
assert_contains "${HELP[copy]}" "--skip-unchanged" "options of copy --help"

# ---- bash completion ------------------------------------------------------
# bash_complete [--with-bash-completion] WORD...: the candidates bash offers
# for the last WORD (the one being completed), one a line, sorted.
bash_complete() {
	local lib=
	if [ "$1" = --with-bash-completion ]; then
		lib=/usr/share/bash-completion/bash_completion
		shift
	fi
	(cd "$E2E_TMP/cwd" && bash --norc --noprofile -c '
		lib=$1 comp=$2
		shift 2
		[ -z "$lib" ] || . "$lib" || exit 3
		. "$comp" || exit 3
		COMP_WORDS=("$@")
		COMP_CWORD=$(($# - 1))
		COMP_LINE="$*"
		COMP_POINT=${#COMP_LINE}
		_bmaptk "$1" "${COMP_WORDS[COMP_CWORD]}" \
			"${COMP_WORDS[COMP_CWORD - 1]}"
		printf "%s\n" "${COMPREPLY[@]}" | LC_ALL=C sort -u
	' bash "$lib" "$BASHCOMP" "$@") || fail "bash completion of [$*] failed"
}

mkdir -p "$E2E_TMP/cwd/sub" && : >"$E2E_TMP/cwd/disk.img" ||
	fail "cannot make the completion directory"
DEV=$(ls /sys/block 2>/dev/null | head -n 1)

# check_bash [--with-bash-completion]: run every bash case.
check_bash() {
	local got c
	got=$(bash_complete "$@" bmaptk '')
	assert_eq "check
copy
create
pack
plugins" "$got" "bash: commands after 'bmaptk '"
	got=$(bash_complete "$@" bmaptk copy --)
	for o in --bmap --nobmap --check --skip-unchanged --json; do
		grep -qx -- "$o" <<<"$got" || fail "bash: 'bmaptk copy --' lacks $o"
	done
	got=$(bash_complete "$@" bmaptk create -)
	grep -qx -- -o <<<"$got" || fail "bash: 'bmaptk create -' lacks -o"
	grep -qx -- --output <<<"$got" ||
		fail "bash: 'bmaptk create -' lacks --output"
	# No drift: the options offered are exactly those of --help.
	assert_eq "${HELP[global]}" "$(bash_complete "$@" bmaptk -)" \
		"bash: options offered before the command vs bmaptk --help"
	for c in $COMMANDS; do
		assert_eq "${HELP[$c]}" "$(bash_complete "$@" bmaptk "$c" -)" \
			"bash: options offered for $c vs bmaptk $c --help"
	done
	assert_eq "${HELP[copy]}" \
		"$(bash_complete "$@" bmaptk -q --plugin-dir d copy -)" \
		"bash: copy after global options"
	# Operands and values: files, block devices, formats.
	assert_eq "disk.img" "$(bash_complete "$@" bmaptk copy di)" \
		"bash: IMAGE completes files"
	assert_eq "disk.img" "$(bash_complete "$@" bmaptk create -o x di)" \
		"bash: create IMAGE after -o BMAP"
	assert_eq "disk.img" "$(bash_complete "$@" bmaptk copy --bmap di)" \
		"bash: --bmap completes files"
	assert_eq "sub" "$(bash_complete "$@" bmaptk --plugin-dir s)" \
		"bash: --plugin-dir completes directories"
	assert_eq "simg
simg-crc" "$(bash_complete "$@" bmaptk copy --to si)" "bash: --to"
	if [ -n "$DEV" ]; then
		got=$(bash_complete "$@" bmaptk copy disk.img "/dev/$DEV")
		grep -qx -- "/dev/$DEV" <<<"$got" ||
			fail "bash: DEST does not offer /dev/$DEV: [$got]"
		got=$(bash_complete "$@" bmaptk copy disk.img out "")
		grep -qx -- "/dev/$DEV" <<<"$got" ||
			fail "bash: a second DEST does not offer /dev/$DEV"
		got=$(bash_complete "$@" bmaptk check disk.img "")
		grep -qx -- "/dev/$DEV" <<<"$got" ||
			fail "bash: check DEST does not offer /dev/$DEV"
	fi
	assert_eq "" "$(bash_complete "$@" bmaptk create disk.img '')" \
		"bash: create takes one operand"
	# The bmaptool alias: exactly the alias's own --help options.
	assert_eq "create
copy" "$(bash_complete "$@" bmaptool '' | LC_ALL=C sort -r)" \
		"bash: bmaptool commands"
	assert_eq "$(tool_help_options copy)" \
		"$(bash_complete "$@" bmaptool copy -)" "bash: bmaptool copy -"
	assert_eq "$(tool_help_options create)" \
		"$(bash_complete "$@" bmaptool create -)" "bash: bmaptool create -"
	assert_eq "" "$(bash_complete "$@" bmaptool copy a b '')" \
		"bash: bmaptool copy takes one DEST"
}

# tool_help_options COMMAND: the options of `bmaptool COMMAND --help`.
ln -s "$BMAPTK" "$E2E_TMP/bmaptool" || fail "cannot link bmaptool"
tool_help_options() {
	BMAPTK=$E2E_TMP/bmaptool help_options "$@"
}

check_bash
if [ -f /usr/share/bash-completion/bash_completion ]; then
	check_bash --with-bash-completion
	got=$(bash_complete --with-bash-completion bmaptk copy --bmap=di)
	assert_eq "disk.img" "$got" "bash: --bmap=FILE (bash-completion)"
else
	skip_case "bash-completion is not installed: tested without it only"
fi

# ---- zsh completion -------------------------------------------------------
# zsh_complete LINE...: complete each LINE in an interactive zsh on a pty
# (compadd wrapped to record the candidates); the candidates of LINE i go
# to $E2E_TMP/zsh/i, one a line.
zsh_complete() {
	rm -rf "$E2E_TMP/zsh" && mkdir -p "$E2E_TMP/zsh" ||
		fail "cannot make $E2E_TMP/zsh"
	cat >"$E2E_TMP/complete.zsh" <<'EOF'
# zsh -f complete.zsh FPATH-DIR OUT-DIR LINE...
zmodload zsh/zpty || exit 3
comps=$1 out=$2
shift 2
wait_for() { # FILE WORD: up to 5 s
	local t
	for t in {1..100}; do
		grep -q $2 $1 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}
zpty z zsh -f -i || exit 3
zpty -w z "PS1= RPS1=; unsetopt AUTO_LIST LIST_AMBIGUOUS BEEP"
zpty -w z "fpath=(${(q)comps} \$fpath); autoload -Uz compinit"
zpty -w z "compinit -u -D; zstyle '*' insert-tab false"
# Record what each compadd adds (not its internal -O/-A/-D uses).
zpty -w z 'compadd() { if (( ${@[(I)-[ODA]]} )); then builtin compadd "$@"; return; fi; local -a m; builtin compadd -A m "$@"; (( $#m )) && print -rl -- $m >>$out_file; builtin compadd "$@"; }'
zpty -w z "print -r -- READY >${(q)out}/ready"
wait_for $out/ready READY || exit 4
i=0
for line in "$@"; do
	i=$((i + 1))
	: >$out/$i
	zpty -w z "out_file=${(q)out}/$i"
	zpty -w -n z "$line"$'\t'
	# Keys typed while completing can cut it short (zle sees pending
	# input on a loaded machine): wait until it has added something.
	for t in {1..100}; do
		[[ -s $out/$i ]] && break
		sleep 0.05
	done
	sleep 0.2 # the rest of its compadd calls
	zpty -w -n z $'\C-e\C-u'
	zpty -w z "print -r -- __DONE__ >>${(q)out}/$i"
	wait_for $out/$i __DONE__ || exit 5
done
zpty -d z
EOF
	(cd "$E2E_TMP/cwd" && timeout 60 zsh -f "$E2E_TMP/complete.zsh" \
		"$(dirname "$ZSHCOMP")" "$E2E_TMP/zsh" "$@") ||
		fail "zsh completion harness failed (status $?)"
}

# zsh_got I: the candidates for line I, sorted, without the end marker.
zsh_got() {
	grep -v -x __DONE__ "$E2E_TMP/zsh/$1" | LC_ALL=C sort -u
}

# Only the options from a candidate list.
only_options() {
	grep -E -- '^-' || true
}

if ! command -v zsh >/dev/null 2>&1; then
	skip_case "zsh is not installed (apt-get install zsh): its completion is untested"
elif ! zsh -f -c 'zmodload zsh/zpty' 2>/dev/null; then
	skip_case "zsh has no zpty module: its completion is untested"
else
	zsh -n "$ZSHCOMP" || fail "$ZSHCOMP: zsh syntax error"
	zsh_complete 'bmaptk ' 'bmaptk -' 'bmaptk create -' 'bmaptk copy -' \
		'bmaptk check -' 'bmaptk pack -' 'bmaptk plugins -' \
		'bmaptk copy di' \
		'bmaptk copy --to=si' "bmaptk copy disk.img /dev/$DEV" \
		'bmaptool ' 'bmaptool copy -' 'bmaptool create -' \
		'bmaptk -q copy --bmap di'
	assert_eq "check
copy
create
pack
plugins" "$(zsh_got 1)" "zsh: commands after 'bmaptk '"
	# Options: every one of --help, and no other. zsh leaves out options
	# excluded by what is typed, and -h/--help when others were typed, so
	# compare from a bare "-".
	assert_eq "${HELP[global]}" "$(zsh_got 2 | only_options)" \
		"zsh: options before the command vs bmaptk --help"
	n=3
	for c in $COMMANDS; do
		assert_eq "${HELP[$c]}" "$(zsh_got $n | only_options)" \
			"zsh: options for $c vs bmaptk $c --help"
		n=$((n + 1))
	done
	assert_eq "disk.img" "$(zsh_got 8)" "zsh: IMAGE completes files"
	assert_eq "simg
simg-crc" "$(zsh_got 9)" "zsh: --to=FORMAT"
	if [ -n "$DEV" ]; then
		zsh_got 10 | grep -qx -- "/dev/$DEV" ||
			fail "zsh: DEST does not offer /dev/$DEV: [$(zsh_got 10)]"
	fi
	assert_eq "copy
create" "$(zsh_got 11)" "zsh: bmaptool commands"
	assert_eq "$(tool_help_options copy)" "$(zsh_got 12 | only_options)" \
		"zsh: bmaptool copy -"
	assert_eq "$(tool_help_options create)" "$(zsh_got 13 | only_options)" \
		"zsh: bmaptool create -"
	assert_eq "disk.img" "$(zsh_got 14)" "zsh: --bmap FILE after -q"
fi

# ---- man page ------------------------------------------------------------
if command -v mandoc >/dev/null 2>&1; then
	run mandoc -T lint -W warning "$MAN"
	assert_rc 0 "mandoc -T lint -W warning"
	assert_eq "" "$RUN_OUT$RUN_ERR" "mandoc -T lint -W warning"
	# Style too, except what depends on the manuals installed here.
	run mandoc -T lint -W style "$MAN"
	left=$(printf '%s\n%s\n' "$RUN_OUT" "$RUN_ERR" |
		grep -v -e 'referenced manual not found' -e 'mandoc\.db' |
		grep -v '^$' || true)
	assert_eq "" "$left" "mandoc -T lint (style)"
	mandoc -T ascii "$MAN" 2>/dev/null | col -bx >"$E2E_TMP/man.txt" ||
		fail "mandoc -T ascii failed"
elif command -v groff >/dev/null 2>&1; then
	skip_case "mandoc is not installed (apt-get install mandoc): no lint"
	groff -mdoc -T ascii -P -c "$MAN" 2>/dev/null | col -bx \
		>"$E2E_TMP/man.txt" || fail "groff failed"
else
	skip "neither mandoc nor groff is installed"
fi

# Every option of every --help in the man page; each command's own options
# (not the global ones) in that command's section.
"$PYTHON" - "$E2E_TMP/man.txt" "${HELP[global]}" \
	"create" "${HELP[create]}" "copy" "${HELP[copy]}" \
	"check" "${HELP[check]}" "plugins" "${HELP[plugins]}" <<'EOF' ||
import re
import sys

text = open(sys.argv[1]).read()
glob = sys.argv[2].split()
bad = []


def has(t, opt):
    return re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(opt), t)


def section(name):
    # From the subsection "   bmaptk NAME" to the next subsection or
    # section heading.
    m = re.search(r"^ {3}bmaptk %s\b.*?(?=^ {3}\S|^\S)" % name, text,
                  re.M | re.S)
    return m.group(0) if m else ""


for opt in glob:
    if not has(text, opt):
        bad.append("global option %s is not in the man page" % opt)
args = sys.argv[3:]
for name, opts in zip(args[::2], args[1::2]):
    sec = section(name)
    if not sec:
        bad.append("no subsection 'bmaptk %s'" % name)
        continue
    for opt in opts.split():
        if opt in glob:
            continue
        if not has(sec, opt):
            bad.append("%s: %s is not in its man page section" % (name, opt))
for needle in ("BMAPTK_PLUGIN_PATH", "BMAPTK_FORCE_SEEK", "GNUPGHOME",
               "EXIT STATUS", "ENVIRONMENT", "FILES", "EXAMPLES",
               "BMAP DISCOVERY", "SIGNATURES", "PLUGINS", "--scan-zeros",
               "--skip-unchanged", "disk.img.xz.bmap", ".simg",
               "BMAPTOOL COMPATIBILITY", "BMAPTK_BMAPTOOL_ALIAS"):
    if needle not in text:
        bad.append("the man page does not mention %s" % needle)
m = re.search(r"^EXIT STATUS\n(.*?)(?=^\S)", text, re.M | re.S)
codes = re.findall(r"^ +(\d+) ", m.group(1), re.M) if m else []
if codes != ["0", "1", "2", "3", "130"]:
    bad.append("EXIT STATUS lists %s, not 0 1 2 3 130" % codes)
ex = re.search(r"^EXAMPLES\n(.*?)(?=^\S)", text, re.M | re.S)
ex = ex.group(1) if ex else ""
for needle in ("bmaptk create", "--scan-zeros", ".simg", "bmaptk copy",
               "--skip-unchanged", "--check", "--json", "/dev/sdc"):
    if needle not in ex:
        bad.append("EXAMPLES lack %s" % needle)
for b in bad:
    print(b, file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
	fail "the man page misses options or sections (above)"

# The exit codes in --help are those of the man page.
for code in 0 1 2 3 130; do
	"$BMAPTK" --help | grep -qE "^  $code +" ||
		fail "bmaptk --help does not list exit code $code"
done

# ---- install rules -------------------------------------------------------
if ! command -v cmake >/dev/null 2>&1; then
	skip_case "cmake is not installed: install rules untested"
else
	proj=$E2E_TMP/cmake
	mkdir -p "$proj" && cat >"$proj/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.18)
project(release_rules NONE)
include(GNUInstallDirs)
include("$SRC/cmake/release.cmake")
EOF
	for alias in ON OFF; do
		b=$proj/build-$alias root=$E2E_TMP/root-$alias
		run cmake -Wno-dev -S "$proj" -B "$b" -DCMAKE_INSTALL_PREFIX=/usr \
			-DBMAPTK_BMAPTOOL_ALIAS=$alias
		assert_rc 0 "cmake configure (alias $alias)"
		run env DESTDIR="$root" cmake --install "$b"
		assert_rc 0 "cmake --install (alias $alias)"
		assert_same_file "$MAN" "$root/usr/share/man/man1/bmaptk.1" \
			"installed man page"
		assert_same_file "$BASHCOMP" \
			"$root/usr/share/bash-completion/completions/bmaptk" \
			"installed bash completion"
		assert_same_file "$ZSHCOMP" \
			"$root/usr/share/zsh/vendor-completions/_bmaptk" \
			"installed zsh completion"
	done
	r=$E2E_TMP/root-ON/usr
	assert_eq "bmaptk" "$(readlink "$r/bin/bmaptool")" "bin/bmaptool link"
	assert_eq "bmaptk.1" "$(readlink "$r/share/man/man1/bmaptool.1")" \
		"bmaptool.1 link"
	assert_eq "bmaptk" \
		"$(readlink "$r/share/bash-completion/completions/bmaptool")" \
		"bash completion bmaptool link"
	assert_no_file "$E2E_TMP/root-OFF/usr/bin/bmaptool" "alias OFF"
	assert_no_file "$E2E_TMP/root-OFF/usr/share/man/man1/bmaptool.1" \
		"alias OFF"
	if [ -n "${BMAPTK_BUILD:-}" ] &&
		! grep -qs 'bmaptk\.1' "$BMAPTK_BUILD/cmake_install.cmake"; then
		note "cmake/release.cmake is not included by CMakeLists.txt yet" \
			"(tested here from a scratch project)"
	fi
fi
exit 0
