#!/usr/bin/env bash
# Everything a fresh machine of this kind needs before the demo or the tests: the pinned Node LTS
# (from the npm registry when the machine's node is another major), Debian packages, npm packages
# (when package-lock.json changed or node_modules was installed by another Node major), the pinned Go
# tools (cached) and the PostgreSQL servers and clients of the version matrix (cached).
# A script cannot change its caller's PATH: run the demo and the tests after `source scripts/node-env.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/node-env.sh
bash scripts/install-system-deps.sh
stamp=node_modules/.tidemark-node-major
major=$(node -p 'process.versions.node.split(".")[0]')
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] \
  || [ "$(cat "$stamp" 2>/dev/null)" != "$major" ]; then
  npm ci --no-audit --no-fund
  echo "$major" >"$stamp"
fi
bash scripts/build-tools.sh
bash scripts/install-test-postgres.sh
