#!/bin/bash
# Quick guest script: both shares are virtiofs and a file round-trips. Usage: smoke.sh TESTDIR
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
((failures == 0))
