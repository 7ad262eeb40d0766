#!/usr/bin/env bash
# Stop the containerd started by test/containerd/start.sh WORKDIR and undo
# everything it did:
#
#   test/containerd/stop.sh WORKDIR
#
# Pods are stopped and removed through CRI first (their netns, CNI
# addresses, shims and containers go with them); then containerd gets SIGTERM
# (SIGKILL after 15 s) by the pid it recorded, never by name.  Whatever is left
# in its private mount namespace (shims of pods CRI could not remove) is
# killed by pid, their containers deleted with `runc/crun delete --force`.
# Then: host mounts under WORKDIR, the FORWARD rules, the bridge ctrdref0,
# netns files, the registry started by start.sh, the host directories
# start.sh saw created, and WORKDIR itself.  Safe to run twice, and after a
# start.sh that failed half-way.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${B:-build}
[ $# -eq 1 ] && [ -n "$1" ] || { echo "usage: $0 WORKDIR" >&2; exit 2; }
work=$(realpath -m "$1")
subnet=10.88.30.0/24
bridge=ctrdref0
controllers=/sys/fs/cgroup/unified/cgroup.controllers
[ -d "$work" ] || exit 0
if [ ! -e "$work/.crisp-containerd-ref" ]; then
  echo "stop.sh: $work was not made by test/containerd/start.sh; not touching it" >&2
  exit 1
fi
sock=$work/containerd.sock
crictl_() { "$B/crispctl" --endpoint "unix://$sock" --timeout 60 "$@"; }

# wait_gone PID SECONDS: poll until the process is gone (or a zombie).
wait_gone() {
  local end=$((SECONDS + $2)) st
  while [ -e "/proc/$1" ]; do
    st=$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null)
    [ "$st" = Z ] && return 0
    [ $SECONDS -lt $end ] || return 1
    sleep 0.05
  done
}

pid=$(cat "$work/containerd.pid" 2>/dev/null || true)
alive=
if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = containerd ] &&
   { tr '\0' ' ' < "/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$work/config.toml"; then
  alive=1
fi

# Shims left from this containerd: they carry "-address WORKDIR/containerd.sock"
# (checked on the command line, so a reused pid or namespace id is never hit).
shim_pids() {
  local p
  for p in /proc/[0-9]*; do
    case $(cat "$p/comm" 2>/dev/null) in containerd-shim*) ;; *) continue ;; esac
    { tr '\0' '\n' < "$p/cmdline"; } 2>/dev/null | grep -qxF -- "$sock" && echo "${p#/proc/}"
  done
}
# The pods' netns files: nsfs mounts in containerd's namespace, as any process
# still in it sees them.
netns_of() {
  awk '$9 == "nsfs" && $5 ~ "^(/var)?/run/netns/" {print $5}' "/proc/$1/mountinfo" 2>/dev/null
}

netns_files=()
if [ -n "$alive" ]; then
  mapfile -t netns_files < <(netns_of "$pid")
  if [ -x "$B/crispctl" ]; then
    for id in $(crictl_ pods -q 2>/dev/null); do
      crictl_ stopp "$id" > /dev/null || echo "stop.sh: StopPodSandbox $id failed" >&2
      crictl_ rmp "$id" > /dev/null || echo "stop.sh: RemovePodSandbox $id failed" >&2
    done
  fi
  kill -TERM "$pid" 2>/dev/null
  if ! wait_gone "$pid" 15; then
    echo "stop.sh: containerd (pid $pid) ignored SIGTERM for 15 s: SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null
    wait_gone "$pid" 5
  fi
fi

# Leftovers (pods CRI could not remove, or containerd died): containers are
# deleted through the runtime state under WORKDIR, then their shims killed by
# pid; the shim sockets (/run/containerd/s/sha256(address/namespace/id)) and
# the CNI result cache entries they leave are removed.
mapfile -t shims < <(shim_pids)
if [ ${#shims[@]} -gt 0 ] && [ ${#netns_files[@]} -eq 0 ]; then
  mapfile -t netns_files < <(netns_of "${shims[0]}")
fi
for rt in runc crun; do
  for nsdir in "$work/$rt"/*/; do
    [ -d "$nsdir" ] || continue
    for st in "$nsdir"*/; do
      [ -d "$st" ] || continue
      id=$(basename "$st")
      # crun needs the hidden cgroup.controllers, as in start.sh.
      unshare -m --propagation private -- /bin/sh -c '
        if grep -q . "$1"; then : > "$2"; mount --bind "$2" "$1" || exit 1; fi
        exec "$3" --root "$4" delete --force "$5"' sh "$controllers" "$work/empty" \
        "$( [ $rt = runc ] && echo /usr/sbin/runc || echo /usr/bin/crun)" "${nsdir%/}" "$id" \
        > /dev/null 2>&1 || echo "stop.sh: $rt delete --force $id failed" >&2
    done
  done
done
for sp in "${shims[@]}"; do
  mapfile -t args < <({ tr '\0' '\n' < "/proc/$sp/cmdline"; } 2>/dev/null)
  ns= id=
  for ((i = 0; i + 1 < ${#args[@]}; i++)); do
    case ${args[i]} in -namespace) ns=${args[i+1]} ;; -id) id=${args[i+1]} ;; esac
  done
  echo "stop.sh: killing leftover shim (pid $sp) of pod $id" >&2
  kill -KILL "$sp" 2>/dev/null
  wait_gone "$sp" 5
  if [ -n "$ns" ] && [ -n "$id" ]; then
    rm -f "/run/containerd/s/$(printf '%s' "$sock/$ns/$id" | sha256sum | cut -d' ' -f1)"
    rm -f /var/lib/cni/results/ctrdref-"$id"-* /var/lib/cni/results/cni-loopback-"$id"-*
  fi
done

if [ -f "$work/registry.pid" ]; then
  rpid=$(cat "$work/registry.pid")
  if [ "$(cat "/proc/$rpid/comm" 2>/dev/null)" = docker-registry ]; then
    kill -TERM "$rpid" 2>/dev/null
    wait_gone "$rpid" 10 || kill -KILL "$rpid" 2>/dev/null
  fi
fi

# Mounts on the host under WORKDIR (none in normal use: containerd's are in
# its own namespace), deepest first.
awk -v w="$work" '$2 == w || index($2, w "/") == 1 {print $2}' /proc/self/mounts | sort -r |
  while read -r m; do umount -l "$m" 2>/dev/null || echo "stop.sh: umount $m failed" >&2; done

if [ -f "$work/iptables-added" ]; then
  iptables -D FORWARD -s $subnet ! -d $subnet -j DROP 2>/dev/null
  iptables -D FORWARD -d $subnet ! -s $subnet -j DROP 2>/dev/null
fi
ip link del "$bridge" 2>/dev/null || true

# netns files whose mounts lived in containerd's namespace and that CRI did
# not remove (a bare file on the host once that namespace is gone).
for f in "${netns_files[@]}"; do
  [ -e "$f" ] && ! mountpoint -q "$f" && rm -f "$f"
done
# Host directories that did not exist before start.sh: removed when empty.
if [ -f "$work/created-dirs" ]; then
  while read -r d; do
    [ -d "$d/s" ] && rmdir "$d/s" 2>/dev/null
    [ -d "$d/results" ] && rmdir "$d/results" 2>/dev/null
    [ -d "$d" ] && rmdir "$d" 2>/dev/null
  done < "$work/created-dirs"
fi

rm -rf "$work"
exit 0
