#!/usr/bin/env bash
# The whole load walk (`npm run test:load`): the identity, verify and every pool integration file with every core
# kept busy by other processes for their whole run (scripts/run-loaded.sh). CI runs a fixed sample of it (the
# identity and verify files, scripts/test.sh); this is the rest, run by hand and reported in a closing note.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
npx tsc -p tsconfig.json
node scripts/bundle-cli.mjs
export VMFORK_IMAGE_CACHE=${VMFORK_IMAGE_CACHE:-/var/cache/vmfork/images}
if [[ -z "${VMFORK_TEST_HOME_ROOT:-}" ]]; then
  VMFORK_TEST_HOME_ROOT=$(mktemp -d /tmp/vmfork-load.XXXXXX)
  trap 'node dist/test/fixtures/teardown-shared.js || true; rm -rf "$VMFORK_TEST_HOME_ROOT"' EXIT
fi
export VMFORK_TEST_HOME_ROOT
node dist/src/cli/main.js --home "$VMFORK_TEST_HOME_ROOT/image-home" image build --name default --hooks test/fixtures/hooks
node dist/src/cli/main.js --home "$VMFORK_TEST_HOME_ROOT/image-home" image build --name noagent --no-guest-agent
shopt -s globstar nullglob
bash scripts/run-loaded.sh dist/test/identity/*.itest.js dist/test/verify/*.itest.js dist/test/pool/*.itest.js
