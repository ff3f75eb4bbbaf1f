#!/usr/bin/env bash
# The unit tests that open a store, run again on a real PostgreSQL (docs/postgres.md): a cluster of Debian's
# postgresql-15 in a temp dir, as the postgres user (test/fixtures/postgres-server.ts), stopped by its pid at exit.
# Each store a test opens through test/helpers/store.ts (openTestStore, testHomeLayout: the store, pool, API, gc,
# heal and network tests) is a fresh database on it; the few that open a SQLite file by path run as before. Files:
# the whole unit suite, or those given.
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s globstar nullglob
if (($#)); then
  files=("$@")
else
  files=(dist/test/**/*.test.js)
fi
dir=$(mktemp -d /tmp/vmfork-pg.XXXXXX)
trap 'node dist/test/fixtures/postgres-server.js stop "$dir" || true; rm -rf "$dir"' EXIT
url=$(node dist/test/fixtures/postgres-server.js start "$dir")
echo "==> PostgreSQL at $url (pid $(head -1 "$dir/data/postmaster.pid")): ${#files[@]} test files"
VMFORK_TEST_PG_URL=$url bash scripts/run-tests.sh unit "${files[@]}"
