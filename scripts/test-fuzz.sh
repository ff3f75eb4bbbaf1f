#!/usr/bin/env bash
# The long API fuzz (`npm run test:fuzz`): test/api/fuzz/api-fuzz.test.ts with VMFORK_FUZZ_RUNS requests (default
# 30,000; `npm test` runs 2,000). The seed is random and printed unless VMFORK_FUZZ_SEED (replay)
# or CI=true (the fixed one) sets it. No QEMU starts: the QEMU work is scripted, the rest is the real server.
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc -p tsconfig.json
export VMFORK_FUZZ_RUNS=${VMFORK_FUZZ_RUNS:-30000}
# the file as a whole is bounded by the test timeout: an hour for the long run
export VMFORK_TEST_TIMEOUT_MS=${VMFORK_TEST_TIMEOUT_MS:-3600000}
bash scripts/run-tests.sh unit dist/test/api/fuzz/api-fuzz.test.js
