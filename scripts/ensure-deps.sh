#!/usr/bin/env bash
# Installs what vmfork needs on a Debian 12 host, idempotently: apt packages (as root; otherwise prints the exact
# apt-get line and stops), npm dependencies (npm ci when package-lock.json changed), the TypeScript build and the
# CLI bundle, and (as root) the link /usr/local/bin/vmfork → this clone's dist/cli/main.js so `vmfork` is on PATH.
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

# QEMU drops to an unprivileged uid of its own per VM, in this group (docs/security.md); the user is the group's
# named member, never logged in. Idempotent: made once, left as it is after.
if [[ $(id -u) -eq 0 ]]; then
  getent group vmfork-qemu >/dev/null || { groupadd --system vmfork-qemu && echo "==> made group vmfork-qemu"; }
  getent passwd vmfork-qemu >/dev/null ||
    { useradd --system --gid vmfork-qemu --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin vmfork-qemu && echo "==> made user vmfork-qemu"; }
else
  getent group vmfork-qemu >/dev/null || echo "note: no group vmfork-qemu: QEMU runs unconfined; as root run this script again" >&2
fi

lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f node_modules/.vmfork-lock-hash || "$(cat node_modules/.vmfork-lock-hash)" != "$lock_hash" ]]; then
  echo "==> npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_hash" >node_modules/.vmfork-lock-hash
else
  # npm ci's `prepare` builds all three; without it, each must run: `vmfork` runs the bundle, not tsc's output, and
  # `vmfork serve` serves the console from dist/web
  npx tsc -p tsconfig.json
  node scripts/bundle-cli.mjs
  node scripts/build-web.mjs
fi

# `vmfork …` in the README needs the command on PATH. A link another clone made is repointed to this one; a real
# file (npm install -g, a package) is left alone.
bin_target="$PWD/dist/cli/main.js"
bin_link=/usr/local/bin/vmfork
if [[ "$(readlink "$bin_link" 2>/dev/null || true)" != "$bin_target" ]]; then
  if [[ $(id -u) -eq 0 && ( ! -e "$bin_link" || -L "$bin_link" ) ]]; then
    ln -sfn "$bin_target" "$bin_link"
    echo "==> linked $bin_link -> $bin_target"
  elif [[ -e "$bin_link" && ! -L "$bin_link" ]]; then
    echo "note: $bin_link is a file, not a link (npm install -g?): left alone; this clone's CLI is $bin_target" >&2
  else
    echo "note: \`vmfork\` is not on PATH; as root run: ln -sfn $bin_target $bin_link" >&2
  fi
fi
