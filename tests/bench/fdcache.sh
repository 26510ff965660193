#!/usr/bin/env bash
# make bench-fdcache: a guest that looks up a million files and keeps them (as its dcache does
# after a `find`), against a daemon whose --rlimit-nofile is 4096: vfsd (its fd cache,
# docs/fd-cache.md), QEMU's C virtiofsd and the Rust virtiofsd 1.14 (when
# scripts/rust-virtiofsd.sh has it), each with inodes held by fds (rootless daemons have no
# file handles). Prints, per daemon: the lookups that succeeded and that failed with ENFILE,
# the rate, the daemon's fds at the end, and its resident memory per looked-up inode; vfsd is
# also measured with its default limit (1,000,000 fds or the kernel's nr_open).
#
# Usage: tests/bench/fdcache.sh --vfsd PATH --lookups PATH [--files N] [--rlimit N]
#   --files   files in the tree (default 1000000, in directories of 1,000); the tree is made
#             once under build/bench/fdcache-data and kept for the next run
#   --rlimit  the daemons' --rlimit-nofile (default 4096)
# The results also go to build/bench/fdcache.json.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
vfsd="" lookups="" files=1000000 rlimit=4096
while (($#)); do
	case $1 in
	--vfsd) vfsd=$2; shift 2 ;;
	--lookups) lookups=$2; shift 2 ;;
	--files) files=$2; shift 2 ;;
	--rlimit) rlimit=$2; shift 2 ;;
	*) echo "fdcache.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
[[ -x $vfsd && -x $lookups ]] || { echo "fdcache.sh: --vfsd and --lookups are needed" >&2; exit 2; }
per=1000
dirs=$(((files + per - 1) / per))
files=$((dirs * per))
data=$repo/build/bench/fdcache-data
work=$(mktemp -d -t vfsd-fdcache.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT # (no jobs: kill fails)

# The tree, once (the guest bench's may be bigger: the walk takes its first $dirs directories).
# shellcheck source=fdcache-tree.sh
source "$repo/tests/bench/fdcache-tree.sh"
fdcache_tree "$data" "$files" || { echo "fdcache: could not make the tree" >&2; exit 1; }

results=()
# NAME DAEMON ARGS...: one daemon's run.
measure() {
	local name=$1 sock=$work/$1.sock log=$work/$1.log pid out
	shift
	"$@" >"$log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.1; done
	if [[ ! -S $sock ]]; then
		echo "fdcache: $name did not start: $(tail -n 3 "$log")" >&2
		return 1
	fi
	out=$("$lookups" "$sock" "$pid" "$dirs" "$per") || {
		echo "fdcache: $name: the walk failed: $(tail -n 3 "$log")" >&2
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		return 1
	}
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null || true
	results+=("$name $out")
}

share=$data/share
measure vfsd "$vfsd" --socket-path="$work/vfsd.sock" -o source="$share" \
	-o cache=auto --sandbox=none --inode-file-handles=never --thread-pool-size=0 \
	--rlimit-nofile="$rlimit"
measure vfsd-default-limit "$vfsd" --socket-path="$work/vfsd-default-limit.sock" -o source="$share" \
	-o cache=auto --sandbox=none --inode-file-handles=never --thread-pool-size=0
if [[ -x /usr/lib/qemu/virtiofsd ]]; then
	measure c-virtiofsd /usr/lib/qemu/virtiofsd --socket-path="$work/c-virtiofsd.sock" \
		-o source="$share" -o cache=auto -o sandbox=chroot --thread-pool-size=0 \
		--rlimit-nofile="$rlimit"
else
	echo "fdcache: no C virtiofsd at /usr/lib/qemu/virtiofsd: its row is left out"
fi
if rust=$("$repo/scripts/rust-virtiofsd.sh"); then
	measure rust-virtiofsd "$rust" --socket-path="$work/rust-virtiofsd.sock" \
		--shared-dir="$share" --cache=auto --sandbox=chroot --thread-pool-size=0 \
		--inode-file-handles=never --rlimit-nofile="$rlimit"
else
	echo "fdcache: no Rust virtiofsd: its row is left out (see above)"
fi

echo
echo "fd cache: $files files looked up and kept, --rlimit-nofile=$rlimit (vfsd-default-limit: vfsd's own default, 1,000,000 or the kernel's nr_open)"
printf '%-16s %10s %10s %10s %12s %8s %14s\n' daemon ok ENFILE other lookups/s fds "RSS B/inode"
json="["
for r in "${results[@]}"; do
	read -r name kv <<<"$r"
	declare -A v=()
	for pair in $kv; do v[${pair%%=*}]=${pair#*=}; done
	rate=$(awk -v n="${v[lookups]}" -v s="${v[seconds]}" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')
	per_inode=$(awk -v a="${v[rss_after_kib]}" -v b="${v[rss_before_kib]}" -v n="${v[ok]}" \
		'BEGIN { printf "%.0f", (n > 0 ? (a - b) * 1024 / n : 0) }')
	printf '%-16s %10s %10s %10s %12s %8s %14s\n' "$name" "${v[ok]}" "${v[enfile]}" \
		"$((v[emfile] + v[other]))" "$rate" "${v[fds]}" "$per_inode"
	json+=$(printf '{"daemon":"%s","files":%s,"rlimit":%s,"ok":%s,"enfile":%s,"emfile":%s,"other":%s,"seconds":%s,"rss_before_kib":%s,"rss_after_kib":%s,"fds":%s,"rss_bytes_per_inode":%s},' \
		"$name" "$files" "$rlimit" "${v[ok]}" "${v[enfile]}" "${v[emfile]}" "${v[other]}" \
		"${v[seconds]}" "${v[rss_before_kib]}" "${v[rss_after_kib]}" "${v[fds]}" "$per_inode")
	unset v
done
echo "${json%,}]" >"$repo/build/bench/fdcache.json"
echo "(build/bench/fdcache.json)"
