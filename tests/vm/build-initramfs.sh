#!/usr/bin/env bash
# Build the test initramfs (busybox-static, the virtio/FUSE modules, init.sh as /init) into the
# VM cache. Rebuilt only when an input changes; prints the image path.
#
# Usage: tests/vm/build-initramfs.sh     (cache: $VFSD_CACHE or <repo>/.cache/vm)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$here/common.sh"

env_file=$("$here/setup-kernel.sh")
# shellcheck source=/dev/null
source "$env_file"
cache=$(vm_cache_dir)
out="$cache/initramfs.cpio.gz"
exec 9>"$cache/.initramfs.lock" # one build at a time per cache
flock 9
busybox=/bin/busybox

# Load order matters: each module depends on the ones before it.
modules=(virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci fuse virtiofs)

declare -A mod_path
for m in "${modules[@]}"; do
    f=$(find "$MODDIR/kernel" \( -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" \) \
        -print -quit)
    [[ -n $f ]] || vm_die "module $m not found under $MODDIR"
    mod_path[$m]=$f
done

# Everything the image is made of; a change in any of them triggers a rebuild.
inputs=$(
    printf 'kernel %s\n' "$KVER"
    sha256sum "$here/build-initramfs.sh" "$here/init.sh" "$busybox"
    for m in "${modules[@]}"; do sha256sum "${mod_path[$m]}"; done
)
stamp="$out.inputs"
if [[ -s $out && -f $stamp && $(<"$stamp") == "$inputs" ]]; then
    printf '%s\n' "$out"
    exit 0
fi

tmp=$(mktemp -d "$cache/.initramfs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
root="$tmp/root"
mkdir -p "$root"/{bin,dev,proc,sys,newroot,lib/modules}

cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
    [[ $applet == busybox ]] || ln -s busybox "$root/bin/$applet"
done

for m in "${modules[@]}"; do
    f=${mod_path[$m]}
    case $f in
    *.ko.xz) xz -dc "$f" >"$root/lib/modules/$m.ko" ;;
    *.ko.zst) zstd -qdc "$f" >"$root/lib/modules/$m.ko" ;;
    *) cp "$f" "$root/lib/modules/$m.ko" ;;
    esac
done

install -m 0755 "$here/init.sh" "$root/init"
# The kernel opens /dev/console for /init before devtmpfs is mounted.
if ((EUID == 0)); then
    mknod -m 0600 "$root/dev/console" c 5 1
fi

(cd "$root" && find . -print0 | cpio --null -o -H newc -R 0:0 --quiet) | gzip -1 >"$tmp/img"
mv "$tmp/img" "$out"
printf '%s\n' "$inputs" >"$stamp"
printf '%s\n' "$out"
