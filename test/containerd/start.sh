#!/usr/bin/env bash
# Start a private containerd (Debian's 1.6, CRI plugin) as a reference CRI
# endpoint, entirely under WORKDIR:
#
#   test/containerd/start.sh WORKDIR [REGISTRY_HOSTPORT]     (as root, after `make`)
#   test/containerd/stop.sh WORKDIR
#
# WORKDIR/config.toml (version 2), root/, state/, the gRPC socket
# WORKDIR/containerd.sock (ttrpc beside it; debug and metrics off), the CNI
# config in WORKDIR/cni (bridge ctrdref0, 10.88.30.0/24, no masquerade, two
# FORWARD DROP rules keep its traffic on this machine), runc and crun state
# in WORKDIR/runc and WORKDIR/crun, the log in WORKDIR/containerd.log.
#
# The sandbox (pause) image is crisp's own build/crisp-pause packed as a
# one-layer image and pushed to the registry at REGISTRY_HOSTPORT (plain
# HTTP on loopback); without one, a docker-registry is started under WORKDIR
# (stop.sh stops it).  The image is pulled through CRI before this script
# returns, so the registry configuration is proven and the first
# RunPodSandbox does not pay for a pull.
#
# crun 1.8 refuses this machine's hybrid cgroup layout while
# /sys/fs/cgroup/unified/cgroup.controllers lists controllers, so containerd
# runs in a private mount namespace where an empty file hides it; the shims,
# runc/crun and the CNI plugins it starts inherit that namespace, and so do
# its pod network namespace mounts and container rootfs mounts (invisible on
# the host, gone with the namespace).
#
# Prints the containerd pid on the last line; it is also in WORKDIR/containerd.pid
# (and its mount namespace in WORKDIR/mntns: `nsenter -t PID -m` to look inside).
# Environment: B (build dir, default build), CONTAINERD_TIMEOUT (seconds to
# wait for CRI, default 60).
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-build}
usage() { echo "usage: $0 WORKDIR [REGISTRY_HOSTPORT]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
[ -n "$1" ] || usage
work=$(realpath -m "$1")
registry=${2:-}
subnet=10.88.30.0/24
bridge=ctrdref0
controllers=/sys/fs/cgroup/unified/cgroup.controllers
deadline_s=${CONTAINERD_TIMEOUT:-60}

case $work in /|/tmp|/var|/run|/root|/home) echo "start.sh: refusing WORKDIR $work" >&2; exit 2 ;; esac
for tool in containerd ctr containerd-shim-runc-v2 umoci skopeo iptables ip unshare; do
  command -v "$tool" >/dev/null || { echo "start.sh: $tool not found (bash contrib/install-deps.sh)" >&2; exit 1; }
done
for f in "$B/crispctl" "$B/crisp-pause"; do
  [ -x "$f" ] || { echo "start.sh: $f missing: make B=$B $f" >&2; exit 1; }
done
if [ -f "$work/containerd.pid" ] && kill -0 "$(cat "$work/containerd.pid")" 2>/dev/null; then
  echo "start.sh: containerd already running under $work (pid $(cat "$work/containerd.pid"))" >&2
  exit 1
