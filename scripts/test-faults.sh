#!/usr/bin/env bash
# The whole kill -9 walk (`npm run test:faults`): test/pool/faults.itest.ts with VMFORK_FAULT_WALK=all kills the
# server at every fault point of src/util/fault.ts (FAULT_POINTS) and checks the restart converges with nothing left
# over. `npm test` runs its fixed sample (the points that need no phase 1). The points of a new replica each cost
# phase 1 twice under TCG, so a test may take longer than run-tests.sh's 20 min: the timeout here is 60 min a test.
# VMFORK_FAULT_ONLY=<point>[,<point>…] walks only those points.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
npx tsc -p tsconfig.json
node scripts/bundle-cli.mjs
export VMFORK_IMAGE_CACHE=${VMFORK_IMAGE_CACHE:-/var/cache/vmfork/images}
if [[ -z "${VMFORK_TEST_HOME_ROOT:-}" ]]; then
  VMFORK_TEST_HOME_ROOT=$(mktemp -d /tmp/vmfork-faults.XXXXXX)
  trap 'node dist/test/fixtures/teardown-shared.js || true; rm -rf "$VMFORK_TEST_HOME_ROOT"' EXIT
fi
export VMFORK_TEST_HOME_ROOT
node dist/src/cli/main.js --home "$VMFORK_TEST_HOME_ROOT/image-home" image build --name default --hooks test/fixtures/hooks
export VMFORK_FAULT_WALK=all
export VMFORK_TEST_TIMEOUT_MS=${VMFORK_TEST_TIMEOUT_MS:-3600000}
bash scripts/run-tests.sh integration dist/test/pool/faults.itest.js
