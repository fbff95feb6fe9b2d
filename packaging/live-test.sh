#!/bin/bash
# Runs INSIDE the booted test container (scripts/test-package): installs the
# package and drives the installed daemons end to end. Every check prints
# "ok - ..." or fails the script with "FAIL - ...".
set -euo pipefail
DEB=${1:?usage: live-test.sh PATH.deb}
U=http://127.0.0.1:8470
ok() { echo "ok - $*"; }
fail() {
  echo "FAIL - $*" >&2
  journalctl -u monitoreo-privhelper -u monitoreo-gateway --no-pager 2>/dev/null | tail -n 30 >&2 || true
  exit 1
}
# code METHOD PATH [BODY] -> prints the HTTP status, body in /tmp/body
code() {
  local m=$1 p=$2 b=${3:-}
  if [[ -n $b ]]; then
    curl -s -o /tmp/body -w '%{http_code}' -X "$m" -H "Authorization: Bearer $KEY" -d "$b" "$U$p"
  else
    curl -s -o /tmp/body -w '%{http_code}' -X "$m" -H "Authorization: Bearer $KEY" "$U$p"
  fi
}
expect() { local want=$1; shift; local got; got=$(code "$@"); [[ $got == "$want" ]] || { cat /tmp/body >&2; fail "$* -> $got, want $want"; }; ok "$* -> $want"; }
json() { python3 -c "import json,sys; d=json.load(open('/tmp/body')); print($1)"; }
wait_active() { for _ in $(seq 50); do systemctl is-active --quiet "$1" && return 0; sleep 0.2; done; systemctl status "$1" --no-pager >&2 || true; fail "$1 not active"; }
wait_http() { for _ in $(seq 50); do curl -sf -o /dev/null "$U/healthz" && return 0; sleep 0.2; done; fail "gateway not answering"; }

export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q "$DEB" >/tmp/apt.log 2>&1 || { cat /tmp/apt.log >&2; fail "apt install"; }
ok "package installed"
wait_active monitoreo-privhelper.socket
wait_active monitoreo-reader.socket
wait_active monitoreo-gateway.service
wait_http
ok "both units active"

KEY=$(setpriv --reuid=monitoreo --regid=monitoreo --clear-groups \
  monitoreo-gateway keys add admin --scopes read,signal,renice,exec 2>/dev/null | head -n1)
[[ $KEY == mon_* ]] || fail "keys add printed no token"
ok "key created"

curl -sf -H "Authorization: Bearer $KEY" "$U/healthz" >/tmp/body || fail "healthz"
json "d['helper']['containment'], d['helper']['isolation'], d['helper']['limits']"
[[ $(json "d['helper']['isolation']") == per_job_uid ]] || fail "jobs not isolated: $(cat /tmp/body)"
expect 200 GET /api/openapi.json
expect 200 GET /api/ps
expect 200 GET /api/ps/1
[[ $(json "d['process']['pid']") == 1 ]] || fail "GET /api/ps/1 is not pid 1"
# Root's private fields come from the reader (socket-activated, its own
# user, two capabilities), not from a privileged gateway.
expect 200 GET "/api/ps/1?fields=exe,cwd,num_fds,io_counters,memory_maps"
[[ $(json "d['process']['exe'] is not None and d['process']['num_fds'] is not None and 'withheld' not in d['process']") == True ]] \
  || fail "pid 1's private fields did not come from the reader: $(cat /tmp/body)"
wait_active monitoreo-reader.service
rpid=$(systemctl show -P MainPID monitoreo-reader.service)
[[ $(awk '/^Uid:/ {print $2}' /proc/$rpid/status) == $(id -u monitoreo-reader) ]] || fail "reader not its own user"
[[ $(awk '/^CapEff:/ {print $2}' /proc/$rpid/status) == 0000000000080004 ]] || fail "reader holds other capabilities"
[[ $(awk '/^CapEff:/ {print $2}' /proc/$(systemctl show -P MainPID monitoreo-gateway.service)/status) == 0000000000000000 ]] \
  || fail "the gateway holds a capability"
ok "private fields through the reader; it holds two capabilities, the gateway none"
expect 200 GET /api/users
expect 200 GET /api/users/root/ps

