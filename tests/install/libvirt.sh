#!/usr/bin/env bash
# Debian's libvirt picks vfsd from its vhost-user descriptor for a domain whose virtiofs
# filesystems name no <binary path>: the descriptor `make install` writes (50-vfsd.json, here
# naming the build's vfsd) in /etc/qemu/vhost-user, Debian's 50-qemu-virtiofsd.json masked
# with an empty file of the same name (docs/deploy.md). libvirtd runs in a private mount
# namespace of its own (its state, config and /etc/qemu/vhost-user there), boots the test
# guest under TCG, and the guest writes through vfsd. Needs root.
# Usage: tests/install/libvirt.sh [BUILD]. Ends with "N passed, M failed".
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$(cd "${1:-$repo/build}" && pwd)
# shellcheck source=../lib/host-test.sh
source "$repo/tests/lib/host-test.sh"
need_root libvirt-setup "libvirtd's system instance runs as root"
if ! command -v libvirtd >/dev/null || ! command -v virsh >/dev/null; then
	echo "FAIL libvirt-setup libvirtd or virsh is not installed (make deps installs them)"
	summary
	exit 1
fi
# libvirt's QEMU driver resolves its default user before it reads qemu.conf (which makes it
# root here); Debian's libvirt-daemon-system would create it.
getent passwd libvirt-qemu >/dev/null ||
	useradd --system --no-create-home --shell /usr/sbin/nologin libvirt-qemu
# The guest's kernel and initramfs (tests/vm), fetched and built once.
# shellcheck source=../vm/common.sh
source "$repo/tests/vm/common.sh"
vm_boot_files # VMLINUZ, initrd

# Under /var/tmp: the guest sees the host's / through its rootfs share, but not /tmp.
work=$(mktemp -d /var/tmp/vfsd-libvirt.XXXXXX)
chmod 755 "$work"
trap '((fail == 0)) && rm -rf "$work" || echo "kept $work"' EXIT
mkdir -p "$work/share" "$work/vhost-user" "$work/state"/{run,lib,cache,log} "$work/etc"
make -s -C "$repo" BUILD="$build" install DESTDIR="$work/root" PREFIX=/usr/local >/dev/null
sed "s|\"/usr/local/bin/vfsd\"|\"$build/vfsd\"|" "$work/root/etc/qemu/vhost-user/50-vfsd.json" \
	>"$work/vhost-user/50-vfsd.json"
: >"$work/vhost-user/50-qemu-virtiofsd.json" # an empty file masks the vendor one
cp -a /etc/libvirt/. "$work/etc/"
cat >"$work/etc/qemu.conf" <<'CONF'
user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
stdio_handler = "file"
CONF

cat >"$work/guest.sh" <<'GUEST'
#!/bin/bash
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ $(stat -f -c %t "$1") == 65735546 ]]
report share-is-virtiofs $? "$1 is $(stat -f -c %t "$1")"
[[ $(cat "$1/from-host" 2>&1) == host-was-here ]]
report guest-reads-host-file $?
echo guest-was-here >"$1/from-guest" && sync
report guest-writes $?
((failures == 0))
GUEST
cp "$repo/tests/vm/guest/lib.sh" "$work/lib.sh"
echo host-was-here >"$work/share/from-host"

cat >"$work/domain.xml" <<XML
<domain type='qemu'>
  <name>vfsd-libvirt-test</name>
  <memory unit='MiB'>512</memory>
  <!-- one vCPU runs, two could: QEMU 7.2's TCG then keeps the guest's memory barriers
       (docs/error-handling.md, "A notification lost") -->
  <vcpu current='1'>2</vcpu>
  <memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$VMLINUZ</kernel>
    <initrd>$initrd</initrd>
    <cmdline>console=ttyS0 panic=-1 quiet vfsd.script=$work/guest.sh vfsd.guest=1</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <filesystem type='mount' accessmode='passthrough'>
      <driver type='virtiofs' queue='1024'/>
      <source dir='/'/>
      <target dir='rootfs'/>
    </filesystem>
    <filesystem type='mount' accessmode='passthrough'>
      <driver type='virtiofs' queue='1024'/>
      <source dir='$work/share'/>
      <target dir='test'/>
    </filesystem>
    <serial type='file'><source path='$work/console.log'/><target port='0'/></serial>
  </devices>
</domain>
XML

# Inside the private mount namespace: libvirtd with its own state, the domain started, and
# what libvirt ran while it ran.
cat >"$work/inside.sh" <<'INSIDE'
set -u
w=$1
mount --make-rprivate /
mkdir -p /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt /etc/qemu/vhost-user
mount --bind "$w/state/run" /run/libvirt 2>/dev/null || { mkdir -p /run/libvirt && mount --bind "$w/state/run" /run/libvirt; }
mount --bind "$w/state/lib" /var/lib/libvirt
mount --bind "$w/state/cache" /var/cache/libvirt
mount --bind "$w/state/log" /var/log/libvirt
mount --bind "$w/etc" /etc/libvirt
mkdir -p /etc/qemu/vhost-user
mount --bind "$w/vhost-user" /etc/qemu/vhost-user
libvirtd -p "$w/libvirtd.pid" >"$w/libvirtd.out" 2>&1 &
lv=$!
for _ in $(seq 100); do [ -S /run/libvirt/libvirt-sock ] && break; sleep 0.1; done
virsh -q -c qemu:///system create "$w/domain.xml" >"$w/virsh.out" 2>&1
rc=$?
echo "create=$rc" >"$w/status"
ps -eo pid,args >"$w/ps-running.txt"
[ $rc = 0 ] && for _ in $(seq 300); do grep -q VFSD-GUEST-EXIT "$w/console.log" 2>/dev/null && break; sleep 0.2; done
sleep 1
virsh -q -c qemu:///system destroy vfsd-libvirt-test >/dev/null 2>&1
kill "$lv"
wait "$lv" 2>/dev/null
INSIDE
timeout 180 unshare -m bash "$work/inside.sh" "$work"

grep -q '^create=0' "$work/status" 2>/dev/null
check libvirt-starts-domain-without-binary-path $? "$(cat "$work/virsh.out" "$work/libvirtd.out" 2>/dev/null | tail -n 5)"
# One daemon per filesystem, each as libvirt starts a virtiofsd (--fd, -o source=); the
# namespace sandbox makes each two processes.
for fs in rootfs:/ test:"$work/share"; do
	n=$(grep -c -- " $build/vfsd --fd=[0-9]* -o source=${fs#*:}\$" "$work/ps-running.txt")
	((n == 2))
	check "libvirt-runs-vfsd-for-${fs%%:*}" $? "$n processes: $(grep -- "--fd" "$work/ps-running.txt" | head -n 4)"
done
! grep -q '/usr/lib/qemu/virtiofsd' "$work/ps-running.txt"
check debian-virtiofsd-masked $?
grep -q 'VFSD-GUEST-EXIT 0' "$work/console.log" 2>/dev/null
check guest-ran $? "$(grep -a 'VFSD-' "$work/console.log" 2>/dev/null | tail -n 3)"
for t in share-is-virtiofs guest-reads-host-file guest-writes; do
	grep -q "VFSD-TEST PASS $t" "$work/console.log" 2>/dev/null
	check "guest-$t" $? "$(grep -a "$t" "$work/console.log" 2>/dev/null | head -n 1)"
done
[[ $(cat "$work/share/from-guest" 2>/dev/null) == guest-was-here ]]
check host-sees-guest-write $?
summary
