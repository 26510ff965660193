#!/bin/sh
# Inside the image's build stage: copies what runs into OUT (deploy/image/Containerfile).
# Usage: collect-rootfs.sh BUILD_DIR OUT
set -eu
build=$1 out=$2
mkdir -p "$out/usr/bin" "$out/bin" "$out/etc/ssl/certs" "$out/usr/share/vfsd/hooks.d" \
	"$out/run" "$out/tmp" "$out/proc" "$out/sys" "$out/dev"
chmod 1777 "$out/tmp"
install -m 0755 "$build/vfsd" "$build/vfsd-hook" "$out/usr/bin/"
# Every library the binaries load, and the dynamic loader, at the paths they are found at.
for lib in $(ldd "$build/vfsd" "$build/vfsd-hook" | awk '/=> \// { print $3 } /^\t\/lib/ { print $1 }' | sort -u); do
	mkdir -p "$out$(dirname "$lib")"
	cp -L "$lib" "$out$lib"
done
# /lib64 and /lib are symlinks into /usr on Debian: the loader's path must resolve.
for l in lib lib64; do
	if [ -L "/$l" ] && [ ! -e "$out/$l" ]; then ln -s "$(readlink "/$l")" "$out/$l"; fi
done
install -m 0755 /bin/busybox "$out/bin/busybox"
for tool in sh cp mv sed cat ls mkdir; do ln -s busybox "$out/bin/$tool"; done
cp /etc/ssl/certs/ca-certificates.crt "$out/etc/ssl/certs/"
install -m 0644 /src/oci/hooks.d/vfsd.json "$out/usr/share/vfsd/hooks.d/vfsd.json"
printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$out/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$out/etc/group"
