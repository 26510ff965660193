#!/usr/bin/env bash
# The daemon tests/vm/run.sh starts for tests/supervisor/run.sh. Called as a vfsd would be,
#   wrapper.sh --socket-path=SOCK -o source=SRC [DAEMON-OPTIONS...]
# it has the supervisor start the real daemon, as a rootless engine would, as the test user:
#   vfsd ctl spawn NAME --shared-dir SRC (--socket-path SOCK | --fd 3) --userns NS -- OPTIONS
# then lives exactly as long as that daemon (tests/vm/run.sh takes its end for the daemon's),
# exits with the daemon's status, and stops it (vfsd ctl stop) on SIGTERM.
# Settings, from the environment (tests/supervisor/run.sh writes a script that sets them):
#   WRAP_VFSD, WRAP_CONTROL, WRAP_USER, WRAP_USERNS  vfsd, the control socket, the user, the
#                  user namespace (/proc/PID/ns/user) the daemon joins
#   WRAP_NAME      the sandbox is WRAP_NAME-<SOCK's name without .sock>, e.g. path-test
#   WRAP_MODE      path: the daemon creates SOCK; fd: this script listens on SOCK itself and
#                  passes the socket (as fd 3), as Kata's runtime hands virtiofsd --fd=3
#   WRAP_SPAWN     more spawn options, e.g. "--cgroup DIR" (optional)
#   WRAP_TEST_ARGS more daemon options for the test share's daemon only (optional)
#   WRAP_RECORD    a directory for NAME.pid, .cgroup, .userns, .status (/proc/PID/...) and
#                  .json (vfsd ctl --json status): the daemon right after the spawn (optional)
set -uo pipefail

sock="" src="" opts=()
args=("$@")
while (($#)); do
	case $1 in
	--socket-path=*) sock=${1#*=}; shift ;;
	--socket-path) sock=${2:-}; shift 2 ;;
	--shared-dir=*) src=${1#*=}; shift ;;
	--shared-dir) src=${2:-}; shift 2 ;;
	-o)
		if [[ ${2:-} == source=* ]]; then src=${2#source=}; else opts+=("$1" "${2:-}"); fi
		shift 2
		;;
	*) opts+=("$1"); shift ;;
	esac
done
if [[ -z $sock || -z $src ]]; then
	echo "wrapper: no --socket-path or -o source= in: ${args[*]}" >&2
	exit 2
fi

# fd mode: listen on SOCK, then run this script again with the socket as fd 3.
if [[ $WRAP_MODE == fd && -z ${WRAP_LISTENING:-} ]]; then
	WRAP_LISTENING=1 exec /usr/bin/python3 -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(16)
if s.fileno() != 3:
    os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)  # dup2 onto itself would leave it close-on-exec
os.execv(sys.argv[2], sys.argv[2:])' "$sock" "$0" "${args[@]}"
fi

name=$WRAP_NAME-$(basename "$sock" .sock)
extra=()
[[ $src != / ]] && read -r -a extra <<<"${WRAP_TEST_ARGS:-}"
read -r -a spawn_opts <<<"${WRAP_SPAWN:-}"
if [[ $WRAP_MODE == fd ]]; then
	where=(--fd 3)
else
	where=(--socket-path "$sock")
fi
ctl() { runuser -u "$WRAP_USER" -- "$WRAP_VFSD" ctl --control-socket "$WRAP_CONTROL" "$@"; }

out=$(ctl spawn "$name" --shared-dir "$src" "${where[@]}" --userns "$WRAP_USERNS" \
	"${spawn_opts[@]}" -- "${opts[@]}" "${extra[@]}" 2>&1)
rc=$?
printf 'wrapper: %s\n' "$out"
((rc == 0)) || exit 1
exec 3>&- # the daemon has the socket now
pid=$(sed -n 's/^sandbox [^:]*: daemon \([0-9]*\) serving on .*/\1/p' <<<"$out")
[[ -n $pid ]] || exit 1

# field 22 of /proc/PID/stat: with the pid, it names one process
start_ticks() {
	local st
	st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	st=${st##*) }
	read -r -a f <<<"$st"
	[[ ${f[0]} != Z ]] && echo "${f[19]}"
}
ticks=$(start_ticks "$pid")
# Before the records: whoever waits for them may send TERM as soon as they are there.
stop() {
	trap - TERM
	ctl stop "$name"
	exit $?
}
trap stop TERM
if [[ -n ${WRAP_RECORD:-} ]]; then
	echo "$pid" >"$WRAP_RECORD/$name.pid"
	cat "/proc/$pid/cgroup" >"$WRAP_RECORD/$name.cgroup" 2>&1
	readlink "/proc/$pid/ns/user" >"$WRAP_RECORD/$name.userns" 2>&1
	grep -E '^(Uid|Gid):' "/proc/$pid/status" >"$WRAP_RECORD/$name.status" 2>&1
	ctl --json status "$name" >"$WRAP_RECORD/$name.json" 2>&1
fi

while [[ -n $ticks && $(start_ticks "$pid") == "$ticks" ]]; do sleep 0.2; done

# Its status, once the supervisor has seen the end; then the record goes (a stop of an exited
# daemon forgets it). A re-adopted daemon's status is unknown (it was not the supervisor's
# child): that counts as 0.
for _ in $(seq 50); do
	st=$(ctl --json status "$name" 2>&1)
	[[ $(jq -r .state <<<"$st" 2>/dev/null) == exited ]] && break
	sleep 0.1
done
printf 'wrapper: %s\n' "$st"
if [[ $(jq -r .state <<<"$st" 2>/dev/null) != exited ]]; then
	echo "wrapper: daemon $pid ended, but the supervisor does not say so"
	exit 1
fi
ctl stop "$name" >/dev/null
sig=$(jq -r '.signal // empty' <<<"$st" 2>/dev/null)
status=$(jq -r '.exit_status // 0' <<<"$st" 2>/dev/null)
if [[ -n $sig ]]; then exit $((128 + sig)); fi
exit "${status:-1}"
