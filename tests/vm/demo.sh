#!/usr/bin/env bash
# `make demo`: boots a small VM whose root filesystem (the host's /, read-only) and a shared
# folder are both served by vfsd, shows the guest using them, and shows the host the result.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
share_note="$repo/build/demo-share"

out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$here/run.sh" --daemon "$repo/build/vfsd" --script guest/demo.sh --verbose --keep |
	tee "$out" | grep -v -E '^\[ *[0-9.]+s\] \| (VFSD-|\[ |$)|SeaBIOS|Booting from|\x1b\[\?7l'
work=$(sed -n 's/^work directory kept: //p' "$out" | tail -n 1)
share=$(find "$work" -maxdepth 1 -name 'share.*' -type d | head -n 1)
if [[ -n $share && -f $share/hello-from-guest.txt ]]; then
	rm -rf "$share_note"
	mkdir -p "$share_note"
	cp -a "$share/hello-from-guest.txt" "$share/made-in-guest" "$share_note/"
	printf '\n== back on the host, the guest wrote (%s):\n' "$share_note"
	cat "$share_note/hello-from-guest.txt"
	sha256sum "$share_note/made-in-guest/a/b/numbers"
fi
rm -rf "$work"
tail -n 1 "$out" | grep -q ', 0 failed'
