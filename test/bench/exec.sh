#!/usr/bin/env bash
# Exec benchmark (build/bench-exec): COUNT sequential round trips of `true`
# in a running busybox container (host-network pod: no CNI needed), each
# round once through the Exec RPC plus a streaming session over SPDY (stdout
# + stderr, no stdin, no tty, until the exit code is known), once the same
# over WebSocket, and once through ExecSync, against
#   - crispd started here, with the runc and crun handlers;
#   - containerd started by test/containerd/start.sh (10.88.30.0/24), with
#     its runc and crun handlers;
# all four in one bench-exec run that takes them in turn every round, so
# that whatever else loads the machine hits them alike.  Prints the run and
# crispd/containerd tables of the medians and p95s with their ratios.
# Measures; asserts nothing.
#
#   test/bench/exec.sh                     (as root, after
#       make B=build build/crispd build/crispctl build/crisp-monitor build/crisp-pause build/mkimage build/bench-exec)
#   test/bench/exec.sh ENDPOINT            any CRI endpoint: only the benchmark, with
#       IMAGE (default: busybox pushed to a registry started here, which the
#       endpoint must be able to pull from over plain HTTP) and RUNTIMES
#       (handlers, space-separated; default: the endpoint's default one)
# Environment: B (build dir, default build), COUNT (default 200), WARMUP
# (rounds not counted, default 3), SECCOMP (the container's profile:
# runtime-default (default), unconfined or unset; unset, crispd takes
# RuntimeDefault and containerd 1.6 unconfined, and runc loads the profile
# on every exec, which shows in its exec times).
#
# Without ENDPOINT the script runs in a network namespace of its own,
# loopback only (the pods share it: host network): the registry, both
# daemons and their streaming servers live there, and start.sh's fixed
# bridge, subnet and FORWARD rules never clash with another reference
# containerd on this machine; they go with the namespace.
#
# crun 1.8 refuses this hybrid cgroup layout unless the v2 hierarchy's
# cgroup.controllers looks empty: crispd (and so its monitors and runtimes)
# runs in a private mount namespace with an empty file bound over it, as
# containerd does in start.sh (and as containers.sh runs crispd).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ $# -eq 0 ] && [ -z "${CRISP_BENCH_EXEC_NETNS:-}" ]; then
  exec unshare --net -- env CRISP_BENCH_EXEC_NETNS=1 bash test/bench/exec.sh
