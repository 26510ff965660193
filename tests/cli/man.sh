#!/usr/bin/env bash
# The man pages docs/man/vfsd.1 and docs/man/vfsd-hook.1: groff formats them without a single
# warning, their option dashes are roff's \- (so they render and paste as ASCII '-'), and each
# page names every option, command, annotation and variable its program's --help prints.
# Usage: tests/cli/man.sh [BUILD_DIR]   (default: build; it needs BUILD_DIR/vfsd and vfsd-hook)
# Prints "PASS name" / "FAIL name reason" lines and ends with "N passed, M failed".
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${1:-$repo/build}
man_dir=$repo/docs/man
# shellcheck source=../lib/host-test.sh
source "$repo/tests/lib/host-test.sh" # check, summary

# one_line TEXT: TEXT's lines joined with " | ", at most 600 bytes (a FAIL reason is one line)
one_line() { head -c 600 <<<"$1" | sed -z 's/\n$//; s/\n/ | /g'; }

# lint PAGE: "PASS lint-PAGE-DEVICE" when formatting it prints nothing at all on stderr
lint() {
	local page=$1 name out dev
	name=$(basename "$page")
	if command -v groff >/dev/null; then
		# the default (typesetter) device and the terminal one man(1) uses
		for dev in ps utf8; do
			out=$(groff -man -ww -z -T"$dev" "$page" 2>&1 >/dev/null)
			check "lint-$name-$dev" "$([[ $? == 0 && -z $out ]]; echo $?)" "$(one_line "$out")"
		done
	elif command -v man >/dev/null; then
		# man-db's --warnings takes groff's warning names; "all" misses some of them
		out=$(MANWIDTH=80 man -P cat --warnings=mac,reg,font,char,escape,input,number,scale,range,missing,delim,el,tab,right-brace,break,space -l "$page" 2>&1 >/dev/null)
		check "lint-$name-man" "$([[ $? == 0 && -z $out ]]; echo $?)" "$(one_line "$out")"
	else
		check "lint-$name" 1 "neither groff nor man is installed"
	fi
}

# source_text PAGE: the page's roff without comments and with its escapes undone, so that
# "\-\-shared\-dir" reads as --shared-dir
source_text() {
	sed -e '/^\.\\"/d' -e 's/\\-/-/g' -e 's/\\f\[[^]]*\]//g' -e 's/\\f[BIRP1-4]//g' \
		-e 's/\\(\(lq\|rq\|dq\)/"/g' -e 's/\\[&%c]//g' -e 's/\\e/\\/g' "$1"
}

# dashes PAGE: outside comments, no '-' that starts a word is left unescaped ("--x", " -o",
# "\--x"): roff may print it as a hyphen (U+2010), which a shell does not take as a dash
dashes() {
	local page=$1 bad
	bad=$(grep -nvE '^\.\\"' "$page" | grep -P '(?<![\\\w])-' | head -5)
	check "dashes-$(basename "$page")" "$([[ -z $bad ]]; echo $?)" "unescaped: $(one_line "$bad")"
}

# mentions PAGE WORDS...: one check per word, which the page's text must contain as a whole
# word (--control-socket is not found inside --control-socket-group)
mentions() {
	local page=$1 name text w
	shift
	name=$(basename "$page")
	text=$(source_text "$page")
	for w in "$@"; do
		grep -qP -- "(?<![A-Za-z0-9_-])\\Q$w\\E(?![A-Za-z0-9_-])" <<<"$text"
		check "$name:$w" $? "not in docs/man/$name"
	done
}

# tagged PAGE WORDS...: each word begins the tag of a .TP entry (a command with its own
# paragraph, not just the word somewhere in the text)
tagged() {
	local page=$1 name tags w
	shift
	name=$(basename "$page")
	tags=$(source_text "$page" | awk 'prev == ".TP" { print } { prev = $0 }' |
		sed -E 's/^\.[A-Z]+ +//; s/"//g')
	for w in "$@"; do
		grep -qE -- "^$w( |\$)" <<<"$tags"
		check "$name:command-$w" $? "no .TP entry for '$w' in docs/man/$name"
	done
}

# get_help VAR NAME PROGRAM ARGS...: VAR is what PROGRAM ARGS --help prints; check NAME: it
# exits 0
get_help() {
	local -n _help=$1
	local name=$2 rc
	shift 2
	_help=$(timeout 10 "$@" --help 2>&1)
	rc=$?
	check "$name" "$rc" "exit $rc: $(one_line "$_help")"
}
long_options() { grep -oE -- '--[a-z][a-z0-9-]*[a-z0-9]' | sort -u; }
# "  -o <OPTIONS>", "  -h, --help": the short options that begin a line
short_options() { grep -oE -- '^ +-[A-Za-z]([ ,]|$)' | grep -oE -- '-[A-Za-z]' | sort -u; }
# the "Commands:" block of `vfsd ctl --help`: its lines' first words
ctl_commands() { awk '/^Commands:/ { on = 1; next } on && /^$/ { exit } on && /^  [a-z]/ { print $1 }'; }

for page in "$man_dir/vfsd.1" "$man_dir/vfsd-hook.1"; do
	if [[ ! -f $page ]]; then
		check "page-$(basename "$page")" 1 "$page does not exist"
		continue
	fi
	lint "$page"
	dashes "$page"
done

if [[ ! -x $build/vfsd || ! -x $build/vfsd-hook ]]; then
	check binaries 1 "no $build/vfsd or $build/vfsd-hook (make all, or pass the build directory)"
	summary
	exit
fi

help='' ctl_help=''
if [[ -f $man_dir/vfsd.1 ]]; then
	get_help help vfsd-help "$build/vfsd"
	get_help ctl_help vfsd-ctl-help "$build/vfsd" ctl
	mapfile -t opts < <(printf '%s\n%s\n' "$help" "$ctl_help" | long_options)
	mapfile -t shorts < <(short_options <<<"$help")
	mapfile -t cmds < <(ctl_commands <<<"$ctl_help")
	check vfsd-help-parsed "$( ((${#opts[@]} > 40 && ${#shorts[@]} > 3 && ${#cmds[@]} > 5)); echo $?)" \
		"${#opts[@]} long options, ${#shorts[@]} short ones, ${#cmds[@]} ctl commands"
	mentions "$man_dir/vfsd.1" "${opts[@]}" "${shorts[@]}"
	tagged "$man_dir/vfsd.1" "${cmds[@]}"
fi

if [[ -f $man_dir/vfsd-hook.1 ]]; then
	get_help help vfsd-hook-help "$build/vfsd-hook"
	mapfile -t opts < <(long_options <<<"$help")
	mapfile -t names < <(grep -oE 'io\.vfsd\.[a-z][a-z-]*[a-z]|\$[A-Z][A-Z0-9_]+' <<<"$help" |
		sed 's/^\$//' | sort -u)
	check vfsd-hook-help-parsed "$( ((${#opts[@]} > 4 && ${#names[@]} > 1)); echo $?)" \
		"${#opts[@]} long options, ${#names[@]} annotations and variables"
	mentions "$man_dir/vfsd-hook.1" "${opts[@]}" "${names[@]}"
fi

summary
