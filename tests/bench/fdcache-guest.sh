#!/usr/bin/env bash
# make bench-fdcache-guest: issue 15's fd-cache goal in a real guest. A TCG guest runs
# `find -printf '%i %s'` (a stat of every file) over a tree of 2 million files on a share whose
# daemon has --rlimit-nofile=4096 and inodes held by fds (no file handles: a rootless daemon
# has none), and keeps the dentries. No stat may fail. Daemons:
#   vfsd           root, its default sandbox
#   vfsd-rootless  unshare -r --map-auto -- vfsd --sandbox chroot, as an unprivileged user
#                  (the rootless tests' user, made if missing)
#   c-virtiofsd    QEMU's C virtiofsd, with --references (it fails after about 4,000 files;
#                  its walk stops after 5,000 errors, "5000+" in the table)
# Per daemon: the files find saw, its errors (ENFILE, EMFILE), the walk's time, the inodes the
# guest kept (its fuse_inode slab), the daemon's fds and its resident memory per kept inode
# (VmRSS after the walk less VmRSS before it, over the guest's inodes).
#
# Usage: tests/bench/fdcache-guest.sh --vfsd PATH [--files N] [--rlimit N] [--mem SIZE]
#                                     [--references] [--only NAME]
#   --files       files the guest walks (default 2000000, directories of 1,000; the tree is
#                 made once under build/bench/fdcache-data and kept, shared with make
#                 bench-fdcache)
#   --rlimit      the daemons' --rlimit-nofile (default 4096)
#   --mem         the guest's memory (default 4G: enough to keep every dentry)
#   --references  also the C virtiofsd
#   --only NAME   one daemon of the list
# Results: build/bench/fdcache-guest.json. Needs root; about 12 minutes per vfsd row for 2 million.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
vfsd="" files=2000000 rlimit=4096 mem=4G references=0 only=""
while (($#)); do
	case $1 in
	--vfsd) vfsd=$(realpath "$2"); shift 2 ;;
	--files) files=$2; shift 2 ;;
	--rlimit) rlimit=$2; shift 2 ;;
	--mem) mem=$2; shift 2 ;;
	--references) references=1; shift ;;
	--only) only=$2; shift 2 ;;
	-h | --help) sed -n '2,25s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
	*) echo "fdcache-guest.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
[[ -x $vfsd ]] || { echo "fdcache-guest.sh: --vfsd PATH is needed" >&2; exit 2; }
[[ $files =~ ^[0-9]+$ && $files -gt 0 ]] || { echo "fdcache-guest.sh: --files wants a count" >&2; exit 2; }
((EUID == 0)) || { echo "fdcache-guest.sh: needs root (QEMU, the rootless user)" >&2; exit 2; }

data=$repo/build/bench/fdcache-data
share=$data/share
# shellcheck source=fdcache-tree.sh
source "$repo/tests/bench/fdcache-tree.sh"
fdcache_tree "$data" "$files" || { echo "fdcache-guest: could not make the tree" >&2; exit 1; }
dirs=$(((files + 999) / 1000)) # the guest walks the first dirs directories
files=$((dirs * 1000))

work=$(mktemp -d -t vfsd-fdcache-guest.XXXXXX)
chmod 755 "$work"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT # (no jobs: kill fails)
# the binary where the rootless user can reach it
mkdir -m 755 "$work/bin"
cp "$vfsd" "$work/bin/vfsd"

# daemon_cmd NAME SOCK: the command line of daemon NAME, in cmd.
daemon_cmd() {
	case $1 in
	vfsd) cmd=("$work/bin/vfsd" --socket-path="$2" --shared-dir="$share" --rlimit-nofile="$rlimit") ;;
	vfsd-rootless)
		cmd=(runuser -u "$rootless_user" -- unshare -r --map-auto -- "$work/bin/vfsd"
			--socket-path="$2" --shared-dir="$share" --sandbox=chroot --rlimit-nofile="$rlimit") ;;
	c-virtiofsd)
		cmd=(/usr/lib/qemu/virtiofsd --socket-path="$2" -o source="$share" -o cache=auto
			--rlimit-nofile="$rlimit") ;;
	esac
}

# daemon_pid SOCK: the newest process named vfsd or virtiofsd whose command line has SOCK.
daemon_pid() {
	local p
	for p in $(pgrep -f -- "--socket-path=$1" | sort -rn); do
		case $(cat "/proc/$p/comm" 2>/dev/null) in
		vfsd | virtiofsd) echo "$p"; return 0 ;;
		esac
	done
	return 1
}

rss_kib() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status"; }
nfds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l; }

# wait_file FILE SECS PID: FILE appears within SECS while PID (boot.sh) runs.
wait_file() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		[[ -e $1 ]] && return 0
		kill -0 "$3" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

