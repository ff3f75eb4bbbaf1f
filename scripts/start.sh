#!/usr/bin/env bash
# The main job (`npm start`): installs what it needs, builds the guest image if missing (cached by recipe hash),
# then runs the API server with the demo pool: 5 persistent desktops (phase 1 once, a replica, then forks), their
# table and times, and keeps serving (Ctrl-C stops the server; the desktops stay up and are re-adopted next time).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
node dist/src/cli/main.js image build --name default
exec node dist/src/cli/main.js serve --demo "$@"