fi
# The unix socket path must fit in sun_path (108 bytes) with ".ttrpc" added.
[ ${#work} -le 80 ] || { echo "start.sh: WORKDIR path too long for a unix socket: $work" >&2; exit 2; }

# One reference containerd at a time: the bridge, subnet and rules are fixed.
if ip link show "$bridge" > /dev/null 2>&1 || iptables -C FORWARD -s $subnet ! -d $subnet -j DROP 2> /dev/null; then
  echo "start.sh: bridge $bridge or the $subnet FORWARD rules exist: another reference containerd runs" \
       "(or a stale one: test/containerd/stop.sh ITS-WORKDIR, or ip link del $bridge)" >&2
  exit 1
fi

mkdir -p "$work"
# stop.sh removes WORKDIR only when it finds this marker.
: > "$work/.crisp-containerd-ref"
sock=$work/containerd.sock
crictl_() { "$B/crispctl" --endpoint "unix://$sock" "$@"; }

failed() {
  trap - ERR
  echo "start.sh: $*" >&2
  for log in registry.log containerd.log; do
    [ -s "$work/$log" ] && { echo "--- $log (last lines)"; tail -n 30 "$work/$log"; } >&2
  done
  bash test/containerd/stop.sh "$work" >&2 || true
  exit 1
}
trap 'failed "command failed at line $LINENO"' ERR

# Host directories containerd (or libcni) creates when missing and that stop.sh
# removes again when they are empty: shim sockets go to /run/containerd/s (a
# path containerd 1.6 does not let us move), pod netns files to /run/netns,
# libcni's result cache to /var/lib/cni, pod cgroups under /k8s.io (the
# containerd namespace: CRI leaves the default cgroups path when a pod has no
# cgroup_parent).
: > "$work/created-dirs"
for d in /run/containerd /run/netns /var/lib/cni $(for c in /sys/fs/cgroup/*/; do echo "${c}k8s.io"; done); do
  [ -e "$d" ] || echo "$d" >> "$work/created-dirs"
done

free_port() {
  local p
  for _ in $(seq 100); do
    p=$(shuf -i 20000-60000 -n 1)
    ss -Htln "sport = :$p" | grep -q . || { echo "$p"; return 0; }
  done
  return 1
}

# ---- registry and sandbox image ----
if [ -z "$registry" ]; then
  port=$(free_port) || failed "no free port for docker-registry"
  registry=127.0.0.1:$port
  cat > "$work/registry.yml" <<YML
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: $work/registry-data}}
http: {addr: $registry}
YML
  setsid docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 < /dev/null &
  echo $! > "$work/registry.pid"
  ok=
  for _ in $(seq 200); do
    curl -sf "http://$registry/v2/" >/dev/null && { ok=1; break; }
    sleep 0.05
  done
  [ -n "$ok" ] || failed "docker-registry on $registry did not answer"
fi
case $registry in
  *:*) ;;
  *) failed "REGISTRY_HOSTPORT must be host:port, got $registry" ;;
esac
echo "$registry" > "$work/registry-hostport"

# A one-layer image holding /pause (crisp-pause, static): containerd runs the
# image's entrypoint as the pod's infra process.
pause_image=$registry/crisp/pause:latest
rm -rf "$work/pause-layout"
{
  umoci init --layout "$work/pause-layout"
  umoci new --image "$work/pause-layout:latest"
  umoci insert --no-history --image "$work/pause-layout:latest" "$B/crisp-pause" /pause
  umoci config --no-history --image "$work/pause-layout:latest" --config.entrypoint /pause \
    --config.user 65535:65535 --config.workingdir /
} > "$work/umoci.log" 2>&1 || failed "building the pause image failed: $(cat "$work/umoci.log")"
bash test/images/push.sh "$work/pause-layout" "$registry" crisp/pause:latest > /dev/null ||
  failed "pushing $pause_image failed"

# ---- CNI ----
mkdir -p "$work/cni" "$work/ipam"
cat > "$work/cni/10-ctrdref.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "ctrdref", "plugins": [
 {"type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": false,
  "ipam": {"type": "host-local", "dataDir": "$work/ipam", "ranges": [[{"subnet": "$subnet"}]]}},
 {"type": "portmap", "capabilities": {"portMappings": true}},
 {"type": "loopback"}]}
JSON
# The bridge plugin turns on ip_forward (isGateway): nothing is forwarded
# between the pod subnet and anything else.
iptables -I FORWARD -s $subnet ! -d $subnet -j DROP
iptables -I FORWARD -d $subnet ! -s $subnet -j DROP
echo 1 > "$work/iptables-added"

# ---- config ----
mkdir -p "$work/root" "$work/state" "$work/runc" "$work/crun" "$work/opt"
cat > "$work/config.toml" <<TOML
version = 2
root = "$work/root"
state = "$work/state"
oom_score = 0
# Snapshotters this machine cannot use; disabling them keeps the log quiet.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "$sock"
  uid = 0
  gid = 0

[ttrpc]
  address = "$sock.ttrpc"

[debug]
  address = ""
  level = "warn"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$work/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_image"
  # No CAP_SYS_RESOURCE here: a negative oom_score_adj cannot be set.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        Root = "$work/runc"
        SystemdCgroup = false

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun.options]
        BinaryName = "/usr/bin/crun"
        Root = "$work/crun"
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$work/cni"
    max_conf_num = 1

  # Plain HTTP to the loopback registry, through a hosts.toml (the
  # registry.mirrors table works too, but 1.6 logs it as deprecated).
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$work/certs.d"
TOML
mkdir -p "$work/certs.d/$registry"
cat > "$work/certs.d/$registry/hosts.toml" <<TOML
server = "http://$registry"

[host."http://$registry"]
  capabilities = ["pull", "resolve"]
TOML

# ---- containerd, in a private mount namespace ----
: > "$work/empty"
# setsid: not in the caller's process group, so a ^C there does not reach it.
# Neither setsid (not a group leader here), unshare (no --fork) nor sh (exec)
# forks: $! is containerd's pid.
setsid unshare -m --propagation private -- /bin/sh -c '
  if grep -q . "$1"; then mount --bind "$2" "$1" || exit 1; fi
  exec containerd --config "$3"' sh "$controllers" "$work/empty" "$work/config.toml" \
  > "$work/containerd.log" 2>&1 < /dev/null &
pid=$!
echo "$pid" > "$work/containerd.pid"

end=$((SECONDS + deadline_s))
until ctr --address "$sock" --connect-timeout 1s version > /dev/null 2>&1 &&
      crictl_ --timeout 2 version > /dev/null 2>&1; do
  kill -0 "$pid" 2>/dev/null || failed "containerd (pid $pid) exited"
  [ $SECONDS -lt $end ] || failed "containerd (pid $pid) did not answer CRI within ${deadline_s}s"
  sleep 0.1
done
[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = containerd ] || failed "pid $pid is not containerd"
readlink "/proc/$pid/ns/mnt" > "$work/mntns"

# CRI Status says NetworkReady once the CNI config is loaded.
until crictl_ --timeout 2 info 2>/dev/null | grep -A2 '"NetworkReady"' | grep -q '"status": *true'; do
  [ $SECONDS -lt $end ] || failed "containerd: CRI network not ready within ${deadline_s}s"
  sleep 0.1
done
crictl_ --timeout 120 pull "$pause_image" > /dev/null || failed "CRI pull of $pause_image failed"
echo "containerd $(containerd --version | awk '{print $3}') pid $pid on unix://$sock, sandbox image $pause_image"
echo "$pid"
