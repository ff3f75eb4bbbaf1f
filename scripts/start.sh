#!/usr/bin/env bash
# The main job (`npm start`): installs what it needs, builds the guest image if missing (cached by recipe hash),
# then runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
node dist/src/cli/main.js image build --name default
exec node dist/src/cli/main.js demo "$@"
