# The fd-cache benches' tree (sourced by tests/bench/fdcache.sh and fdcache-guest.sh):
#   fdcache_tree DATA FILES   at least FILES empty files under DATA/share/tree, in
#                             directories of 1,000 named 0, 1, ...; made by one process and
#                             kept (DATA/.made holds the count); a bigger FILES adds
#                             directories to what is there
# shellcheck shell=bash
fdcache_tree() {
	local data=$1 files=$2 dirs made
	dirs=$(((files + 999) / 1000))
	made=$(cat "$data/.made" 2>/dev/null || echo 0)
	((made >= dirs * 1000)) && return 0
	echo "fdcache: making files $made to $((dirs * 1000)) under $data (kept for the next run)..."
	mkdir -p "$data/share/tree"
	/usr/bin/python3 - "$data/share/tree" "$((made / 1000))" "$dirs" <<'PY' || return 1
import os, sys
top, first, dirs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for d in range(first, dirs):
    p = os.path.join(top, str(d))
    os.makedirs(p, exist_ok=True)
    fd = os.open(p, os.O_RDONLY | os.O_DIRECTORY)
    for f in range(1000):
        os.close(os.open(str(f), os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
    os.close(fd)
PY
	echo "$((dirs * 1000))" >"$data/.made"
}
