#!/usr/bin/env bash
# Installs what vmfork needs on a Debian 12 host, idempotently: apt packages (as root; otherwise prints the exact
# apt-get line and stops), npm dependencies (npm ci when package-lock.json changed) and the TypeScript build.
set -euo pipefail
cd "$(dirname "$0")/.."

# gcc make libc6-dev libssl-dev: vmfork-guest is compiled on the host at image build time (docs/guest-agent.md)
APT_PACKAGES=(qemu-system-x86 qemu-utils debootstrap e2fsprogs iproute2 iputils-ping openssh-client procps gcc make libc6-dev libssl-dev)
if [[ -n "${VMFORK_EXTRA_APT:-}" ]]; then read -r -a extra <<<"$VMFORK_EXTRA_APT"; APT_PACKAGES+=("${extra[@]}"); fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then missing+=("$p"); fi
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "vmfork needs these Debian packages; install them as root and run again:" >&2
    echo "  apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "==> installing apt packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # an install that fails on stale lists is retried once after a refresh
  apt-get install -y --no-install-recommends "${missing[@]}" >/tmp/vmfork-apt.log 2>&1 ||
    { apt-get update >>/tmp/vmfork-apt.log 2>&1 && apt-get install -y --no-install-recommends "${missing[@]}" >>/tmp/vmfork-apt.log 2>&1; } ||
    { echo "apt-get install failed; see /tmp/vmfork-apt.log" >&2; tail -20 /tmp/vmfork-apt.log >&2; exit 1; }
fi

lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f node_modules/.vmfork-lock-hash || "$(cat node_modules/.vmfork-lock-hash)" != "$lock_hash" ]]; then
  echo "==> npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_hash" >node_modules/.vmfork-lock-hash
else
  npx tsc -p tsconfig.json
fi
