#!/usr/bin/env bash
# The test command (`npm test`): installs what it needs, then lint, the architecture check, typecheck, unit tests,
# the guest image build and the integration tests against real QEMU.
set -euo pipefail
cd "$(dirname "$0")/.."
# the tests' own servers come from Debian's packages too: PostgreSQL for the store's second dialect, Chromium for
# the console walk (test/web/console-walk.itest.ts drives it with playwright-core: no browser download), Prometheus
# to scrape GET /metrics as a real one does (test/helpers/prometheus.ts)
VMFORK_EXTRA_APT="${VMFORK_EXTRA_APT:-} postgresql-15 chromium prometheus" bash scripts/ensure-deps.sh
echo "==> lint"
npx eslint .
echo "==> architecture (folder cycles, imports only through index.ts)"
npm run --silent depcheck
echo "==> typecheck + build"
npx tsc -p tsconfig.json
node scripts/bundle-cli.mjs
node scripts/build-web.mjs
# Built images are shared between test homes through the image cache (cached by recipe hash).
export VMFORK_IMAGE_CACHE=${VMFORK_IMAGE_CACHE:-/var/cache/vmfork/images}
own_root=
if [[ -z "${VMFORK_TEST_HOME_ROOT:-}" ]]; then
  VMFORK_TEST_HOME_ROOT=$(mktemp -d /tmp/vmfork-test.XXXXXX)
  own_root=1
fi
export VMFORK_TEST_HOME_ROOT
images_pid=
cleanup() {
  # a failure before the images were waited for: their build (its own process group) is stopped, not left running
  if [[ -n "$images_pid" ]]; then kill -- "-$images_pid" 2>/dev/null || true; fi
  # test homes are scratch: the data dir the test files share (its template, its network namespace) is torn down,
  # then removed with the rest at exit (each test removes its own VMs, taps and namespaces itself)
  if [[ -n "$own_root" ]]; then
    node dist/test/fixtures/teardown-shared.js || true
    rm -rf "$VMFORK_TEST_HOME_ROOT"
  fi
}
trap cleanup EXIT
# Two recipes, each built once (~100 s cold): the test image (vmfork-guest + test/fixtures/hooks) every test home
# registers, and the same without the agent for the script path. Nothing else may add a recipe (CI time).
# They build while the unit tests run: debootstrap mostly waits on the mirror, the unit tests on the CPU (and pass
# on a busy host, as every test must).
images_log="$VMFORK_TEST_HOME_ROOT/images.log"
echo "==> guest images (cache: $VMFORK_IMAGE_CACHE): building in the background, log $images_log"
setsid -w bash -c '
  set -e
  node dist/src/cli/main.js --home "$VMFORK_TEST_HOME_ROOT/image-home" image build --name default --hooks test/fixtures/hooks
  node dist/src/cli/main.js --home "$VMFORK_TEST_HOME_ROOT/image-home" image build --name noagent --no-guest-agent
' >"$images_log" 2>&1 &
images_pid=$!
echo "==> unit tests"
bash scripts/run-tests.sh unit
echo "==> unit tests again on PostgreSQL (every store a test opens is a database on a real server)"
bash scripts/test-pg.sh
echo "==> guest images: waiting for their build"
if ! wait "$images_pid"; then
  images_pid=
  cat "$images_log"
  echo "the guest image build failed (above)" >&2
  exit 1
fi
images_pid=
cat "$images_log"
# The load test's fixed sample runs under load (scripts/run-loaded.sh: every core kept busy by other processes for
# the whole run, as a host asked for forks while busy is): the identity and verify files, whose clocks and deadlines
# load used to break. The rest run unloaded. The whole load walk (identity, verify and every pool file under load)
# is `npm run test:load` (CI time: TCG guests at half speed double each file).
shopt -s globstar nullglob
loaded=(dist/test/identity/*.itest.js dist/test/verify/*.itest.js)
unloaded=()
for f in dist/test/**/*.itest.js; do
  [[ " ${loaded[*]} " == *" $f "* ]] || unloaded+=("$f")
done
echo "==> integration tests"
bash scripts/run-tests.sh integration "${unloaded[@]}"
echo "==> integration tests under load: ${loaded[*]}"
bash scripts/run-loaded.sh "${loaded[@]}"
echo "==> teardown of the shared test data dir"
node dist/test/fixtures/teardown-shared.js
