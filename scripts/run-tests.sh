#!/usr/bin/env bash
# Runs compiled tests with node's test runner. unit: *.test.js (parallel); integration: *.itest.js, one file at a
# time because every integration test drives real QEMU under TCG on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s globstar nullglob
kind=${1:-unit}
shift || true
case "$kind" in
  unit) files=(dist/test/**/*.test.js); conc=() ;;
  integration) files=(dist/test/**/*.itest.js); conc=(--test-concurrency=1) ;;
  *) echo "usage: run-tests.sh unit|integration [files...]" >&2; exit 2 ;;
esac
if (($#)); then files=("$@"); fi
if ((${#files[@]} == 0)); then echo "no $kind tests found" >&2; exit 1; fi
exec node --enable-source-maps --test "${conc[@]}" --test-reporter=spec "${files[@]}"
