#!/usr/bin/env bash
# Builds the pinned Go backup tools that `npm run bench` compares Tidemark with (restic, kopia) and links
# them into .tools/bin (git-ignored). Same cache scheme as scripts/build-tools.sh: binaries are kept outside
# the work tree, keyed by the pins (go.mod, go.sum, this script). Benchmarks do not run in CI, so these
# tools are not part of scripts/build-tools.sh. borg comes from Debian (apt-get install borgbackup).
set -euo pipefail
label="bench tools"
# shellcheck source=go-tools.sh
source "$(dirname "$0")/go-tools.sh"

pin() { awk -v m="$2" '($1=="require" && $2==m) || $1==m {print ($1=="require" ? $3 : $2); exit}' "$1/go.mod"; }

build_module "$root/test/tools/restic" "" restic=github.com/restic/restic/cmd/restic # its version is a constant
kver=$(pin "$root/test/tools/kopia" github.com/kopia/kopia)
build_module "$root/test/tools/kopia" "-X github.com/kopia/kopia/repo.BuildVersion=${kver#v} -X github.com/kopia/kopia/repo.BuildInfo=$kver" kopia=github.com/kopia/kopia
