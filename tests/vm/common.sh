# shellcheck shell=bash
# Shared helpers for the VM test scripts; sourced, not run.

# vm_repo_root: top of the vfsd checkout (falls back to ../.. of this file outside git).
vm_repo_root() {
    local here
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    git -C "$here" rev-parse --show-toplevel 2>/dev/null || (cd "$here/../.." && pwd)
}

# vm_cache_dir: where the kernel, modules and initramfs are kept ($VFSD_CACHE overrides).
vm_cache_dir() {
    if [[ -n ${VFSD_CACHE:-} ]]; then
        printf '%s\n' "$VFSD_CACHE"
    else
        printf '%s/.cache/vm\n' "$(vm_repo_root)"
    fi
}

vm_die() {
    printf '%s: %s\n' "${0##*/}" "$*" >&2
    exit 1
}
