#!/usr/bin/env bash
# Installs the Debian packages vfsd's build and tests need. Idempotent: does nothing when
# everything is already there.
set -euo pipefail

PACKAGES=(
	build-essential pkg-config linux-libc-dev
	libseccomp-dev libcap-ng-dev libjson-c-dev libcurl4-openssl-dev libcmocka-dev
	qemu-system-x86 qemu-system-common busybox-static cpio gzip python3 clang
	git sqlite3 fio stress-ng util-linux attr uidmap
)

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# An install from a stale list fails; refresh once and try again.
$SUDO apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || {
	$SUDO apt-get update -q >/dev/null
	$SUDO apt-get install -y -q "${missing[@]}" >/dev/null
}
