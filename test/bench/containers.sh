#!/usr/bin/env bash
# Container lifecycle benchmark (build/bench-containers): COUNT pods in
# sequence, each RunPodSandbox -> CreateContainer -> StartContainer -> RUNNING,
# then Stop/Remove of each, against
#   - crispd started here (bridge crispbench0, 10.88.20.0/24, FORWARD DROP
#     rules, as pods.sh), with the runc and crun handlers;
#   - containerd started by test/containerd/start.sh (10.88.30.0/24), with
#     its runc and crun handlers;
# prints every run, a crispd/containerd ratio per step, the daemons' RSS, the
# per-pod helper processes' RSS (crisp-monitor vs containerd-shim-runc-v2),
# and crisp-monitor next to Debian's conmon started by hand on an
# equivalent bundle (runc, same busybox command).  Measures; asserts nothing.
#
#   test/bench/containers.sh                     (as root, after
#       make B=build build/crispd build/crispctl build/crisp-monitor build/crisp-pause build/mkimage build/bench-containers)
#   test/bench/containers.sh ENDPOINT [PID]      any CRI endpoint: only the benchmark, with
#       IMAGE (default: busybox pushed to a registry started here, which the
#       endpoint must be able to pull from over plain HTTP) and RUNTIMES
#       (handlers, space-separated; default: the endpoint's default one)
# Environment: B (build dir, default build), COUNT (default 30).
#
# crun 1.8 refuses this hybrid cgroup layout unless the v2 hierarchy's
# cgroup.controllers looks empty: crispd (and so its monitors and runtimes)
# runs in a private mount namespace with an empty file bound over it, as
# containerd does in start.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-build}
count=${COUNT:-30}
stop_timeout=10
cmd_text="trap 'exit 0' TERM; sleep 3600 & wait"   # bench_containers.c's container command
controllers=/sys/fs/cgroup/unified/cgroup.controllers

for f in "$B/crispd" "$B/crispctl" "$B/crisp-monitor" "$B/crisp-pause" "$B/mkimage" "$B/bench-containers"; do
  [ -x "$f" ] || { echo "containers.sh: $f missing (make B=$B $f)" >&2; exit 1; }
done
B=$(realpath "$B")

work=$(mktemp -d /tmp/crisp-bench-ctr-XXXXXX)
reg_pid= crispd_pid= conmon_pid= conmon_cid= crispd_net=
cdir=$work/conmon
subnet=10.88.20.0/24

rss_of() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }
pss_of() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null; }
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
    echo "containers.sh: killing leftover crisp-monitor (pid ${p#/proc/})" >&2
    kill -KILL "${p#/proc/}" 2>/dev/null || true
  done
}

stop_crispd_net() {
  [ -n "$crispd_net" ] || return 0
  iptables -D FORWARD -s $subnet ! -d $subnet -j DROP 2>/dev/null || true
  iptables -D FORWARD -d $subnet ! -s $subnet -j DROP 2>/dev/null || true
  ip link del crispbench0 2>/dev/null || true
  crispd_net=
}

stop_conmon() {
  if [ -n "$conmon_cid" ]; then
    runc --root "$cdir/runc" kill "$conmon_cid" KILL > /dev/null 2>&1 || true
    if [ -n "$conmon_pid" ] && ! wait_gone "$conmon_pid" 10 && [ "$(cat "/proc/$conmon_pid/comm" 2>/dev/null)" = conmon ]; then
      kill -KILL "$conmon_pid" 2>/dev/null || true
    fi
    runc --root "$cdir/runc" delete --force "$conmon_cid" > /dev/null 2>&1 || true
  fi
  conmon_cid= conmon_pid=
}

