#!/usr/bin/env bash
# Install every Debian package crisp needs to build, test and run.
# Idempotent: packages already installed are skipped, and apt is not touched
# at all when nothing is missing.  Used by `make run`, `make test` and .ci/run.
set -euo pipefail

pkgs=(
  # toolchain
  build-essential pkg-config git clang libclang-rt-dev
  # libraries (DESIGN.md, dependencies)
  libgrpc-dev protobuf-c-compiler libprotobuf-c-dev libyajl-dev check
  libseccomp-dev libcap-dev libcurl4-openssl-dev libgpgme-dev libarchive-dev libssl-dev libmicrohttpd-dev zlib1g-dev
  # what crispd drives at run time
  runc crun containernetworking-plugins iproute2 iptables
  # test fixtures: a real registry, image tools, busybox for test images
  docker-registry skopeo umoci busybox-static zstd apache2-utils
  # reference tools: containerd as a reference CRI endpoint (test/containerd),
  # conmon for the monitor RSS comparison (test/bench/containers.sh)
  containerd conmon
)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then
    SUDO=sudo
  else
    echo "install-deps: need root to install: ${missing[*]}" >&2
    exit 1
  fi
else
  SUDO=
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
