#!/usr/bin/env bash
# make image: the vfsd container image, built offline with Debian's podman (docs/deploy.md).
#   1. a build base made here: debootstrap of Debian 12 with the build dependencies, imported
#      as localhost/vfsd-build-base:bookworm (once; kept in podman's storage);
#   2. deploy/image/Containerfile: vfsd built in that base, and a final image from scratch
#      with only what runs, tagged localhost/vfsd:VERSION;
#   3. the image run: vfsd --version, --print-capabilities, and a supervisor answering
#      `vfsd ctl ping` inside it. Prints the image's size. Needs root.
# Ends with "N passed, M failed".
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../../tests/lib/host-test.sh
source "$repo/tests/lib/host-test.sh"
need_root image-setup "podman builds the image as root"
version=$(sed -n 's/^VERSION := //p' "$repo/Makefile")
base=localhost/vfsd-build-base:bookworm
image=localhost/vfsd:$version
mirror=${VFSD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# runc: crun refuses hosts with cgroups v1 and v2 mixed (this one), runc takes both. Each run
# gets explicit limits: Podman's default open-file limit (1048576) is above what this
# machine's hard limit lets a process without CAP_SYS_RESOURCE set.
podman() { command podman --runtime "$(command -v runc)" "$@"; }
work=$(mktemp -d -t vfsd-image.XXXXXX)
cid=
trap '[[ -n $cid ]] && podman rm -f "$cid" >/dev/null 2>&1; rm -rf "$work"' EXIT

if ! podman image exists "$base"; then
	command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null
	echo "image: making $base with debootstrap from $mirror (once)..."
	debootstrap --variant=minbase \
		--include=build-essential,pkg-config,libseccomp-dev,libcap-ng-dev,libjson-c-dev,libcurl4-openssl-dev,linux-libc-dev,busybox-static,ca-certificates \
		bookworm "$work/base" "$mirror" >"$work/debootstrap.log" 2>&1
	rc=$?
	check build-base-debootstrap $rc "$(tail -n 3 "$work/debootstrap.log")"
	if ((rc == 0)); then
		tar -C "$work/base" -c . | podman import - "$base" >/dev/null
		check build-base-imported $?
	fi
	rm -rf "$work/base"
fi

out=$(podman build --network=none -f "$repo/deploy/image/Containerfile" -t "$image" "$repo" 2>&1)
check image-builds-offline $? "$(tail -n 5 <<<"$out")"
size=$(podman image inspect --format '{{.Size}}' "$image" 2>/dev/null)
echo "image: $image is $((size / 1024)) KiB"
((size > 0 && size < 64 * 1024 * 1024))
check image-is-small $? "$size bytes"

out=$(podman run --rm --network=none --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 "$image" --version 2>&1)
[[ $out == *"$version"* ]]
check image-runs-vfsd $? "$out"
out=$(podman run --rm --network=none --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 "$image" --print-capabilities 2>&1)
jq -e '.type == "fs"' <<<"$out" >/dev/null
check image-capabilities $? "$out"
out=$(podman run --rm --network=none --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 --entrypoint /usr/bin/vfsd-hook "$image" --help 2>&1)
check image-runs-vfsd-hook $? "$out"
# The supervisor as the DaemonSet runs it, and its probe.
cid=$(podman run -d --network=none --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 --cap-add=SYS_ADMIN,SYS_PTRACE,SYS_CHROOT,SYS_RESOURCE,DAC_READ_SEARCH,LINUX_IMMUTABLE \
	--entrypoint /bin/sh "$image" -c 'set --; exec /usr/bin/vfsd --supervisor --runtime-dir /run/vfsd "$@"')
ok=1
for _ in $(seq 50); do
	podman exec "$cid" /usr/bin/vfsd ctl ping >/dev/null 2>&1 && { ok=0; break; }
	sleep 0.2
done
check image-supervisor-answers-ping $ok "$(podman logs "$cid" 2>&1 | tail -n 3)"
out=$(podman exec "$cid" /bin/sh -c 'sed "s|/usr/local/bin/vfsd-hook|/opt/vfsd/bin/vfsd-hook|" /usr/share/vfsd/hooks.d/vfsd.json' 2>&1)
[[ $out == *'"/opt/vfsd/bin/vfsd-hook"'* ]]
check image-init-container-tools $? "$out"
summary