cleanup() {
  set +e
  stop_crispd
  stop_crispd_net
  stop_conmon
  [ -e "$work/ctrd" ] && B=$B bash test/containerd/stop.sh "$work/ctrd"
  if [ -n "$reg_pid" ]; then kill "$reg_pid" 2>/dev/null && wait "$reg_pid" 2>/dev/null; fi
  awk -v w="$work" 'index($2, w "/") == 1 {print $2}' /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
# A signal ends the script once the step in the foreground returns (^C also
# reaches bench-containers itself), then cleanup runs.
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
  rc=0
  if [ -n "${RUNTIMES:-}" ]; then
    for rt in $RUNTIMES; do
      "$B/bench-containers" --endpoint "$1" --image "$image" --count "$count" --runtime "$rt" \
        --stop-timeout $stop_timeout ${2:+--pid "$2"} || rc=1
    done
  else
    "$B/bench-containers" --endpoint "$1" --image "$image" --count "$count" \
      --stop-timeout $stop_timeout ${2:+--pid "$2"} || rc=1
  fi
  exit $rc
fi
image=$registry/busybox:latest

# run_bench NAME ENDPOINT PID HANDLER: one benchmark run, output kept in $work/out-NAME-HANDLER.
run_bench() {
  echo
  echo "=== $1 / $4 ==="
  "$B/bench-containers" --endpoint "$2" --image "$image" --count "$count" --pid "$3" --runtime "$4" \
    --log-dir "$work/logs-$1-$4" --stop-timeout $stop_timeout | tee "$work/out-$1-$4" ||
    echo "($1 / $4: the run failed)"
}

echo "container benchmark: $count pods in sequence, each one busybox container ($cmd_text), stop grace period ${stop_timeout}s"

# ---- crispd, runc and crun ----
mkdir -p "$work/crispd/cni"
iptables -I FORWARD -s $subnet ! -d $subnet -j DROP
iptables -I FORWARD -d $subnet ! -s $subnet -j DROP
crispd_net=1
cat > "$work/crispd/cni/10-bench.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "crisp-bench", "plugins": [
 {"type": "bridge", "bridge": "crispbench0", "isGateway": true, "ipMasq": false,
  "ipam": {"type": "host-local", "dataDir": "$work/crispd/ipam", "ranges": [[{"subnet": "$subnet"}]]}},
 {"type": "portmap", "capabilities": {"portMappings": true}},
 {"type": "loopback"}]}
JSON
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
  kill -0 "$crispd_pid" 2>/dev/null || { cat "$work/crispd.log" >&2; echo "containers.sh: crispd exited" >&2; exit 1; }
  [ $SECONDS -lt $end ] || { echo "containers.sh: crispd did not answer within 30 s" >&2; exit 1; }
  sleep 0.02
done
echo "crispd $("$B/crispctl" --endpoint "$work/crispd/c.sock" version | awk '/RuntimeVersion/ {print $2}') pid $crispd_pid"
run_bench crispd "unix://$work/crispd/c.sock" "$crispd_pid" runc
run_bench crispd "unix://$work/crispd/c.sock" "$crispd_pid" crun
stop_crispd
stop_crispd_net
if [ -s "$work/crispd.log" ]; then
  echo "crispd log (warnings and errors):"
  sed 's/^/  /' "$work/crispd.log" | tail -n 20
fi

# ---- Debian's conmon by hand, on an equivalent bundle ----
echo
echo "=== conmon $(conmon --version | awk 'NR==1 {print $3}') by hand (runc, busybox, same command) ==="
conmon_rss= conmon_pss=
mkdir -p "$cdir/bundle" "$cdir/exits" "$cdir/sock" "$cdir/persist" "$cdir/runc"
umoci raw unpack --image "$work/bb:latest" "$cdir/bundle/rootfs" > /dev/null 2>&1
runc spec --bundle "$cdir/bundle"
jq --arg cmd "$cmd_text" --arg cg "/crisp-bench-conmon-$$" \
  '.process.args = ["/bin/sh", "-c", $cmd] | .process.terminal = false | .linux.cgroupsPath = $cg' \
  "$cdir/bundle/config.json" > "$cdir/config.json" && mv "$cdir/config.json" "$cdir/bundle/config.json"
conmon_cid=benchconmon$$
# As CRI-O runs it (internal/oci/runtime_oci.go), without the sync pipes:
# conmon then creates the container at once and detaches.
conmon -b "$cdir/bundle" -c "$conmon_cid" -u "$conmon_cid" -n bench-conmon --exit-dir "$cdir/exits" \
  -l "k8s-file:$cdir/ctr.log" --log-level error -P "$cdir/conmon.pid" -p "$cdir/bundle/pidfile" \
  --persist-dir "$cdir/persist" -r /usr/sbin/runc --runtime-arg "--root=$cdir/runc" \
  --socket-dir-path "$cdir/sock" > "$cdir/conmon.out" 2>&1 < /dev/null || true
