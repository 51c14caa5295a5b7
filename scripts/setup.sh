#!/usr/bin/env bash
# Installs what img's build and tests need, on a fresh Debian 12 machine with Node 20 and npm.
# Idempotent: a second run installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

# docker-registry, docker.io and podman are the real servers and peers the tests start; openssl makes their TLS certificates.
want_debs=(skopeo umoci gnupg openssl docker-registry docker.io podman)
missing=()
for pkg in "${want_debs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})) && [[ "${IMG_SKIP_APT:-}" != 1 ]]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v pnpm >/dev/null || [[ "$(pnpm --version)" != 10.34.9 ]]; then
  echo "setup: installing pnpm 10.34.9"
  npm i -g pnpm@10.34.9 >/dev/null
fi
pnpm install --frozen-lockfile --reporter=silent
