#!/usr/bin/env bash
# Installs the Debian packages vfsd's build and tests need. Idempotent: does nothing when
# everything is already there.
set -euo pipefail

PACKAGES=(
	build-essential pkg-config linux-libc-dev
	libseccomp-dev libcap-ng-dev libjson-c-dev libcurl4-openssl-dev libcmocka-dev
	qemu-system-x86 qemu-system-common busybox-static cpio gzip python3 clang
	git sqlite3 fio stress-ng util-linux attr uidmap jq
)
# The engines vfsd-hook is proven with (tests/hook/engines.sh), without what they recommend.
ENGINES=(crun runc podman containerd)
# The metrics proof (tests/metrics/run.sh): a real Pushgateway, a Prometheus scraping it and an
# independent parser of the text format.
METRICS=(prometheus-pushgateway prometheus python3-prometheus-client)
# deploy/k8s's strict decoding (tests/k8s/run.sh; its schema validator comes from npm).
K8S=(python3-kubernetes python3-yaml)
# libvirt picking vfsd from its vhost-user descriptor (tests/install/libvirt.sh).
LIBVIRT=(libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients)

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
updated=0

# install [APT-OPTION...] -- PACKAGE...: the ones missing; an install from a stale list fails,
# so the list is refreshed once and the install tried again.
install() {
	local opts=() missing=() p
	while [ "$1" != -- ]; do opts+=("$1"); shift; done
	shift
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "install-deps: installing ${missing[*]}"
	$SUDO apt-get install -y -q "${opts[@]}" "${missing[@]}" >/dev/null 2>&1 && return 0
	if [ $updated -eq 0 ]; then
		$SUDO apt-get update -q >/dev/null
		updated=1
	fi
	$SUDO apt-get install -y -q "${opts[@]}" "${missing[@]}" >/dev/null
}

install -- "${PACKAGES[@]}"
install --no-install-recommends -- "${ENGINES[@]}"
install --no-install-recommends -- "${METRICS[@]}"
install --no-install-recommends -- "${K8S[@]}"
install --no-install-recommends -- "${LIBVIRT[@]}"
