#!/usr/bin/env bash
# Stats benchmark (build/bench-stats): one pod with COUNT (50) running busybox
# containers; ListContainerStats latency, then crispd's CPU time per second
# while a kubelet-style poll runs every INTERVAL (10) s for DURATION (60) s.
# Against a crispd started here (host-network pod: no CNI needed), or any CRI
# endpoint given as $1 with IMAGE set (then $2 may give that daemon's pid).
#   test/bench/stats.sh [ENDPOINT [PID]]        (as root, after `make`)
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-build}
args=(--count "${COUNT:-50}" --interval "${INTERVAL:-10}" --duration "${DURATION:-60}")
if [ $# -ge 1 ]; then
  exec "$B/bench-stats" --endpoint "$1" --image "${IMAGE:?set IMAGE}" "${args[@]}" ${2:+--pid "$2"}
fi
work=$(mktemp -d /tmp/crisp-bench-stats-XXXXXX)
reg_pid= crispd_pid=
cleanup() {
  [ -n "$crispd_pid" ] && kill "$crispd_pid" 2>/dev/null && wait "$crispd_pid" 2>/dev/null || true
  [ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null && wait "$reg_pid" 2>/dev/null || true
  grep -o " $work[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
port=$(shuf -i 20000-60000 -n 1)
printf 'version: 0.1\nlog: {level: warn}\nstorage: {filesystem: {rootdirectory: %s/registry}}\nhttp: {addr: 127.0.0.1:%s}\n' \
  "$work" "$port" > "$work/registry.yml"
docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.05; done
"$B/mkimage" busybox "$work/layout" > /dev/null
bash test/images/push.sh "$work/layout" "127.0.0.1:$port" busybox:latest > /dev/null
printf '[[registry]]\nlocation = "127.0.0.1:%s"\ninsecure = true\n' "$port" > "$work/registries.conf"
: > "$work/none.conf"
mkdir -p "$work/cni"
"$B/crispd" --config "$work/none.conf" --config-dir "$work/none.d" --listen "$work/c.sock" \
  --root "$work/root" --runroot "$work/run" --cni-config-dir "$work/cni" \
  --registries-conf "$work/registries.conf" --log-level warn > "$work/crispd.log" 2>&1 &
crispd_pid=$!
for _ in $(seq 500); do "$B/crispctl" --endpoint "unix://$work/c.sock" --timeout 1 version >/dev/null 2>&1 && break; sleep 0.01; done
"$B/bench-stats" --endpoint "unix://$work/c.sock" --image "127.0.0.1:$port/busybox:latest" --pid "$crispd_pid" "${args[@]}"
