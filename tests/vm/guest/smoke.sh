#!/bin/bash
# Quick guest script: both shares are virtiofs and a file round-trips. Usage: smoke.sh TESTDIR
# With VFSD_REQUEST_QUEUES=N (boot.sh --num-request-queues N), each virtio-fs device must
# also have N request queues set up by the guest (their interrupts in /proc/interrupts).
set -uo pipefail
dir=${1:?usage: smoke.sh TESTDIR}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # report

fs_type() { stat -f -c %t "$1"; } # 65735546 = FUSE_SUPER_MAGIC

[[ $(fs_type /) == 65735546 ]]
report root-is-virtiofs $? "/ is $(fs_type /)"
[[ $(fs_type "$dir") == 65735546 ]]
report test-is-virtiofs $? "$dir is $(fs_type "$dir")"
echo smoke >"$dir/smoke" && [[ $(cat "$dir/smoke") == smoke ]] && rm "$dir/smoke"
report write-read $?
if [[ -n ${VFSD_REQUEST_QUEUES:-} ]]; then
    # virtio_fs names its rings hiprio and requests.0 .. requests.N-1; QEMU gives each an
    # MSI-X vector of its own, listed as virtioK-requests.I.
    devs=0 bad=""
    for dev in /sys/bus/virtio/drivers/virtiofs/virtio*; do
        [[ -e $dev ]] || continue
        name=${dev##*/}
        devs=$((devs + 1))
        n=$(grep -c " $name-requests\." /proc/interrupts || true)
        ((n == VFSD_REQUEST_QUEUES)) || bad+=" $name:$n"
    done
    ((devs == 2)) && [[ -z $bad ]]
    report request-queues $? "$devs devices, request queues per device:${bad:- as expected}"
    # Traffic on both shares with every ring set up.
    ls -R /usr/include/linux >/dev/null && seq 1 2000 >"$dir/mq" &&
        [[ $(tail -n 1 "$dir/mq") == 2000 ]] && rm "$dir/mq"
    report request-queues-traffic $?
fi
((failures == 0))
