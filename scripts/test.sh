#!/usr/bin/env bash
# Installs the dependencies, builds the release preset (warnings are errors) and runs every test:
# unit, integration and interop (the official Azure IoT Node SDKs against the real server), with a
# throwaway PostgreSQL cluster for the PostgreSQL tests.
# Exits non-zero on any failure.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

scripts/install-deps.sh
echo "test: $(cmake --version | head -n1); $(c++ --version | head -n1); node $(node --version)"

configure=(--preset release)
if [[ ${CI:-} == true ]]; then
  configure+=(-DDEVID_WERROR=ON)
fi
cmake "${configure[@]}"
cmake --build --preset release

# The interop suite's npm packages, pinned in tests/interop/package.json (no lock file). npm is
# asked only when an installed version differs from its pin, so a warm checkout runs offline.
interop="$repo/tests/interop"
if ! (cd "$interop" && node -e '
    const deps = require("./package.json").dependencies;
    for (const [name, version] of Object.entries(deps)) {
      const installed = require(`./node_modules/${name}/package.json`).version;
      if (installed !== version) process.exit(1);
    }' 2>/dev/null); then
  (cd "$interop" && npm install)
fi

# A throwaway PostgreSQL cluster for the PostgreSQL registry and multi-node tests, removed on exit.
pg_dir="$(mktemp -d)"
trap 'scripts/postgres-test-cluster.sh stop "$pg_dir"' EXIT
DEVID_TEST_POSTGRES_URL="$(scripts/postgres-test-cluster.sh start "$pg_dir")"
export DEVID_TEST_POSTGRES_URL
echo "test: PostgreSQL test cluster at $DEVID_TEST_POSTGRES_URL"

ctest --test-dir build/release --output-on-failure --no-tests=error -j2
