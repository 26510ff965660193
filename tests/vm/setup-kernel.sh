#!/usr/bin/env bash
# Fetch Debian's guest kernel into the VM cache (never installed on the host) and make sure
# the host tools the VM tests need are installed. Idempotent and quiet; prints the cache's
# kernel.env path on success.
#
# Usage: tests/vm/setup-kernel.sh        (cache: $VFSD_CACHE or <repo>/.cache/vm)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$here/common.sh"

cache=$(vm_cache_dir)
mkdir -p "$cache"
# One setup at a time per cache (parallel test runs share it).
exec 9>"$cache/.setup.lock"
flock 9
log="$cache/setup.log"

# run_logged CMD...: run quietly, show the captured output only if it fails.
run_logged() {
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        vm_die "failed: $*"
    fi
}

# Host packages: qemu-system-x86 (QEMU 7.2), busybox-static (the initramfs), cpio.
host_pkgs=(qemu-system-x86 busybox-static cpio)
missing=()
for pkg in "${host_pkgs[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [[ $status == installed ]] || missing+=("$pkg")
done
if ((${#missing[@]})); then
    ((EUID == 0)) || vm_die "missing packages (run as root to install): ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q "${missing[@]}" >"$log" 2>&1; then
        run_logged apt-get update -q
        run_logged apt-get install -y -q "${missing[@]}"
    fi
fi

# The image package linux-image-amd64 depends on, e.g. linux-image-6.1.0-56-amd64.
lookup_image_pkg() {
    apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1
}

env_file="$cache/kernel.env"
# Fast path: the lookup (~0.5 s) is skipped while apt's lists are unchanged since the last run.
lists_mtime=$(stat -c %Y /var/lib/apt/lists 2>/dev/null || echo 0)
if [[ -s $env_file ]]; then
    old_mtime=$(sed -n 's/^LISTS_MTIME=//p' "$env_file")
    old_kdir=$(sed -n 's/^KDIR=//p' "$env_file")
    if [[ $old_mtime == "$lists_mtime" && -d $old_kdir ]]; then
        printf '%s\n' "$env_file"
        exit 0
    fi
fi

pkg=$(lookup_image_pkg)
if [[ -z $pkg ]]; then
    if [[ -s $env_file ]]; then
        # No package lists, but a kernel is already cached: use it as is.
        printf '%s\n' "$env_file"
        exit 0
    fi
    run_logged apt-get update -q
    pkg=$(lookup_image_pkg)
    [[ -n $pkg ]] || vm_die "apt-cache depends linux-image-amd64 names no linux-image package"
fi

kver=${pkg#linux-image-}
kdir="$cache/$pkg"
if [[ ! -d $kdir ]]; then
    # Download and unpack in a scratch dir, then rename: a half-unpacked tree is never used.
    tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    # apt-get download writes to the current directory; the _apt user cannot, hence the option.
    (cd "$tmp" && run_logged apt-get download -q -o APT::Sandbox::User=root "$pkg")
    debs=("$tmp"/"$pkg"_*.deb)
    [[ -f ${debs[0]} ]] || vm_die "apt-get download $pkg produced no .deb"
    run_logged dpkg -x "${debs[0]}" "$tmp/root"
    [[ -f $tmp/root/boot/vmlinuz-$kver ]] || vm_die "$pkg has no boot/vmlinuz-$kver"
    mv -T "$tmp/root" "$kdir"
    rm -rf "$tmp"
    trap - EXIT
fi

lists_mtime=$(stat -c %Y /var/lib/apt/lists 2>/dev/null || echo 0)
new_env=$(printf 'KPKG=%s\nKVER=%s\nKDIR=%s\nVMLINUZ=%s\nMODDIR=%s\nLISTS_MTIME=%s\n' \
    "$pkg" "$kver" "$kdir" "$kdir/boot/vmlinuz-$kver" "$kdir/lib/modules/$kver" "$lists_mtime")
if [[ ! -f $env_file || $(<"$env_file") != "$new_env" ]]; then
    printf '%s\n' "$new_env" >"$env_file.tmp"
    mv "$env_file.tmp" "$env_file"
fi
printf '%s\n' "$env_file"