results=()
# measure NAME: one guest against daemon NAME; appends "NAME key=value..." to results.
measure() {
	local name=$1 dir=$work/$1 sock boot_pid pid="" rc=0 rss0 rss1="" fds
	local -a cmd
	mkdir -p "$dir"
	chmod 777 "$dir" # the rootless daemon makes its socket here
	sock=$dir/fs.sock
	rm -rf "$share/out"
	mkdir -m 1777 "$share/out" # the guest's root is an unprivileged user for vfsd-rootless
	daemon_cmd "$name" "$sock"
	"${cmd[@]}" >"$dir/daemon.log" 2>&1 </dev/null &
	for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.1; done
	if [[ ! -S $sock ]]; then
		echo "fdcache-guest: $name did not start: $(tail -n 3 "$dir/daemon.log")" >&2
		return 1
	fi
	# a reference fails every stat past its limit: a few thousand errors say enough
	VFSD_VM_MEM=$mem VFSD_VM_SMP=2 "$repo/tests/vm/boot.sh" --test-socket "$sock" \
		--script "$repo/tests/vm/guest/find-bench.sh" --env "FIND_EXPECT=$files" --env "FIND_DIRS=$dirs" \
		--env "FIND_STOP_ERRORS=$([[ $name == vfsd* ]] && echo 0 || echo 5000)" \
		--timeout 7200 >"$dir/boot.log" 2>&1 </dev/null &
	boot_pid=$!
	if wait_file "$share/out/walk-start" 300 "$boot_pid"; then
		# now, not before: a sandbox may fork the serving process once the VMM connected
		pid=$(daemon_pid "$sock") || { echo "fdcache-guest: no process of $name found" >&2; return 1; }
		rss0=$(rss_kib "$pid")
		touch "$share/out/start-sampled"
		echo "fdcache-guest: $name: the guest walks $files files..."
		if wait_file "$share/out/walk-done" 7000 "$boot_pid"; then
			rss1=$(rss_kib "$pid") fds=$(nfds "$pid")
			touch "$share/out/sampled"
		fi
	fi
	wait "$boot_pid" || rc=$?
	[[ -z $pid ]] || kill "$pid" 2>/dev/null || true
	wait 2>/dev/null || true
	if [[ ! -s $share/out/result || -z $rss1 ]]; then
		echo "fdcache-guest: $name: the guest run failed (boot.sh status $rc):" >&2
		tail -n 15 "$dir/boot.log" >&2
		return 1
	fi
	results+=("$name $(cat "$share/out/result") rss_before_kib=$rss0 rss_after_kib=$rss1 fds=$fds boot_status=$rc")
	[[ -s $share/out/errors ]] && echo "fdcache-guest: $name: first error: $(head -n 1 "$share/out/errors")"
	return 0
}

names=(vfsd vfsd-rootless)
((references)) && names+=(c-virtiofsd)
[[ -z $only ]] || names=("$only")
status=0
for name in "${names[@]}"; do
	case $name in
	vfsd) ;;
	vfsd-rootless)
		# shellcheck source=../lib/rootless-user.sh
		source "$repo/tests/lib/rootless-user.sh" # rootless_user_create, rootless_user
		rootless_user_create || { echo "fdcache-guest: cannot make the rootless user" >&2; status=1; continue; }
		;;
	c-virtiofsd)
		[[ -x /usr/lib/qemu/virtiofsd ]] || { echo "fdcache-guest: no C virtiofsd: its row is left out"; continue; } ;;
	*) echo "fdcache-guest.sh: no daemon $name (vfsd, vfsd-rootless, c-virtiofsd)" >&2; exit 2 ;;
	esac
	measure "$name" || status=1
done
rm -rf "$share/out"

echo
echo "fd cache in a guest: find -printf over $files files, --rlimit-nofile=$rlimit, guest memory $mem"
echo "(guest-inodes: what the guest's dcache kept; N+ errors: the walk stopped there; fds and"
echo " memory -: the guest had to drop its dentries to report, the daemon having no fd left)"
printf '%-14s %9s %7s %7s %7s %8s %11s %6s %12s\n' daemon files errors ENFILE EMFILE seconds \
	guest-inodes fds "RSS B/inode"
json="["
for r in "${results[@]}"; do
	read -r name kv <<<"$r"
	declare -A v=()
	for pair in $kv; do v[${pair%%=*}]=${pair#*=}; done
	per_inode=$(awk -v a="${v[rss_after_kib]}" -v b="${v[rss_before_kib]}" -v n="${v[guest_inodes]}" \
		'BEGIN { printf "%.0f", (n > 0 ? (a - b) * 1024 / n : 0) }')
	shown_fds=${v[fds]} shown_rss=$per_inode
	if ((${v[dropped]:-0})); then shown_fds=- shown_rss=-; fi
	printf '%-14s %9s %7s %7s %7s %8s %11s %6s %12s\n' "$name" "${v[files]}" \
		"${v[errors]}$( ((v[stopped])) && echo +)" \
		"${v[enfile]}" "${v[emfile]}" "${v[seconds]}" "${v[guest_inodes]}" "$shown_fds" "$shown_rss"
	json+=$(printf '{"daemon":"%s","expected":%s,"rlimit":%s,"files":%s,"errors":%s,"stopped":%s,"enfile":%s,"emfile":%s,"seconds":%s,"dropped":%s,"guest_inodes":%s,"rss_before_kib":%s,"rss_after_kib":%s,"fds":%s,"rss_bytes_per_inode":%s},' \
		"$name" "$files" "$rlimit" "${v[files]}" "${v[errors]}" "${v[stopped]}" "${v[enfile]}" "${v[emfile]}" \
		"${v[seconds]}" "${v[dropped]:-0}" "${v[guest_inodes]}" "${v[rss_before_kib]}" "${v[rss_after_kib]}" \
		"${v[fds]}" "$per_inode")
	if [[ $name == vfsd* ]] && ((v[errors] > 0 || v[files] != files)); then
		echo "fdcache-guest: $name: the walk was not clean" >&2
		status=1
	fi
	unset v
done
mkdir -p "$repo/build/bench"
echo "${json%,}]" >"$repo/build/bench/fdcache-guest.json"
echo "(build/bench/fdcache-guest.json)"
exit "$status"
