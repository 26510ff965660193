#!/usr/bin/env bash
# make install and make uninstall into a DESTDIR: every file where the programs that use it
# look (Podman's and CRI-O's hooks.d, systemd's unit directory, QEMU's vhost-user descriptors
# that libvirt reads), each naming the installed binaries; the unit passes systemd-analyze
# verify; the man pages render; uninstall leaves nothing. Usage: tests/install/run.sh
# Ends with "N passed, M failed".
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../lib/host-test.sh
source "$repo/tests/lib/host-test.sh"
work=$(mktemp -d -t vfsd-install.XXXXXX)
trap 'rm -rf "$work"' EXIT

# installed DESTDIR FILE MODE: FILE is there, a regular file of that mode
installed() {
	local f=$1$2
	[[ -f $f && ! -L $f && $(stat -c %a "$f") == "$3" ]]
	check "file:$2" $? "$(ls -l "$f" 2>&1)"
}

# layout NAME DESTDIR PREFIX HOOKSDIR VHOSTUSERDIR UNITDIR [MAKE-VARIABLES...]
layout() {
	local name=$1 d=$2 prefix=$3 hooks=$4 vu=$5 units=$6 out
	shift 6
	out=$(make -s -C "$repo" install DESTDIR="$d" PREFIX="$prefix" "$@" 2>&1)
	check "$name:make-install" $? "$out"
	installed "$d" "$prefix/bin/vfsd" 755
	installed "$d" "$prefix/bin/vfsd-hook" 755
	installed "$d" "$prefix/share/man/man1/vfsd.1" 644
	installed "$d" "$prefix/share/man/man1/vfsd-hook.1" 644
	installed "$d" "$hooks/vfsd.json" 644
	installed "$d" "$units/vfsd.service" 644
	installed "$d" "$vu/50-vfsd.json" 644
	[[ $(find "$d" -type f | wc -l) == 7 ]]
	check "$name:nothing-else" $? "$(find "$d" -type f)"

	# Each file names the installed binary.
	[[ $(jq -r .hook.path "$d$hooks/vfsd.json") == "$prefix/bin/vfsd-hook" ]] &&
		jq -e '.stages == ["createRuntime", "poststop"] and .version == "1.0.0"' "$d$hooks/vfsd.json" >/dev/null
	check "$name:hooks.d-names-the-hook" $? "$(cat "$d$hooks/vfsd.json")"
	[[ $(jq -r .type "$d$vu/50-vfsd.json") == fs && $(jq -r .binary "$d$vu/50-vfsd.json") == "$prefix/bin/vfsd" ]]
	check "$name:descriptor-names-vfsd" $? "$(cat "$d$vu/50-vfsd.json")"
	grep -qx "ExecStart=$prefix/bin/vfsd --supervisor --runtime-dir /run/vfsd" "$d$units/vfsd.service"
	check "$name:unit-runs-the-supervisor" $? "$(grep ExecStart "$d$units/vfsd.service")"

	# What libvirt asks the descriptor's binary, and what a person runs.
	out=$("$d$prefix/bin/vfsd" --print-capabilities)
	jq -e '.type == "fs"' <<<"$out" >/dev/null
	check "$name:installed-vfsd-capabilities" $? "$out"
	out=$("$d$prefix/bin/vfsd-hook" --help 2>&1)
	check "$name:installed-hook-runs" $? "$out"

	# systemd's own checker, on the unit with ExecStart pointing into the DESTDIR.
	if command -v systemd-analyze >/dev/null; then
		sed "s|^ExecStart=$prefix|ExecStart=$d$prefix|" "$d$units/vfsd.service" >"$work/vfsd.service"
		out=$(systemd-analyze verify --man=no "$work/vfsd.service" 2>&1)
		[[ $? == 0 && -z $out ]]
		check "$name:systemd-analyze-verify" $? "$out"
	fi
	for page in vfsd vfsd-hook; do
		out=$(MANWIDTH=80 man -l "$d$prefix/share/man/man1/$page.1" 2>&1 >/dev/null)
		[[ $? == 0 && -z $out ]]
		check "$name:man-$page-renders" $? "$out"
	done

	out=$(make -s -C "$repo" uninstall DESTDIR="$d" PREFIX="$prefix" "$@" 2>&1)
	check "$name:make-uninstall" $? "$out"
	[[ $(find "$d" -type f | wc -l) == 0 ]]
	check "$name:uninstall-leaves-no-file" $? "$(find "$d" -type f)"
}

# The default: /usr/local, and the system directories the programs read.
layout local "$work/local" /usr/local /etc/containers/oci/hooks.d /etc/qemu/vhost-user \
	/usr/local/lib/systemd/system
# A distribution package's layout.
layout package "$work/package" /usr /usr/share/containers/oci/hooks.d /usr/share/qemu/vhost-user \
	/usr/lib/systemd/system HOOKSDIR=/usr/share/containers/oci/hooks.d \
	VHOSTUSERDIR=/usr/share/qemu/vhost-user

summary
