# bash completion for bmaptk(1), and for "bmaptool" when that is bmaptk's
# alias (bmaptool 3.9's command line). Installed as
# <datadir>/bash-completion/completions/bmaptk (and .../bmaptool with the
# alias). The option lists follow each command's --help;
# tests/e2e/release_docs.sh fails when they drift apart.

_bmaptk_common_opts='-q --quiet -d --debug --json --plugin-dir -h --help'
_bmaptk_remote_opts='--cacert --insecure --retries --timeout'
_bmaptk_sig_opts='--bmap-sig --no-sig-verify --fingerprint --keyring'

# _bmaptk_commands TOOL
_bmaptk_commands()
{
	if [[ $1 == bmaptool ]]; then
		echo 'create copy'
	else
		echo 'check copy create pack plugins'
	fi
}

# _bmaptk_options TOOL COMMAND: the options COMMAND takes ("": before it).
_bmaptk_options()
{
	if [[ $1 == bmaptool ]]; then
		case $2 in
		'') echo '-h --help --version -q --quiet -d --debug' ;;
		create) echo '-h --help -o --output --no-checksum' ;;
		copy) echo '-h --help --bmap --nobmap --bmap-sig --no-sig-verify' \
			'--keyring --fingerprint --no-verify --psplash-pipe' \
			'--removable-device' ;;
		esac
		return
	fi
	case $2 in
	'') echo "$_bmaptk_common_opts --version" ;;
	create) echo "-o --output --no-checksum --scan-zeros --fs --map" \
		"--force --split $_bmaptk_common_opts" ;;
	copy) echo '--bmap --nobmap --no-verify --psplash-pipe' \
		'--removable-device --check --rewrite-tries --skip-unchanged' \
		'--discard --zero-holes --force --to --simg-crc' \
		"$_bmaptk_remote_opts $_bmaptk_sig_opts $_bmaptk_common_opts" ;;
	check) echo "--bmap --cached $_bmaptk_remote_opts $_bmaptk_sig_opts" \
		"$_bmaptk_common_opts" ;;
	pack) echo "-o --output --bmap --bmap-sig --chunk -l --level" \
		"--no-sidecar $_bmaptk_common_opts" ;;
	plugins) echo "$_bmaptk_common_opts" ;;
	esac
}

# Whether option $1 takes the next word as its value.
_bmaptk_takes_value()
{
	case $1 in
	-o | --output | --bmap | --bmap-sig | --keyring | --fingerprint | \
		--psplash-pipe | --plugin-dir | --rewrite-tries | --to | \
		--cacert | --retries | --timeout | --map | --split | --chunk | \
		-l | --level)
		return 0
		;;
	esac
	return 1
}

_bmaptk_files()
{
	if declare -F _filedir >/dev/null; then
		_filedir
	else
		compopt -o filenames 2>/dev/null
		mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -f -- "$cur")
	fi
}

# A destination: a file, or a whole block device (/dev/NAME for each
# /sys/block/NAME).
_bmaptk_dests()
{
	local d dev seen

	_bmaptk_files
	seen=" ${COMPREPLY[*]} "
	for d in /sys/block/*; do
		dev=/dev/${d##*/}
		[[ -e $d && $dev == "$cur"* && $seen != *" $dev "* ]] &&
			COMPREPLY+=("$dev")
	done
}

# Complete the value of option $1 (from the word being completed, $cur).
# Returns 1 if $1 takes no value.
_bmaptk_value()
{
	case $1 in
	--plugin-dir)
		if declare -F _filedir >/dev/null; then
			_filedir -d
		else
			compopt -o filenames 2>/dev/null
			mapfile -t COMPREPLY < <(compgen -d -- "$cur")
		fi
		;;
	--to)
		mapfile -t COMPREPLY < <(compgen -W \
			'auto file blockdev simg simg-crc' -- "$cur")
		;;
	-o | --output | --bmap | --bmap-sig | --keyring | --cacert | \
		--psplash-pipe)
		_bmaptk_files
		;;
	*)
		_bmaptk_takes_value "$1" || return 1
		;; # a number or a fingerprint: nothing to offer
	esac
	return 0
}

_bmaptk()
{
	local cur prev words cword split=false
	local tool cmd='' w i nops=0 dashdash=0

	COMPREPLY=()
	if declare -F _init_completion >/dev/null; then
		# bash-completion: "--bmap=FILE" stays one word.
		_init_completion -s || return
	else
		words=("${COMP_WORDS[@]}")
		cword=$COMP_CWORD
		cur=${words[cword]}
		prev=${words[cword - 1]}
	fi
	tool=${words[0]##*/}
	[[ $tool == bmaptool ]] || tool=bmaptk

	# Find the command, and count the operands before the cursor.
	for ((i = 1; i < cword; i++)); do
		w=${words[i]}
		if ((dashdash)) || [[ $w != -* || $w == - ]]; then
			if [[ -z $cmd ]]; then
				cmd=$w
			else
				((nops++))
			fi
		elif [[ $w == -- ]]; then
			[[ -n $cmd ]] && dashdash=1
		elif [[ $w != *=* ]] && _bmaptk_takes_value "$w"; then
			((i++))
		fi
	done

	if [[ $split == true ]] || { ((!dashdash)) && [[ $prev == -* ]] &&
		((cword > 1)); }; then
		_bmaptk_value "$prev" && return
		[[ $split == true ]] && return
	fi
	if ((!dashdash)) && [[ $cur == -* ]]; then
		mapfile -t COMPREPLY < <(compgen -W \
			"$(_bmaptk_options "$tool" "$cmd")" -- "$cur")
		return
	fi
	case $cmd in
	'')
		mapfile -t COMPREPLY < <(compgen -W \
			"$(_bmaptk_commands "$tool")" -- "$cur")
		;;
	create)
		((nops == 0)) && _bmaptk_files
		;;
	copy)
		if ((nops == 0)); then
			_bmaptk_files
		elif [[ $tool == bmaptk ]] || ((nops == 1)); then
			_bmaptk_dests
		fi
		;;
	check)
		if ((nops == 0)); then
			_bmaptk_files
		elif ((nops == 1)); then
			_bmaptk_dests
		fi
		;;
	esac
}

complete -F _bmaptk bmaptk bmaptool
