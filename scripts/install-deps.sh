#!/usr/bin/env bash
# Installs every Debian 12 package needed to build, run and test devid. Idempotent: when all of
# them are installed it touches nothing and asks apt for nothing. Runs apt as root, or through
# sudo. Starts no service: tests that need nginx or PostgreSQL start their own.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libssl-dev openssl libboost1.81-dev nlohmann-json3-dev libsqlite3-dev sqlite3
  libpq-dev postgresql
  libcli11-dev libspdlog-dev libtomlplusplus-dev libcjose-dev libjansson-dev
  libjemalloc-dev libp11-kit-dev softhsm2 opensc
  libgtest-dev libgmock-dev libbenchmark-dev
  curl ca-certificates nginx-light wrk jq
  swtpm swtpm-tools tpm2-tools libtss2-dev
  mosquitto mosquitto-dev libmosquitto-dev mosquitto-clients
)
# The interop tests need Node.js (18 or later) and npm. A node that is already installed is
# used as it is; Debian's nodejs is the fallback.
if ! command -v node >/dev/null 2>&1; then
  packages+=(nodejs npm)
elif ! command -v npm >/dev/null 2>&1; then
  packages+=(npm)
fi

installed() {
  dpkg -s "$1" 2>/dev/null | grep -qx 'Status: install ok installed'
}

missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages are installed"
  exit 0
fi

as_root=()
if ((EUID != 0)); then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-deps: missing ${missing[*]}: run this script as root (there is no sudo)" >&2
    exit 1
  fi
  as_root=(sudo)
fi
apt=("${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y
     -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

# Keep package scripts from starting daemons (nginx would take port 80), unless the machine
# already has its own policy.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null
  "${as_root[@]}" chmod 755 "$policy"
  trap '"${as_root[@]}" rm -f "$policy"' EXIT
fi

echo "install-deps: installing ${missing[*]}"
"${apt[@]}" update
"${apt[@]}" install --no-install-recommends "${missing[@]}"

for p in "${missing[@]}"; do
  installed "$p" || { echo "install-deps: $p did not install" >&2; exit 1; }
done
echo "install-deps: done"
