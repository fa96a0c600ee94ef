#!/usr/bin/env bash
# Installs the build dependencies, builds the release preset and runs `devid serve` on the
# embedded SQLite database in ./data of this checkout. Arguments go to `devid serve`
# (for example --listen 127.0.0.1:8443).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

scripts/install-deps.sh
cmake --preset release
cmake --build --preset release --target devid

data="$repo/data"
mkdir -p "$data"
echo "serve: data directory $data"
echo "serve: clients read $data/connection.json (written when the server is up)"
exec "$repo/build/release/devid" serve --data-dir "$data" "$@"
