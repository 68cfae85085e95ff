#!/usr/bin/env bash
# Runs the README's test command in a fresh Debian 12 that has only the README's prerequisites:
# a minimal root file system made by debootstrap, entered with chroot, with build-essential, git,
# ca-certificates and this machine's Rust toolchain (copied in: a toolchain cannot be downloaded
# here). Services are private to the run (TEST_SERVICES=private), so nothing the host runs
# is used, and the build cache starts cold.
#
#   sudo bash xtask/fresh-debian.sh [DIR]     (DIR: where the root file system goes,
#                                              default /var/tmp/trellis-fresh-debian)
#
# It needs root (debootstrap, mounts, chroot) and the debootstrap package. It tests what is
# committed (a clone of HEAD). The chroot shares the host's network, so the host's apt mirror,
# package registries and CA bundle work inside.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-/var/tmp/trellis-fresh-debian}"
mkdir -p "$dir"
root="$dir/root"

# The Debian mirror this machine already uses (no host name is written into the repository).
mirror="$(grep -rhoE '^(URIs:|deb) *https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
  | grep -oE 'https?://[^ ]+' | head -n1 || true)"
[ -n "$mirror" ] || { echo "no Debian mirror found under /etc/apt" >&2; exit 1; }

command -v debootstrap >/dev/null || apt-get install -y -q debootstrap

# Processes whose root is the chroot (servers a run left behind, such as the tests' moto): they
# share the host's network, so a stale one would answer the next run's tests.
stop_chroot_processes() {
  for p in /proc/[0-9]*; do
    case "$(readlink "$p/root" 2>/dev/null)" in "$root"|"$root"/*) kill -9 "${p#/proc/}" 2>/dev/null || true;; esac
  done
}
mounted=()
cleanup() {
  stop_chroot_processes
  for ((i=${#mounted[@]}-1; i>=0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
bind() { mkdir -p "$2"; mount --bind "$1" "$2"; mounted+=("$2"); }

# The bare system is made once and kept in $dir/base; every run starts from a fresh copy of it.
base="$dir/base"
if [ ! -x "$base/usr/bin/apt-get" ]; then
  echo "==> debootstrap bookworm (minbase) into $base from $mirror"
  rm -rf "$base"; mkdir -p "$base"
  debootstrap --variant=minbase bookworm "$base" "$mirror" >"$dir/debootstrap.log" 2>&1 \
    || { tail -20 "$dir/debootstrap.log"; exit 1; }
fi
stop_chroot_processes
if mount | grep -q " $root/"; then echo "$root is still mounted from an earlier run" >&2; exit 1; fi
rm -rf "$root"
cp -a "$base" "$root"

mount -t proc proc "$root/proc"; mounted+=("$root/proc")
bind /sys "$root/sys"
bind /dev "$root/dev"
bind /dev/pts "$root/dev/pts"
mkdir -p "$root/dev/shm"; mount -t tmpfs -o size=2g tmpfs "$root/dev/shm"; mounted+=("$root/dev/shm")
cp /etc/resolv.conf "$root/etc/resolv.conf"
grep -q localhost "$root/etc/hosts" 2>/dev/null || printf '127.0.0.1 localhost\n::1 localhost\n' >>"$root/etc/hosts"
# The package mirrors of this machine (main, updates, security), as a fresh machine here has them.
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/"
  rm -f "$root/etc/apt/sources.list"
elif [ -f /etc/apt/sources.list ]; then
  cp /etc/apt/sources.list "$root/etc/apt/sources.list"
fi
# As in container images: packages do not start daemons while being installed in a chroot.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"; chmod +x "$root/usr/sbin/policy-rc.d"

in_root() {
  chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb \
    PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt CURL_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt DEBIAN_FRONTEND=noninteractive "$@"
}

echo "==> the README's prerequisites: build-essential, git, ca-certificates, a Rust toolchain"
in_root apt-get update -q >/dev/null
in_root apt-get install -y -q --no-install-recommends build-essential git ca-certificates >"$dir/prereqs.log" 2>&1 \
  || { tail -20 "$dir/prereqs.log"; exit 1; }
# This machine's CA bundle (it may include the registries' proxy authority).
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
# The Rust toolchain: rustup's files, hard-linked (cheap) into the root's home.
rustup_home="${RUSTUP_HOME:-$HOME/.rustup}"; cargo_home="${CARGO_HOME:-$HOME/.cargo}"
cp -al "$rustup_home" "$root/root/.rustup" 2>/dev/null || cp -a "$rustup_home" "$root/root/.rustup"
mkdir -p "$root/root/.cargo/bin"
for tool in cargo rustc rustup rustfmt cargo-fmt cargo-clippy clippy-driver rustdoc; do
  if [ -e "$cargo_home/bin/$tool" ]; then cp -a "$cargo_home/bin/$tool" "$root/root/.cargo/bin/"; fi
done
in_root cargo --version

echo "==> a fresh clone of HEAD"
rm -rf "$root/root/trellis"
git clone --quiet "$repo" "$root/root/trellis"

echo "==> CI=true bash .ci/run inside the chroot (private services, cold build)"
start=$(date +%s)
set +e
in_root CI=true TEST_SERVICES=private bash -c 'cd /root/trellis && bash .ci/run' 2>&1 | tee "$dir/ci.log"
status=${PIPESTATUS[0]}
set -e
echo "==> exit $status after $(( $(date +%s) - start )) s (log: $dir/ci.log)"
# Private services started by the run were stopped by it; anything left is ended with the mounts.
exit "$status"
