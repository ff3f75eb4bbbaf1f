#!/usr/bin/env bash
# The load test: integration test files run with every core of the host kept busy by other processes
# (test/helpers/cpu-load.ts: one busy node process per core, started before and stopped by PID after, whatever
# happens), as a host asked for forks while it is busy is. Usage: run-loaded.sh FILE.itest.js...
set -euo pipefail
cd "$(dirname "$0")/.."
if (($# == 0)); then echo "usage: run-loaded.sh dist/test/...itest.js..." >&2; exit 2; fi
exec node dist/test/helpers/cpu-load.js -- bash scripts/run-tests.sh integration "$@"
