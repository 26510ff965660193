#!/usr/bin/env bash
# Metrics end to end (docs/metrics.md), against Debian's prometheus-pushgateway and prometheus
# on loopback, with the test frontend playing the VMM and guest (tests/metrics/drive.c does a
# known amount of work). A supervisor pushes its children with their pod labels; the gateway
# stalls, goes away, comes back and refuses a push (400); stopped daemons' groups go, a killed
# one's stays; a standalone daemon pushes through its own pusher; bad options are refused.
# Every text is read by Prometheus's own parser (tests/metrics/check.py). Needs root.
# Usage: tests/metrics/run.sh [BUILD]. Ends with "N passed, M failed".
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${1:-$repo/build}
py=/usr/bin/python3
chk="$py $repo/tests/metrics/check.py"
# shellcheck source=../lib/host-test.sh
source "$repo/tests/lib/host-test.sh"

need_root metrics-setup "the supervisor's children need root"
for b in prometheus-pushgateway prometheus; do
	if ! command -v $b >/dev/null; then
		echo "FAIL metrics-setup $b is not installed (make deps installs it)"
		summary
		exit 1
	fi
done

work=$(mktemp -d -t vfsd-metrics.XXXXXX)
bin=$work/vfsd # our own copy: kill_exe finds every daemon of this test by it
cp "$build/vfsd" "$bin"
drive=${FRONTEND_BUILD:-$build}/frontend/metrics-drive
rt=$work/rt
ctl() { timeout 20 "$bin" ctl --control-socket "$rt/control.sock" "$@"; }
pids=() gw_pid= prom_pid= sup_pid=

