#!/usr/bin/env bash
# Runs compiled tests with node's test runner. unit: *.test.js (parallel); integration: *.itest.js, one file at a
# time because every integration test drives real QEMU under TCG on a 2-core machine. Every test has a timeout, so
# a hang fails the run instead of stalling it: 120 s for a unit test, 20 min for an integration test, which also bounds its whole file (a cold
# template boot under TCG on a loaded host takes ~1 min; a file may set a smaller one with `test(name, { timeout })`).
# VMFORK_TEST_TIMEOUT_MS overrides both (e.g. to debug one test without a deadline).
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s globstar nullglob
kind=${1:-unit}
shift || true
case "$kind" in
  unit) files=(dist/test/**/*.test.js); conc=(); timeout=120000 ;;
  integration) files=(dist/test/**/*.itest.js); conc=(--test-concurrency=1); timeout=1200000 ;;
  *) echo "usage: run-tests.sh unit|integration [files...]" >&2; exit 2 ;;
esac
if (($#)); then files=("$@"); fi
if ((${#files[@]} == 0)); then echo "no $kind tests found" >&2; exit 1; fi
exec node --enable-source-maps --test "${conc[@]}" --test-timeout="${VMFORK_TEST_TIMEOUT_MS:-$timeout}" --test-reporter=spec "${files[@]}"