fi
[ $# -gt 0 ] || ip link set lo up
B=${B:-build}
count=${COUNT:-200}
warmup=${WARMUP:-3}
seccomp=${SECCOMP:-runtime-default}
controllers=/sys/fs/cgroup/unified/cgroup.controllers

for f in "$B/crispd" "$B/crispctl" "$B/crisp-monitor" "$B/crisp-pause" "$B/mkimage" "$B/bench-exec"; do
  [ -x "$f" ] || { echo "exec.sh: $f missing (make B=$B $f)" >&2; exit 1; }
done
B=$(realpath "$B")

work=$(mktemp -d /tmp/crisp-bench-exec-XXXXXX)
reg_pid= crispd_pid=

# wait_gone PID SECONDS: until the process is gone or a zombie.
wait_gone() {
  local end=$((SECONDS + $2))
  while [ -e "/proc/$1" ] && [ "$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null)" != Z ]; do
    [ $SECONDS -lt $end ] || return 1
    sleep 0.05
  done
}
# "${private_ns[@]}" CMD...: CMD in a private mount namespace where the v2
# hierarchy's cgroup.controllers reads empty.  unshare (no --fork) and sh
# exec: started as a simple command with &, $! is CMD's pid.
private_ns=(unshare -m --propagation private -- /bin/sh -c '
  if grep -q . "$1"; then mount --bind "$2" "$1" || exit 1; fi
  shift 2; exec "$@"' sh "$controllers" "$work/empty")

stop_crispd() {
  [ -n "$crispd_pid" ] || return 0
  local sock=$work/crispd/c.sock id p
  if [ "$(cat "/proc/$crispd_pid/comm" 2>/dev/null)" = crispd ]; then
    for id in $("$B/crispctl" --endpoint "$sock" --timeout 30 pods -q 2>/dev/null); do
      "$B/crispctl" --endpoint "$sock" --timeout 60 stopp "$id" > /dev/null 2>&1 || true
      "$B/crispctl" --endpoint "$sock" --timeout 60 rmp -f "$id" > /dev/null 2>&1 || true
    done
    kill -TERM "$crispd_pid" 2>/dev/null || true
    wait_gone "$crispd_pid" 30 || kill -KILL "$crispd_pid" 2>/dev/null
  fi
  wait "$crispd_pid" 2>/dev/null || true
  crispd_pid=
  # Monitors (and their containers) left by a run that failed: containers
  # deleted through the runtime state, monitors killed by pid.
  for rt in runc crun; do
    for st in "$work/crispd/run/$rt"/*/; do
      [ -d "$st" ] || continue
      "${private_ns[@]}" "/usr/$([ $rt = runc ] && echo sbin || echo bin)/$rt" --root "$work/crispd/run/$rt" \
        delete --force "$(basename "$st")" > /dev/null 2>&1 || true
    done
  done
  for p in /proc/[0-9]*; do
    [ "$(cat "$p/comm" 2>/dev/null)" = crisp-monitor ] || continue
    { tr '\0' '\n' < "$p/cmdline"; } 2>/dev/null | grep -qF -- "$work/" || continue
    echo "exec.sh: killing leftover crisp-monitor (pid ${p#/proc/})" >&2
    kill -KILL "${p#/proc/}" 2>/dev/null || true
  done
}

cleanup() {
  set +e
  stop_crispd
  [ -e "$work/ctrd" ] && B=$B bash test/containerd/stop.sh "$work/ctrd"
  if [ -n "$reg_pid" ]; then kill "$reg_pid" 2>/dev/null && wait "$reg_pid" 2>/dev/null; fi
  awk -v w="$work" 'index($2, w "/") == 1 {print $2}' /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
# A signal ends the script once the step in the foreground returns (^C also
# reaches bench-exec itself), then cleanup runs.
trap 'exit 130' INT
trap 'exit 143' TERM
: > "$work/empty"

# ---- a registry with the busybox test image ----
start_registry() {
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
         shuf -i 20000-60000 -n 1)
  registry=127.0.0.1:$port
  cat > "$work/registry.yml" <<YML
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: $work/registry-data}}
http: {addr: $registry}
YML
  docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
  reg_pid=$!
  for _ in $(seq 200); do curl -sf "http://$registry/v2/" > /dev/null && break; sleep 0.05; done
  "$B/mkimage" busybox "$work/bb" > /dev/null
  bash test/images/push.sh "$work/bb" "$registry" busybox:latest > /dev/null
}
[ $# -ge 1 ] && [ -n "${IMAGE:-}" ] || start_registry

if [ $# -ge 1 ]; then
  image=${IMAGE:-$registry/busybox:latest}   # the endpoint must reach it over plain HTTP
  read -r -a handlers <<< "${RUNTIMES:-}"
  [ ${#handlers[@]} -gt 0 ] || handlers=("")   # "": the endpoint's default handler
  targets=()
  for rt in "${handlers[@]}"; do targets+=(--target "${rt:-default},$1,$rt"); done
  rc=0
  "$B/bench-exec" --image "$image" --count "$count" --warmup "$warmup" --seccomp "$seccomp" --websocket \
    "${targets[@]}" || rc=1
  exit $rc
fi
image=$registry/busybox:latest

echo "exec benchmark: $count rounds (after $warmup warm-up rounds) of \`true\` in one busybox container per" \
     "daemon and handler (seccomp $seccomp); each round, for each of them in turn: Exec + SPDY session," \
     "Exec + WebSocket session, ExecSync"

# ---- containerd, runc and crun ----
ctrd_targets=()
if B=$B bash test/containerd/start.sh "$work/ctrd" "$registry" > "$work/ctrd-start.log" 2>&1; then
  sed -n 1p "$work/ctrd-start.log"
  for rt in runc crun; do ctrd_targets+=(--target "containerd-$rt,unix://$work/ctrd/containerd.sock,$rt"); done
else
  echo "containerd did not start: no containerd figures"
  sed 's/^/  /' "$work/ctrd-start.log"
fi

# ---- crispd, runc and crun ----
mkdir -p "$work/crispd/cni"
cat > "$work/crispd/crisp.conf" <<TOML
[crisp.runtime]
monitor_path = "$B/crisp-monitor"
pause_command = "$B/crisp-pause"
TOML
printf '[[registry]]\nlocation = "%s"\ninsecure = true\n' "$registry" > "$work/crispd/registries.conf"
"${private_ns[@]}" "$B/crispd" --config "$work/crispd/crisp.conf" --config-dir "$work/crispd/none.d" \
  --listen "$work/crispd/c.sock" --root "$work/crispd/root" --runroot "$work/crispd/run" \
  --cni-config-dir "$work/crispd/cni" --registries-conf "$work/crispd/registries.conf" --log-level warn \
  > "$work/crispd.log" 2>&1 < /dev/null &
crispd_pid=$!
end=$((SECONDS + 30))
until "$B/crispctl" --endpoint "$work/crispd/c.sock" --timeout 1 version > /dev/null 2>&1; do
  kill -0 "$crispd_pid" 2>/dev/null || { cat "$work/crispd.log" >&2; echo "exec.sh: crispd exited" >&2; exit 1; }
  [ $SECONDS -lt $end ] || { echo "exec.sh: crispd did not answer within 30 s" >&2; exit 1; }
  sleep 0.02
done
echo "crispd $("$B/crispctl" --endpoint "$work/crispd/c.sock" version | awk '/RuntimeVersion/ {print $2}') pid $crispd_pid"
targets=()
for rt in runc crun; do targets+=(--target "crispd-$rt,unix://$work/crispd/c.sock,$rt"); done
targets+=("${ctrd_targets[@]}")

# ---- the run ----
echo
"$B/bench-exec" --image "$image" --count "$count" --warmup "$warmup" --seccomp "$seccomp" --websocket \
  "${targets[@]}" | tee "$work/out" || echo "(bench-exec failed: figures above are from the rounds done)"
stop_crispd
if [ -s "$work/crispd.log" ]; then
  echo "crispd log (warnings and errors):"
  sed 's/^/  /' "$work/crispd.log" | tail -n 20
fi
[ -e "$work/ctrd" ] && B=$B bash test/containerd/stop.sh "$work/ctrd"

# ---- summary ----
ways="spdy spdy-rpc spdy-session ws ws-rpc ws-session sync"
# fig TARGET WAY F: field F (6: median, 9: p95) of that line of the run.
fig() { awk -v t="$1" -v s="$2" -v f="$3" '$1 == "exec" && $2 == t && $3 == s {print $f}' "$work/out" || true; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "" || b == "" || b == 0) print "-"; else printf "%.2f", a / b}'; }
# table FIELD TITLE
table() {
  echo
  echo "=== crispd / containerd, $2 ms per exec of \`true\` (ratio < 1: crispd faster) ==="
  printf '%-13s %10s %10s %7s   %10s %10s %7s\n' way "runc:crisp" containerd ratio "crun:crisp" containerd ratio
  for w in $ways; do
    local cr kr cc kc
    cr=$(fig crispd-runc "$w" "$1") kr=$(fig containerd-runc "$w" "$1")
    cc=$(fig crispd-crun "$w" "$1") kc=$(fig containerd-crun "$w" "$1")
    printf '%-13s %10s %10s %7s   %10s %10s %7s\n' "$w" "${cr:--}" "${kr:--}" "$(ratio "$cr" "$kr")" \
      "${cc:--}" "${kc:--}" "$(ratio "$cc" "$kc")"
  done
}
table 6 median
table 9 p95
echo "(spdy, ws: Exec RPC + streaming session until the exit code; -rpc and -session: its two parts; sync: ExecSync)"
echo "ratio lines (median crispd/containerd; p95 crispd/containerd):"
for w in spdy ws sync; do
  for rt in runc crun; do
    echo "ratio $w $rt: median $(ratio "$(fig crispd-$rt "$w" 6)" "$(fig containerd-$rt "$w" 6)")," \
         "p95 $(ratio "$(fig crispd-$rt "$w" 9)" "$(fig containerd-$rt "$w" 9)")"
  done
done