end=$((SECONDS + 30))
until [ -s "$cdir/bundle/pidfile" ] && [ -s "$cdir/conmon.pid" ] || [ $SECONDS -ge $end ]; do sleep 0.02; done
if [ -s "$cdir/bundle/pidfile" ] && [ -s "$cdir/conmon.pid" ]; then
  conmon_pid=$(cat "$cdir/conmon.pid")
  runc --root "$cdir/runc" start "$conmon_cid"
  until runc --root "$cdir/runc" state "$conmon_cid" 2>/dev/null | grep -q '"status": "running"' || [ $SECONDS -ge $end ]; do
    sleep 0.02
  done
  sleep 0.5   # let both settle as the daemons' helpers had
  conmon_rss=$(rss_of "$conmon_pid") conmon_pss=$(pss_of "$conmon_pid")
  echo "conmon pid $conmon_pid beside container pid $(cat "$cdir/bundle/pidfile"): VmRSS $conmon_rss kB, PSS $conmon_pss kB"
else
  echo "conmon did not start the container: $(cat "$cdir/conmon.out")"
fi
stop_conmon

# ---- containerd, runc and crun ----
echo
B=$B bash test/containerd/start.sh "$work/ctrd" "$registry" | sed -n 1p
ctrd_pid=$(cat "$work/ctrd/containerd.pid")
run_bench containerd "unix://$work/ctrd/containerd.sock" "$ctrd_pid" runc
run_bench containerd "unix://$work/ctrd/containerd.sock" "$ctrd_pid" crun
B=$B bash test/containerd/stop.sh "$work/ctrd"

# ---- summary ----
# field F (5: median, 8: p95) of step S in run file NAME-HANDLER.
fig() { awk -v s="$2" -v f="$3" '$1 == "step" && $2 == s {print $f}' "$work/out-$1" 2>/dev/null; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "" || b == "" || b == 0) print "-"; else printf "%.2f", a / b}'; }
echo
echo "=== crispd / containerd, median ms per step (ratio < 1: crispd faster) ==="
printf '%-18s %10s %10s %7s   %10s %10s %7s\n' step "runc:crisp" containerd ratio "crun:crisp" containerd ratio
for s in RunPodSandbox CreateContainer StartContainer Status-\>RUNNING StopContainer RemoveContainer \
         StopPodSandbox RemovePodSandbox pod-up pod-down end-to-end; do
  cr=$(fig crispd-runc "$s" 5) kr=$(fig containerd-runc "$s" 5)
  cc=$(fig crispd-crun "$s" 5) kc=$(fig containerd-crun "$s" 5)
  printf '%-18s %10s %10s %7s   %10s %10s %7s\n' "$s" "${cr:--}" "${kr:--}" "$(ratio "$cr" "$kr")" \
    "${cc:--}" "${kc:--}" "$(ratio "$cc" "$kc")"
done
echo "ratio lines (median crispd/containerd; p95 crispd/containerd):"
for s in RunPodSandbox CreateContainer StartContainer Status-\>RUNNING StopContainer RemoveContainer \
         StopPodSandbox RemovePodSandbox pod-up pod-down end-to-end; do
  for rt in runc crun; do
    echo "ratio $s $rt: median $(ratio "$(fig crispd-$rt "$s" 5)" "$(fig containerd-$rt "$s" 5)")," \
         "p95 $(ratio "$(fig crispd-$rt "$s" 8)" "$(fig containerd-$rt "$s" 8)")"
  done
done

echo
echo "=== memory ==="
for d in crispd containerd; do
  for rt in runc crun; do
    line=$(grep '^rss daemon' "$work/out-$d-$rt" 2>/dev/null | sed 's/^rss daemon //')
    printf '%-11s %-5s daemon RSS: %s\n' "$d" "$rt" "${line:-(no figure)}"
  done
done
for d in crispd containerd; do
  for rt in runc crun; do
    line=$(grep '^rss helpers' "$work/out-$d-$rt" 2>/dev/null | head -n 1 | sed 's/^rss helpers //')
    printf '%-11s %-5s helpers: %s\n' "$d" "$rt" "${line:-(no figure)}"
  done
done
mon=$(awk '/^rss helpers/ {for (i = 1; i <= NF; i++) if ($i == "per" && $(i+1) == "process") print $(i-2)}' \
      "$work/out-crispd-runc" 2>/dev/null | head -n 1)
echo "monitor RSS vs Debian conmon: crisp-monitor ${mon:-?} kB VmRSS (mean over the crispd/runc run's monitors)," \
     "conmon ${conmon_rss:-?} kB VmRSS (PSS ${conmon_pss:-?} kB), one container each (runc, busybox, same command)"
