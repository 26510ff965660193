#!/bin/sh
# /init of the vfsd test initramfs (busybox sh). Mounts the host's / (virtiofs tag "rootfs",
# read-only) as the new root and the writable share "test" at /run/test inside it, runs the
# guest script named by vfsd.script= in a chroot, prints "VFSD-GUEST-EXIT <status>" and
# powers off. Each vfsd.env.NAME=VALUE on the kernel command line is exported to the script.
PATH=/bin
export PATH

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1

step() { echo "VFSD-GUEST-STEP $*"; } # progress, so run.sh can tell where a boot hangs

status=1
finish() {
    echo "VFSD-GUEST-EXIT $status"
    shutdown_watch &
    step "shutdown: sync"
    sync
    # Unmount the shares cleanly (the daemons get DESTROY), then power off.
    step "shutdown: unmounting the test share"
    umount /newroot/run/test || step "shutdown: the test share stays mounted"
    for m in dev/pts dev/shm dev tmp run sys proc; do umount "/newroot/$m" 2>/dev/null; done
    step "shutdown: unmounting the rootfs share"
    umount /newroot || step "shutdown: the rootfs share stays mounted"
    step "shutdown: poweroff"
    poweroff -f
}

# A shutdown that has not ended after vfsd.shutdown_watch= seconds (tests/vm/common.sh sets
# half the host's grace) says where it waits before the host stops QEMU: the kernel stack of
# each process (kernel threads left out), in VFSD-GUEST-HANG lines. (virtiofs connections are
# not in fusectl, and a task waiting for a FUSE reply sleeps interruptibly: sysrq w misses it.)
shutdown_watch() {
    [ "$watch_s" -gt 0 ] 2>/dev/null || return 0
    sleep "$watch_s"
    echo "VFSD-GUEST-HANG shutdown still running after $watch_s s"
    for p in /proc/[0-9]*; do
        cmd=$(tr '\0' ' ' <"$p/cmdline") # empty for a kernel thread
        [ -n "$cmd" ] && [ "${p#/proc/}" != "$$" ] || continue
        echo "VFSD-GUEST-HANG pid ${p#/proc/} $cmd wchan=$(cat "$p/wchan")"
        sed 's/^/VFSD-GUEST-HANG     /' "$p/stack"
    done 2>/dev/null
    echo "VFSD-GUEST-HANG end"
}

script=
guest=1
watch_s=0
set -- # the script's extra environment, NAME=VALUE words
read -r cmdline </proc/cmdline
set -f # the words are not patterns
for arg in $cmdline; do
    case $arg in
    vfsd.script=*) script=${arg#vfsd.script=} ;;
    vfsd.guest=*) guest=${arg#vfsd.guest=} ;; # which of several guests this is
    vfsd.shutdown_watch=*) watch_s=${arg#vfsd.shutdown_watch=} ;;
    vfsd.env.[A-Za-z_]*=*) set -- "$@" "${arg#vfsd.env.}" ;;
    esac
done
set +f

step "loading modules"
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci fuse virtiofs; do
    if ! insmod "/lib/modules/$m.ko"; then
        echo "VFSD-GUEST-ERROR insmod $m failed"
        finish
    fi
done

# mount_share TAG DIR OPTS: the virtio device may still be probing, so retry for ~5 s.
mount_share() {
    i=0
    while ! mount -t virtiofs -o "$3" "$1" "$2" 2>/dev/null; do
        i=$((i + 1))
        if [ $i -ge 50 ]; then
            echo "VFSD-GUEST-ERROR cannot mount virtiofs tag $1 on $2"
            return 1
        fi
        sleep 0.1
    done
}

mkdir -p /newroot
step "mounting virtiofs tag rootfs"
mount_share rootfs /newroot ro || finish
step "setting up /newroot"
# The host's /proc, /sys, /dev, /run and /tmp are covered by the guest's own.
setup_newroot() {
    mount -t proc proc /newroot/proc || return
    mount -t sysfs sysfs /newroot/sys || return
    mount -t devtmpfs devtmpfs /newroot/dev || return
    # What udev would add: bash's <(...) needs /dev/fd.
    ln -s /proc/self/fd /newroot/dev/fd || return
    ln -s /proc/self/fd/0 /newroot/dev/stdin || return
    ln -s /proc/self/fd/1 /newroot/dev/stdout || return
    ln -s /proc/self/fd/2 /newroot/dev/stderr || return
    mkdir -p /newroot/dev/shm /newroot/dev/pts || return
    mount -t tmpfs -o mode=1777 tmpfs /newroot/dev/shm || return
    mount -t devpts devpts /newroot/dev/pts || return
    mount -t tmpfs -o mode=755 tmpfs /newroot/run || return
    mount -t tmpfs -o mode=1777 tmpfs /newroot/tmp || return
    mkdir -p /newroot/run/test
}
if ! setup_newroot; then
    echo "VFSD-GUEST-ERROR cannot set up /newroot"
    finish
fi
step "mounting virtiofs tag test"
mount_share test /newroot/run/test rw || finish


if [ -z "$script" ] || [ ! -f "/newroot$script" ]; then
    echo "VFSD-GUEST-ERROR no guest script: vfsd.script='$script'"
    finish
fi

read -r uptime _ </proc/uptime
echo "VFSD-GUEST-START uptime=$uptime script=$script"
env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    LANG=C.UTF-8 TERM=dumb VFSD_GUEST="$guest" "$@" chroot /newroot /bin/bash "$script" /run/test
status=$?
finish
