#!/usr/bin/env bash
# Installs the Rust virtiofsd (the daemon most users run) into a cache outside the repository,
# once, from Cargo's registry, and prints its path. Exits 1 with one line saying why when it
# cannot (no cargo, registry out of reach): callers then skip what needs it and say so.
#   VFSD_CACHE (default ~/.cache/vfsd) holds rust-virtiofsd/bin/virtiofsd.
set -uo pipefail

version=1.14.0
root=${VFSD_CACHE:-$HOME/.cache/vfsd}/rust-virtiofsd
bin=$root/bin/virtiofsd

if [[ -x $bin ]] && "$bin" --version 2>/dev/null | grep -q "$version"; then
	echo "$bin"
	exit 0
fi
cargo=$(command -v cargo || echo "$HOME/.cargo/bin/cargo")
if [[ ! -x $cargo ]]; then
	echo "rust-virtiofsd: cargo is not installed" >&2
	exit 1
fi
mkdir -p "$root"
log=$root/install.log
# The build needs libseccomp and libcap-ng's development files (install-deps.sh has them).
if ! "$cargo" install virtiofsd --version "$version" --locked --root "$root" >"$log" 2>&1; then
	echo "rust-virtiofsd: cargo install virtiofsd $version failed (registry out of reach?); see $log" >&2
	exit 1
fi
echo "$bin"
