#!/usr/bin/env bash
# deploy/k8s offline: `kubectl kustomize` renders it, every object is checked against the
# Kubernetes API's schema (kubernetes-models from npm: types, formats, required fields) and
# decoded strictly (python3-kubernetes' models: no unknown field at any depth), the DaemonSet
# has what docs/deploy.md promises (capabilities exactly the supervisor's, lib/sec/caps.c),
# and broken copies are refused, so the validators are known to be awake.
# Usage: tests/k8s/run.sh. Ends with "N passed, M failed".
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../lib/host-test.sh
source "$repo/tests/lib/host-test.sh"
py=/usr/bin/python3
cache=${VFSD_CACHE:-$HOME/.cache/vfsd}/k8s-validate
models_version=5.1.0
work=$(mktemp -d -t vfsd-k8s.XXXXXX)
trap 'rm -rf "$work"' EXIT

# kustomize: kubectl's own (v5 here), else the kustomize CLI from the Go module proxy.
render() {
	if command -v kubectl >/dev/null && kubectl kustomize "$1" 2>/dev/null; then
		return 0
	fi
	local k=${VFSD_CACHE:-$HOME/.cache/vfsd}/go/bin/kustomize
	if [[ ! -x $k ]]; then
		GOBIN=$(dirname "$k") GOFLAGS=-mod=mod go install sigs.k8s.io/kustomize/kustomize/v5@v5.5.0 >&2 || return 1
	fi
	"$k" build "$1"
}
to_json() { $py -c 'import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d]))'; }

# The schema validator, once, outside the repository.
if [[ ! -f $cache/node_modules/kubernetes-models/package.json ]] ||
	[[ $(jq -r .version "$cache/node_modules/kubernetes-models/package.json") != "$models_version" ]]; then
	mkdir -p "$cache"
	[[ -f $cache/package.json ]] || echo '{"name": "vfsd-k8s-validate", "private": true}' >"$cache/package.json"
	out=$(cd "$cache" && timeout 300 npm install --no-audit --no-fund "kubernetes-models@$models_version" 2>&1)
	check validator-installed $? "npm could not install kubernetes-models@$models_version (is the npm registry out of reach?): $(tail -n 2 <<<"$out")"
fi
if ! $py -c 'import kubernetes.client' 2>/dev/null; then
	check strict-decoder-installed 1 "python3-kubernetes is missing (make deps installs it)"
fi

render "$repo/deploy/k8s" >"$work/all.yaml" 2>"$work/render.err"
check kustomize-renders $? "$(tail -n 3 "$work/render.err")"
to_json <"$work/all.yaml" >"$work/all.json"
to_json <"$repo/deploy/k8s/examples/runtimeclass-kata-vfsd.yaml" >"$work/examples.json"
jq -e 'map(.kind) | sort == ["ConfigMap", "DaemonSet", "Namespace", "ServiceAccount"]' "$work/all.json" >/dev/null
check rendered-objects $? "$(jq -c 'map(.kind)' "$work/all.json")"
jq -e 'map(select(.kind != "Namespace")) | all(.metadata.namespace == "vfsd-system")' "$work/all.json" >/dev/null
check objects-in-namespace $?

# validated KIND/NAME VALIDATOR-OUTPUT: one check per object
validated() {
	local line
	while read -r line; do
		[[ $line == PASS* ]]
		check "$1:${line#* }" $? "$line"
	done <<<"$2"
}
for f in all examples; do
	validated schema "$(node "$repo/tests/k8s/validate.js" "$cache/node_modules" <"$work/$f.json" 2>&1)"
	validated strict "$($py "$repo/tests/k8s/strict.py" <"$work/$f.json" 2>&1)"
done

# What docs/deploy.md promises of the DaemonSet.
ds=$(jq '.[] | select(.kind == "DaemonSet")' "$work/all.json")
pod=$(jq '.spec.template.spec' <<<"$ds")
sup=$(jq '.containers[] | select(.name == "supervisor")' <<<"$pod")
jq -e '.hostPID == true and .priorityClassName == "system-node-critical"' <<<"$pod" >/dev/null
check daemonset-hostpid-node-critical $?
jq -e '.tolerations == [{"operator": "Exists"}]' <<<"$pod" >/dev/null
check daemonset-tolerates-every-taint $?
jq -e '.spec.updateStrategy == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}' <<<"$ds" >/dev/null
check daemonset-rolling-update-one $?
for p in livenessProbe readinessProbe; do
	jq -e --arg p $p '.[$p].exec.command == ["/usr/bin/vfsd", "ctl", "ping"]' <<<"$sup" >/dev/null
	check "daemonset-$p-is-vfsd-ctl-ping" $?
done
jq -e '.resources.requests.cpu and .resources.requests.memory and .resources.limits.memory' <<<"$sup" >/dev/null
check daemonset-requests-and-limits $?
# The capabilities are the supervisor's own list, no more.
want=$(sed -n '/^static const int supervisor_caps\[\]/,/^};/p' "$repo/lib/sec/caps.c" |
	grep -o 'CAP_[A-Z_]*' | sed 's/^CAP_//' | sort | tr '\n' ' ')
got=$(jq -r '.securityContext.capabilities.add[]' <<<"$sup" | sort | tr '\n' ' ')
[[ -n $want && $want == "$got" ]] && jq -e '.securityContext.capabilities.drop == ["ALL"]' <<<"$sup" >/dev/null
check daemonset-capabilities-are-the-supervisors $? "want: $want; got: $got"
jq -e '[.volumeMounts[] | select(.mountPath == "/run/vfsd")] | length == 1' <<<"$sup" >/dev/null
check daemonset-mounts-runtime-dir $?
jq -e '[.volumeMounts[] | select(.mountPropagation == "HostToContainer")] | length >= 2' <<<"$sup" >/dev/null
check daemonset-host-to-container-propagation $?
jq -e '.initContainers[0].volumeMounts | map(.mountPath) | index("/host/hooks.d") != null' <<<"$pod" >/dev/null
check daemonset-init-installs-hook $?

# Broken copies must be refused: each validator is awake.
jq '.[] | select(.kind == "DaemonSet")' "$work/all.json" >"$work/ds.json"
jq '[.spec.template.spec.hostPID = "yes"]' "$work/ds.json" >"$work/bad-type.json"
jq '[del(.spec.selector)]' "$work/ds.json" >"$work/bad-required.json"
jq '[.spec.template.spec.hostPIDs = true]' "$work/ds.json" >"$work/bad-field.json"
node "$repo/tests/k8s/validate.js" "$cache/node_modules" <"$work/bad-type.json" | grep -q '^FAIL .*hostPID must be boolean'
check schema-refuses-wrong-type $?
node "$repo/tests/k8s/validate.js" "$cache/node_modules" <"$work/bad-required.json" | grep -q '^FAIL .*required property selector'
check schema-refuses-missing-required $?
$py "$repo/tests/k8s/strict.py" <"$work/bad-field.json" | grep -q '^FAIL .*hostPIDs: no such field'
check strict-refuses-unknown-field $?

summary
