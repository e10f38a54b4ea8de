#!/usr/bin/env bash
# Installs the pinned Node.js LTS when the `node` on PATH is another major, and prints the directory
# to put first on PATH (the one holding that node). The binary comes from the npm registry's
# node-<os>-<arch> package (`npm pack` checks the registry's integrity hash), unpacked into
# ~/.cache/tidemark-tools/node-v<version>/ like the other cached tools. Needs an `npm` of any version.
# Use it through scripts/node-env.sh (sourced), which puts the printed directory first on PATH.
set -euo pipefail

version=26.12.1 # the pin: package.json engines, @types/node and the Dockerfile's base image agree on 26
major=${version%%.*}

current=$(node -v 2>/dev/null || true)
if [[ $current == "v$major."* ]]; then
  dirname "$(command -v node)"
  exit 0
fi

case $(uname -m) in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) echo "install-node: no node-linux package for $(uname -m); install Node $major yourself" >&2; exit 1 ;;
esac
cache="${TIDEMARK_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tidemark-tools}"
dir="$cache/node-v$version"
if [ ! -f "$dir/.complete" ]; then
  command -v npm >/dev/null || { echo "install-node: npm is needed to fetch node-linux-$arch@$version from the npm registry" >&2; exit 1; }
  echo "install-node: fetching node-linux-$arch@$version from the npm registry (node on PATH: ${current:-none})" >&2
  rm -rf "$dir" && mkdir -p "$dir"
  tgz=$(cd "$dir" && npm pack --silent "node-linux-$arch@$version")
  tar -xzf "$dir/$tgz" -C "$dir" --strip-components=1 && rm "$dir/$tgz"
  [[ $("$dir/bin/node" -v) == "v$version" ]] || { echo "install-node: $dir/bin/node is not v$version" >&2; exit 1; }
  touch "$dir/.complete"
fi
echo "$dir/bin"