# The key's own job ("@jobs") may be reniced and signalled; a process of a
# job uid that no job of the key runs, and a root process, may not.
expect 202 POST /api/jobs '{"cmd": "exec sleep 1000", "timeout_s": 60}'
victim=$(json "d['job']['pid']")
for _ in $(seq 50); do [[ $(cat /proc/$victim/comm 2>/dev/null) == sleep ]] && break; sleep 0.1; done
expect 200 PATCH /api/ps "{\"pid\": $victim, \"priority\": 10}"
[[ $(awk '{print $19}' /proc/$victim/stat) == 10 ]] || fail "renice did not take"
expect 200 DELETE /api/ps "{\"pid\": \"$victim\"}"
for _ in $(seq 50); do [[ -e /proc/$victim ]] || break; sleep 0.1; done
[[ ! -e /proc/$victim ]] || fail "victim survived"
# The policy's `exes` rule reads another user's /proc/PID/exe, which the
# kernel guards even from root without CAP_SYS_PTRACE: a job's sleep
# matches an `exes` of /usr/bin/sleep, its tail does not.
cp /etc/monitoreo/policy.toml /tmp/policy.orig
sed -i '/^\[signal\]/,/^\[/ s|^exes = .*|exes = ["/usr/bin/sleep"]|' /etc/monitoreo/policy.toml
grep -q '^exes = \["/usr/bin/sleep"\]' /etc/monitoreo/policy.toml || fail "could not set exes"
systemctl reload monitoreo-privhelper.service
expect 202 POST /api/jobs '{"cmd": "exec tail -f /dev/null", "timeout_s": 60}'
tailpid=$(json "d['job']['pid']")
expect 202 POST /api/jobs '{"cmd": "exec sleep 1000", "timeout_s": 60}'
sleeper=$(json "d['job']['pid']")
for _ in $(seq 50); do [[ $(cat /proc/$sleeper/comm 2>/dev/null) == sleep && $(cat /proc/$tailpid/comm 2>/dev/null) == tail ]] && break; sleep 0.1; done
# A reload is asynchronous: wait until the helper's verdict on the tail is $1.
verdict_on_tail() {
  for _ in $(seq 50); do
    [[ $(code DELETE /api/ps "{\"pid\": $tailpid, \"dry_run\": true}") == 200 && $(json "d['verdict']") == "$1" ]] && return 0
    sleep 0.1
  done
  fail "dry run on the tail never said $1: $(cat /tmp/body)"
}
verdict_on_tail deny
[[ $(json "d['rule']") == signal.exes ]] || fail "the tail was not refused by exes: $(cat /tmp/body)"
expect 403 DELETE /api/ps "{\"pid\": $tailpid}"
kill -0 $tailpid || fail "a process outside the exes rule was signalled"
expect 200 DELETE /api/ps "{\"pid\": $sleeper}"
for _ in $(seq 50); do [[ -e /proc/$sleeper ]] || break; sleep 0.1; done
[[ ! -e /proc/$sleeper ]] || fail "the job's sleep, matching exes, survived"
cp /tmp/policy.orig /etc/monitoreo/policy.toml
systemctl reload monitoreo-privhelper.service
verdict_on_tail allow
expect 200 DELETE /api/ps "{\"pid\": $tailpid}"
ok "exes rule: another user's executable read and matched"
setpriv --reuid=60650 --regid=60650 --clear-groups sleep 1000 &
stray=$!
sleep 0.3
expect 403 DELETE /api/ps "{\"pid\": $stray}"
kill -0 $stray || fail "a job uid's process outside any job was signalled"
kill $stray
sleep 1000 &
rootproc=$!
expect 403 DELETE /api/ps "{\"pid\": $rootproc}"
kill -0 $rootproc || fail "root process was signalled"
kill $rootproc

# A command and its output.
expect 202 POST /api/ps '{"cmd": "printf \"a\\nb\\n\"; id -u"}'
out=$(json "d['output']")
for _ in $(seq 50); do code GET /api/ps/output/$out >/dev/null; [[ $(json "d['state']") != running ]] && break; sleep 0.2; done
jobuid=$(json "d['out'].split()[-1]")
[[ $(json "d['out']") == $'a\nb\n'"$jobuid" ]] || fail "output: $(cat /tmp/body)"
(( jobuid >= 60600 && jobuid <= 60699 )) || fail "job uid $jobuid not from the per-job range"
ok "command output verbatim, ran as per-job uid $jobuid"

# A job that hides in a new session is still killed at its timeout.
expect 202 POST /api/ps '{"cmd": "setsid sleep 1000 & sleep 1000", "timeout_s": 2}'
tout=$(json "d['output']")
# Polled, not slept: the job ends at its 2 s timeout, and the helper's
# cleaner of its uid (a process of that uid too) runs after it, for up to
# the helper's 30 s cleanup bound.
for _ in $(seq 100); do code GET /api/ps/output/"$tout" >/dev/null; [[ $(json "d['state']") != running ]] && break; sleep 0.2; done
[[ $(json "d['state']") == timed_out ]] || fail "not timed out: $(cat /tmp/body)"
for _ in $(seq 200); do
  left=$(ps -eo uid=,pid=,args= | awk '$1 >= 60600 && $1 <= 60699')
  [[ -z $left ]] && break
  sleep 0.2
