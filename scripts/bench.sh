#!/usr/bin/env bash
# Benchmarks (`npm run bench -- fork [options]`): builds, then runs dist/bench/main.js. Each run uses its own temp
# data dir; built guest images are shared through VMFORK_IMAGE_CACHE (built on first use, which takes minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
export VMFORK_IMAGE_CACHE=${VMFORK_IMAGE_CACHE:-/var/cache/vmfork/images}
echo "==> build" >&2
npx tsc -p tsconfig.json >&2
node scripts/bundle-cli.mjs >&2
exec node --enable-source-maps dist/bench/main.js "$@"