cleanup() {
	{
		for p in "${pids[@]}" $gw_pid $prom_pid $sup_pid; do kill -CONT "$p"; kill -KILL "$p"; done
		kill_exe "$bin"
		wait
	} 2>/dev/null
	if ((fail)); then # the logs of a failed run stay for a look
		mkdir -p "$build/test-logs/metrics"
		cp "$work"/*.log "$work"/*.err "$work"/*.json "$build/test-logs/metrics/" 2>/dev/null
		cp "$rt"/sandboxes/*/vfsd.log "$build/test-logs/metrics/" 2>/dev/null
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

free_port() { $py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
gw_port=$(free_port)
gw=http://127.0.0.1:$gw_port

# until SECONDS COMMAND...: retries COMMAND every 0.2 s; its status is the last try's
until_ok() {
	local end=$((SECONDS + $1))
	shift
	while ! "$@" >/dev/null 2>&1; do
		((SECONDS < end)) || return 1
		sleep 0.2
	done
}

start_gateway() {
	# (Debian makes /var/lib/prometheus/pushgateway.data the default: none, so it starts empty)
	prometheus-pushgateway --web.listen-address="127.0.0.1:$gw_port" --persistence.file= >>"$work/gateway.log" 2>&1 &
	gw_pid=$!
	until_ok 20 curl -sf "$gw/-/ready"
}

# drive NAME SOCKET GETATTRS: a frontend on SOCKET doing the known work; "more", "open" and
# "quit" go to its fd ${NAME}_in; wait_done NAME N waits for its Nth "done"
declare -A drv_pid
drive() {
	mkfifo "$work/$1.in"
	"$drive" "$2" "$3" <"$work/$1.in" >"$work/$1.out" 2>"$work/$1.err" &
	drv_pid[$1]=$!
	pids+=($!)
	exec {fd}>"$work/$1.in"
	eval "$1_in=$fd"
}
done_ge() { (($(grep -c '^done$' "$work/$1.out" 2>/dev/null) >= $2)); }
wait_done() { until_ok 30 done_ge "$@"; }
tell() { local v="$1_in"; echo "$2" >&"${!v}"; }

# group SANDBOX OUT [SECONDS]: the gateway's samples of SANDBOX into OUT, retried
group() { until_ok "${3:-15}" $chk group "$gw" "$1" "$2"; }
# reaches SANDBOX SERIES N [SECONDS]: the gateway's SERIES of SANDBOX gets to N
reaches() {
	local end=$((SECONDS + ${4:-20}))
	while :; do
		$chk group "$gw" "$1" "$work/reach.json" >/dev/null 2>&1 &&
			$chk ge "$work/reach.json" "$2" "$3" >/dev/null 2>&1 && return 0
		((SECONDS < end)) || return 1
		sleep 0.2
	done
}
fails_logged() { grep -c "metrics: push to $gw failed" "$work/sup.log"; }

echo "-- the gateway and a supervisor that pushes every second"
start_gateway
check gateway-up $?
mkdir -p "$rt" "$work/share"
"$bin" --runtime-dir "$rt" --metrics-push "$gw/" --metrics-interval 1 \
	--metrics-instance node-1 >"$work/sup.log" 2>&1 &
sup_pid=$!
until_ok 10 test -S "$rt/control.sock"
check supervisor-up $? "$(tail -3 "$work/sup.log")"

# Pod labels as a CRI runtime sends them, with what a path or the text format must escape.
name='web "frontend"/1'
ns=$'team\\a\nb'
uid='4c6e-ü/ä'
out=$(ctl spawn mx1 --shared-dir "$work/share" --socket-path "$work/mx1.sock" \
	--label "cri_name=$name" --label "cri_namespace=$ns" --label "cri_uid=$uid" 2>&1)
check spawn-with-labels $? "$out"
drive a "$work/mx1.sock" 200
wait_done a 1
check drive-known-work $? "$(cat "$work/a.err")"

echo "-- what the gateway holds"
reaches mx1 'vfsd_fuse_requests_total{opcode=GETATTR}' 200
check gateway-getattr-count $? "$(cat "$work/reach.json" 2>/dev/null | head -c 300)"
group mx1 "$work/g1.json"
for s in 'vfsd_fuse_requests_total{opcode=LOOKUP} 1' 'vfsd_fuse_requests_total{opcode=CREATE} 1' \
	'vfsd_fuse_errors_total{errno=ENOENT,opcode=LOOKUP} 1' \
	'vfsd_fuse_request_duration_seconds_count{opcode=GETATTR} 200' \
	'vfsd_fuse_request_duration_seconds_bucket{le=+Inf,opcode=GETATTR} 200' \
	'vfsd_read_bytes_total{} 65536' 'vfsd_write_bytes_total{} 65536' 'vfsd_inodes{} 2' \
	'vfsd_vhost_queue_notifications_total{queue=1} 1' 'vfsd_guest_fd_budget_remaining{} 1' \
	'vfsd_process_threads{} 2' 'vfsd_process_resident_memory_bytes{} 1000000'; do
	out=$($chk ge "$work/g1.json" ${s% *} "${s##* }")
	check "gateway-${s%%\{*}-${s##* }" $? "$out"
done
# The ring's starts wake its thread too: only the frontend's own kicks are counted.
kicks=$(sed -n 's/^kicks //p' "$work/a.out" | head -1)
out=$($chk eq "$work/g1.json" 'vfsd_vhost_queue_notifications_total{queue=1}' "${kicks:-none}")
check gateway-notifications-are-guest-kicks $? "$out (the frontend kicked ${kicks:-?} times)"
out=$($chk labels "$work/g1.json" job=vfsd instance=node-1 sandbox=mx1 "cri_name=$name" \
	"cri_namespace=$ns" "cri_uid=$uid")
check gateway-labels-exact $? "$out"
curl -sf "$gw/metrics" >"$work/gw.txt"
out=$($chk families "$work/gw.txt")
check gateway-text-parses $? "$out"

echo "-- vfsd ctl metrics"
ctl metrics mx1 >"$work/ctl1.txt" 2>&1
check ctl-metrics-one $? "$(head -c 300 "$work/ctl1.txt")"
out=$($chk families "$work/ctl1.txt")
check ctl-metrics-parses $? "$out"
grep -qF 'vfsd_fuse_requests_total{sandbox="mx1",cri_name="web \"frontend\"/1",cri_namespace="team\\a\nb"' "$work/ctl1.txt"
check ctl-metrics-escaped-labels $? "$(grep -m1 requests_total "$work/ctl1.txt")"
expect_output ctl-metrics-unknown-sandbox 1 "no sandbox 'nope'" "$bin" ctl --control-socket "$rt/control.sock" metrics nope

echo "-- Prometheus scrapes the gateway"
prom_port=$(free_port)
cat >"$work/prom.yml" <<EOF
global: { scrape_interval: 1s, evaluation_interval: 1s }
scrape_configs:
  - job_name: pushgateway
    honor_labels: true
    static_configs: [ { targets: ["127.0.0.1:$gw_port"] } ]
EOF
prometheus --config.file="$work/prom.yml" --storage.tsdb.path="$work/tsdb" \
	--web.listen-address="127.0.0.1:$prom_port" >"$work/prom.log" 2>&1 &
prom_pid=$!
out=$($chk prometheus "http://127.0.0.1:$prom_port" mx1)
check prometheus-query-returns-series $? "$out $(tail -2 "$work/prom.log")"
kill "$prom_pid" 2>/dev/null

echo "-- a gateway that stalls: the supervisor still answers and spawns"
before=$(fails_logged)
kill -STOP "$gw_pid"
sleep 2.5
t0=$(date +%s%N)
ctl ping >/dev/null
check ping-while-gateway-stalls $?
out=$(ctl spawn mx2 --shared-dir "$work/share" --socket-path "$work/mx2.sock" 2>&1)
check spawn-while-gateway-stalls $? "$out"
t1=$(date +%s%N)
((t1 - t0 < 3000000000))
check control-socket-not-held-by-pusher $? "ping and spawn took $(((t1 - t0) / 1000000)) ms"
tell a more
wait_done a 2
check serving-while-gateway-stalls $?
sleep 2
kill -CONT "$gw_pid"
((($(fails_logged) - before) == 1))
check stall-logged-once $? "$(($(fails_logged) - before)) lines"
grep -q "failed: Timeout was reached" "$work/sup.log"
check stall-reason-timeout $? "$(grep 'metrics:' "$work/sup.log" | tail -2)"
reaches mx1 'vfsd_fuse_requests_total{opcode=GETATTR}' 400
check stall-recovers-with-cumulative-values $?
until_ok 10 grep -q "answers again" "$work/sup.log"
check recovery-logged $?

echo "-- the gateway goes away and comes back empty"
group mx1 "$work/s1.json"
before=$(fails_logged)
{ kill -KILL "$gw_pid" && wait "$gw_pid"; } 2>/dev/null
tell a more
wait_done a 3
sleep 3
((($(fails_logged) - before) == 1))
check outage-logged-once $? "$(($(fails_logged) - before)) lines"
start_gateway
check gateway-restarted $?
reaches mx1 'vfsd_fuse_requests_total{opcode=GETATTR}' 600 70
check restart-values-cumulative $?
group mx1 "$work/s2.json"
out=$($chk monotonic "$work/s1.json" "$work/s2.json")
check restart-values-monotonic $? "$out"

echo "-- a gateway that refuses the push (400)"
before=$(fails_logged)
# A group of another job whose vfsd_inodes is a counter: the gateway then refuses vfsd's gauge.
# It must come first, so the supervisor waits while the gateway starts again empty.
kill -STOP "$sup_pid"
{ kill -KILL "$gw_pid" && wait "$gw_pid"; } 2>/dev/null
start_gateway
printf '# TYPE vfsd_inodes counter\nvfsd_inodes 1\n' |
	curl -sf --data-binary @- "$gw/metrics/job/clash" >/dev/null
check clash-pushed $?
kill -CONT "$sup_pid"
until_ok 10 grep -q "refused the group of sandbox mx1: HTTP 400: .*vfsd_inodes" "$work/sup.log"
check http-400-logged-with-reason $? "$(grep 'metrics:' "$work/sup.log" | tail -1)"
tell a open
wait_done a 4
sleep 3
curl -sf -X DELETE "$gw/metrics/job/clash"
reaches mx1 'vfsd_open_handles{}' 1 70
check after-400-next-push-carries-values $?
(($(grep -c "refused the group of sandbox mx1" "$work/sup.log") == 1))
check http-400-logged-once $? "$(grep -c "refused the group of sandbox mx1" "$work/sup.log") lines"
until_ok 10 grep -q "takes the group of sandbox mx1 again" "$work/sup.log"
check http-400-recovery-logged $?
(($(fails_logged) == before))
check http-400-is-not-an-outage $? "$(grep 'metrics:' "$work/sup.log" | tail -2)"

echo "-- stopped daemons' groups go; a killed one's stays"
group mx2 "$work/m2.json"
check never-connected-daemon-pushed $?
ctl stop mx2 >/dev/null
until_ok 10 $chk absent "$gw" mx2
check stopped-group-deleted $?
ctl stop mx1 >/dev/null
until_ok 10 $chk absent "$gw" mx1
check stopped-serving-group-deleted $?
out=$(ctl spawn mx3 --shared-dir "$work/share" --socket-path "$work/mx3.sock" 2>&1)
check spawn-mx3 $? "$out"
drive b "$work/mx3.sock" 50
wait_done b 1
reaches mx3 'vfsd_fuse_requests_total{opcode=GETATTR}' 50
check mx3-pushed $?
pid=$(ctl --json status mx3 | $py -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
kill -KILL "$pid"
until_ok 10 sh -c "\"$bin\" ctl --control-socket \"$rt/control.sock\" status mx3 | grep -q exited"
sleep 2
group mx3 "$work/m3.json" 3
check killed-group-stays $?
# A child in a namespace sandbox (its args may ask for one): the process gauges are the
# serving child's, not those of the parent that only waits (one thread).
out=$(ctl spawn mx4 --shared-dir "$work/share" --socket-path "$work/mx4.sock" -- --sandbox=namespace 2>&1)
check spawn-namespace-child $? "$out"
drive h "$work/mx4.sock" 10
wait_done h 1
reaches mx4 'vfsd_process_threads{}' 2
check namespace-child-gauges-of-serving-process $? "$(grep threads "$work/reach.json" 2>/dev/null)"
out=$(ctl spawn mxbad --shared-dir "$work/share" --socket-path "$work/mxbad.sock" -- --metrics-push=http://127.0.0.1:1 2>&1)
[[ $? == 1 && $out == *"args may not set --metrics-"* ]]
check spawn-refuses-metrics-push $? "$out"
out=$(ctl spawn mxbad --shared-dir "$work/share" --socket-path "$work/mxbad.sock" -- --metrics-fd=0 2>&1)
[[ $? == 1 && $out == *"args may not set --metrics-"* ]]
check spawn-refuses-metrics-fd $? "$out"
kill -TERM "$sup_pid"
wait "$sup_pid" 2>/dev/null
sup_pid=

echo "-- a standalone daemon pushes through its own pusher"
standalone() { # NAME SANDBOX-MODE EXTRA...
	local n=$1 mode=$2
	shift 2
	rm -f "$work/$n.sock"
	"$bin" --socket-path "$work/$n.sock" --shared-dir "$work/share" --sandbox "$mode" \
		--metrics-push "$gw" --metrics-interval 1 --metrics-sandbox "$n" "$@" \
		>"$work/$n.log" 2>&1 &
	eval "${n}_pid=$!"
	pids+=($!)
	until_ok 10 test -S "$work/$n.sock"
}
standalone sa1 namespace
drive c "$work/sa1.sock" 100
wait_done c 1
reaches sa1 'vfsd_fuse_requests_total{opcode=GETATTR}' 100
check standalone-namespace-pushes $?
group sa1 "$work/sa1.json"
out=$($chk ge "$work/sa1.json" 'vfsd_process_threads{}' 2)
check standalone-namespace-process-gauges $? "$out"
tell c quit
wait "${drv_pid[c]}"
until_ok 10 $chk absent "$gw" sa1
check standalone-exit-0-deletes-group $?
standalone sa2 chroot
drive d "$work/sa2.sock" 10
wait_done d 1
reaches sa2 'vfsd_fuse_requests_total{opcode=GETATTR}' 10
check standalone-chroot-pushes $?
# shellcheck disable=SC2154 # set by standalone
kill -TERM "$sa2_pid"
until_ok 10 $chk absent "$gw" sa2
check standalone-sigterm-deletes-group $?
# killed_keeps_group CHECK NAME MODE DRIVER: a standalone daemon SIGKILLed after known work
# keeps its group with its last numbers.
killed_keeps_group() {
	local pidvar="${2}_pid"
	standalone "$2" "$3"
	drive "$4" "$work/$2.sock" 10
	wait_done "$4" 1
	reaches "$2" 'vfsd_fuse_requests_total{opcode=GETATTR}' 10
	{ kill -KILL "${!pidvar}" && wait "${!pidvar}"; } 2>/dev/null
	sleep 3
	group "$2" "$work/$2.json" 3
	check "$1" $?
}
killed_keeps_group standalone-killed-group-stays sa3 chroot e
# In a namespace sandbox the runtime kills the parent; the serving child then gets SIGTERM,
# which must not pass for a clean stop.
killed_keeps_group standalone-namespace-killed-group-stays sa6 namespace i
# The first push goes out at once, whatever the interval.
standalone sa7 chroot --metrics-interval 3600
group sa7 "$work/sa7.json" 10
check first-push-at-once $?
slow_port=$(free_port)
$py -c "
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $slow_port)); s.listen(16); conns = []
while True: conns.append(s.accept()[0])" &
pids+=($!)
until_ok 10 bash -c "echo >/dev/tcp/127.0.0.1/$slow_port"
rm -f "$work/sa4.sock"
"$bin" --socket-path "$work/sa4.sock" --shared-dir "$work/share" --sandbox chroot \
	--metrics-push "http://127.0.0.1:$slow_port" --metrics-interval 1 >"$work/sa4.log" 2>&1 &
pids+=($!)
until_ok 10 test -S "$work/sa4.sock"
drive f "$work/sa4.sock" 2000
wait_done f 1
check standalone-serves-while-gateway-hangs $? "$(cat "$work/f.err")"
until_ok 10 grep -q "metrics: push to http://127.0.0.1:$slow_port failed: Timeout was reached" "$work/sa4.log"
check standalone-hung-gateway-logged $? "$(tail -2 "$work/sa4.log")"

# A gateway that is not there yet when the daemon starts: its first pushes fail (logged once),
# and the numbers arrive once it listens.
late_port=$(free_port)
rm -f "$work/sa5.sock"
"$bin" --socket-path "$work/sa5.sock" --shared-dir "$work/share" --sandbox chroot \
	--metrics-push "http://127.0.0.1:$late_port" --metrics-interval 1 --metrics-sandbox sa5 \
	>"$work/sa5.log" 2>&1 &
pids+=($!)
until_ok 10 test -S "$work/sa5.sock"
drive g "$work/sa5.sock" 30
wait_done g 1
until_ok 10 grep -q "metrics: push to http://127.0.0.1:$late_port failed: Couldn't connect" "$work/sa5.log"
check gateway-down-at-start-logged $? "$(tail -2 "$work/sa5.log")"
prometheus-pushgateway --web.listen-address="127.0.0.1:$late_port" --persistence.file= \
	>>"$work/gateway.log" 2>&1 &
pids+=($!)
gw_saved=$gw gw=http://127.0.0.1:$late_port
reaches sa5 'vfsd_fuse_requests_total{opcode=GETATTR}' 30 30
check gateway-up-later-gets-values $?
(($(grep -c "metrics: push to http://127.0.0.1:$late_port failed" "$work/sa5.log") == 1))
check gateway-down-at-start-logged-once $?
gw=$gw_saved

echo "-- options"
expect_output bad-url-scheme 1 "not an http or https URL" "$bin" --socket-path "$work/x.sock" \
	--shared-dir "$work/share" --metrics-push ftp://127.0.0.1/
expect_output bad-url 1 "is not a URL" "$bin" --socket-path "$work/x.sock" \
	--shared-dir "$work/share" --metrics-push 'http://exa mple/'
expect_output url-with-query 1 "no user, query or fragment" "$bin" --socket-path "$work/x.sock" \
	--shared-dir "$work/share" --metrics-push 'http://127.0.0.1:9091/?a=b'
expect_output supervisor-bad-url 1 "is not a URL" "$bin" --runtime-dir "$work/rt2" \
	--metrics-push 'http://[::1'
expect_output interval-needs-push 2 "'--metrics-interval' requires '--metrics-push <URL>'" \
	"$bin" --socket-path "$work/x.sock" --shared-dir "$work/share" --metrics-interval 5
expect_output interval-zero 2 "invalid value '0' for '--metrics-interval" "$bin" \
	--socket-path "$work/x.sock" --shared-dir "$work/share" --metrics-push "$gw" --metrics-interval 0
expect_output sandbox-label-needs-push 2 "'--metrics-sandbox' requires" "$bin" \
	--socket-path "$work/x.sock" --shared-dir "$work/share" --metrics-sandbox x
expect_output metrics-sandbox-not-for-supervisor 2 "cannot be used with '--control-socket'" \
	"$bin" --runtime-dir "$work/rt2" --metrics-push "$gw" --metrics-sandbox x
expect_output metrics-fd-not-a-region 1 "metrics fd 0 is not a region" "$bin" \
	--socket-path "$work/x.sock" --shared-dir "$work/share" --metrics-fd 0

summary
