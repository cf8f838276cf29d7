#!/usr/bin/env bash
# Installs the Debian packages Tessera needs to build, run and test.
# Idempotent: skips apt entirely when everything is already installed.
set -euo pipefail

PACKAGES=(build-essential autoconf automake libtool pkg-config
          libfuse3-dev fuse3 libcurl4-openssl-dev libssl-dev libmicrohttpd-dev
          uthash-dev libjansson-dev bats jq curl python3 procps git rsync)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
    exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
