#!/usr/bin/env bash
# Everything a fresh machine of this kind needs before the demo or the tests: Debian packages,
# npm packages (only when package-lock.json changed), the pinned Go tools (cached) and the PostgreSQL
# servers and clients of the version matrix (cached).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-system-deps.sh
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
bash scripts/build-tools.sh
bash scripts/install-test-postgres.sh
