#!/usr/bin/env bash
# Installs the Debian packages the tests and the demo use. Idempotent: does nothing (and no
# `apt-get update`) when everything is present. Never leaves a system service running: a temporary
# policy-rc.d forbids service starts while packages are installed.
set -euo pipefail

# Each entry lists acceptable packages separated by '|'; the first is installed when none is present.
wanted=(
  'postgresql-15|postgresql'
  'postgresql-client-15|postgresql-client'
  'mariadb-server'
  'mariadb-client'
  'prometheus'
  'restic'
  'borgbackup'
  'zstd'
)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=()
for entry in "${wanted[@]}"; do
  found=
  IFS='|' read -r -a alternatives <<<"$entry"
  for pkg in "${alternatives[@]}"; do
    if installed "$pkg"; then found=1; break; fi
  done
  [[ -n $found ]] || missing+=("${alternatives[0]}")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo 'system packages: all present'
  exit 0
fi

sudo=()
[[ $(id -u) -eq 0 ]] || sudo=(sudo)

policy=/usr/sbin/policy-rc.d
backup=
if [[ -e $policy ]]; then
  backup=$(mktemp)
  "${sudo[@]}" cp -p "$policy" "$backup"
fi
restore_policy() {
  if [[ -n $backup ]]; then "${sudo[@]}" mv "$backup" "$policy"; else "${sudo[@]}" rm -f "$policy"; fi
}
trap restore_policy EXIT
printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
"${sudo[@]}" chmod 755 "$policy"

echo "system packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
