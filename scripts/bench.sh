#!/usr/bin/env bash
# Benchmarks (`npm run bench -- fork [options]`): builds, then runs dist/bench/main.js. Each run uses its own temp
# data dir; built guest images are shared through VMFORK_IMAGE_CACHE (built on first use, which takes minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
export VMFORK_IMAGE_CACHE=${VMFORK_IMAGE_CACHE:-/var/cache/vmfork/images}
echo "==> build" >&2
# tsc still emits JavaScript when some other module of the tree has a type error; the bench only needs its own
# modules to compile, so a failing typecheck is reported but does not stop the run
npx tsc -p tsconfig.json >&2 || echo "==> warning: tsc reported errors (see above); running the emitted JavaScript" >&2
exec node --enable-source-maps dist/bench/main.js "$@"