done
[[ -z $left ]] || fail "job left processes: $left"
ok "timeout left nothing behind"

# The job limits of the cgroup v2 controllers, where this container's
# unified hierarchy offers them; otherwise say so loudly.
curl -sf -H "Authorization: Bearer $KEY" "$U/healthz" >/tmp/body || fail "healthz"
pids_max=$(json "d['helper']['limits']['cgroup']['pids_max']")
if [[ $pids_max != None ]]; then
  expect 202 POST /api/ps '{"cmd": "f() { f | f & }; f; sleep 30", "timeout_s": 3}'
  sleep 1.5
  n=$(ps -eo uid= | awk '$1 >= 60600 && $1 <= 60699' | wc -l)
  (( n <= pids_max )) || fail "fork bomb grew to $n processes (pids.max $pids_max)"
  ok "fork bomb held by pids.max ($n processes)"
  sleep 3
else
  echo "SKIPPED (no pids controller in this container's unified cgroup hierarchy): pids.max not tested live; RLIMIT_NPROC per job uid holds instead"
fi
curl -sf -H "Authorization: Bearer $KEY" "$U/healthz" >/tmp/body || fail "healthz"
if [[ $(json "d['helper']['limits']['cgroup']['memory_max']") != None ]]; then
  expect 202 POST /api/ps '{"cmd": "python3 -c \"b = bytearray(2 * 1024**3); print(len(b))\"", "timeout_s": 20}'
  hog=$(json "d['output']")
  for _ in $(seq 100); do code GET /api/ps/output/$hog >/dev/null; [[ $(json "d['state']") != running ]] && break; sleep 0.2; done
  [[ $(json "d['exit_code']") != 0 ]] || fail "memory hog was not stopped: $(cat /tmp/body)"
  curl -sf "$U/healthz" >/dev/null || fail "gateway down after the memory hog"
  ok "memory hog stopped by memory.max, both daemons still serving"
else
  echo "SKIPPED (no memory controller in this container's unified cgroup hierarchy): memory.max not tested live; RLIMIT_AS holds instead"
fi

# Privileges as running.
gpid=$(systemctl show -p MainPID --value monitoreo-gateway.service)
[[ $(awk '/^CapEff/ {print $2}' /proc/$gpid/status) == 0000000000000000 ]] || fail "gateway has capabilities"
[[ $(stat -c %U /proc/$gpid) == monitoreo ]] || fail "gateway not running as monitoreo"
ok "gateway: user monitoreo, CapEff 0"
hpid=$(systemctl show -p MainPID --value monitoreo-privhelper.service)
capbnd=$(awk '/^CapBnd/ {print $2}' /proc/$hpid/status)
[[ $capbnd != 000001ffffffffff && $capbnd != 000003ffffffffff ]] || fail "helper bounding set is full: $capbnd"
ok "helper bounding set reduced: $capbnd"

# Restarts lose nothing.
systemctl restart monitoreo-privhelper.service monitoreo-gateway.service
wait_active monitoreo-gateway.service; wait_http
expect 200 GET /api/ps/output/$out
[[ $(json "d['out']") == $'a\nb\n'"$jobuid" ]] || fail "output lost on restart"
grep -q '^\[signal\]' /etc/monitoreo/policy.toml || fail "policy lost"
ok "restart kept key, policy and output"

# Purge removes data and leaves nothing running.
apt-get purge -y -q monitoreo >/tmp/apt.log 2>&1 || { cat /tmp/apt.log >&2; fail "purge"; }
[[ ! -e /var/lib/monitoreo ]] || fail "/var/lib/monitoreo survived purge"
for u in monitoreo-gateway.service monitoreo-privhelper.service monitoreo-privhelper.socket \
  monitoreo-reader.service monitoreo-reader.socket; do
  systemctl is-active --quiet $u && fail "$u still active after purge"
done
getent passwd monitoreo >/dev/null && fail "user monitoreo survived purge"
getent group monitoreo >/dev/null && fail "group monitoreo survived purge"
getent passwd monitoreo-reader >/dev/null && fail "user monitoreo-reader survived purge"
ok "purge removed data, the user and units"
echo "live test passed"
