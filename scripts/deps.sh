#!/usr/bin/env bash
# Install the Debian 12 packages interp_pool needs, if any are missing.
# As root it runs apt-get; otherwise it prints the exact command and fails.
set -euo pipefail
pkgs=(cmake make gcc pkg-config liblua5.4-dev lua5.4 libmsgpuck-dev libcmocka-dev
      python3 python3-msgpack clang libclang-rt-14-dev libcjson-dev time
      libopenmpi-dev openmpi-bin luarocks
      dpkg-dev gnuplot-nox clang-format)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
  echo "interp_pool: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "interp_pool: missing packages; run:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
