#!/usr/bin/env bash
# Starts and stops a throwaway PostgreSQL cluster for the tests.
#
#   scripts/postgres-test-cluster.sh start DIR   # prints the cluster's URL on stdout
#   scripts/postgres-test-cluster.sh stop DIR    # stops the cluster and removes DIR
#
# DIR must be an empty directory (mktemp -d). The cluster listens on 127.0.0.1 only, on a free
# port, with its unix socket in DIR, and trusts every local connection: it is for tests, never for
# data. fsync is off because the tests kill devid nodes, not the database (DURABLE=1 keeps it on,
# for benchmarks of durable writes). PostgreSQL refuses to
# run as root, so under root the cluster runs as the `postgres` system user that Debian's
# postgresql package creates.
set -euo pipefail

usage() {
  echo "usage: $0 start|stop DIR" >&2
  exit 2
}
(($# == 2)) || usage
action=$1
dir=$2

# The newest installed server, preferring 15 (the version CI installs).
bindir=""
for candidate in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
  if [[ -x $candidate/initdb ]]; then
    bindir=$candidate
    break
  fi
done
if [[ -z $bindir ]]; then
  echo "postgres-test-cluster: no PostgreSQL server found (scripts/install-deps.sh installs it)" >&2
  exit 1
fi

as_owner=()
if ((EUID == 0)); then
  if ! id -u postgres >/dev/null 2>&1; then
    echo "postgres-test-cluster: running as root but there is no postgres user" >&2
    exit 1
  fi
  as_owner=(runuser -u postgres --)
fi

pg_ctl() {
  # From /: the caller's directory may be closed to the cluster's owner.
  (cd / && "${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" "$@")
}

case $action in
  start)
    [[ -d $dir ]] || { echo "postgres-test-cluster: $dir is not a directory" >&2; exit 1; }
    if ((EUID == 0)); then
      chown postgres: "$dir"
      if ! runuser -u postgres -- test -w "$dir"; then
        echo "postgres-test-cluster: the postgres user cannot reach $dir; set TMPDIR to a" \
          "directory every user can traverse (such as /tmp)" >&2
        exit 1
      fi
    fi
    "${as_owner[@]}" "$bindir/initdb" -D "$dir/data" --username=postgres --auth=trust \
      --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
      cat "$dir/initdb.log" >&2
      exit 1
    }
    cat >"$dir/data/pg_hba.conf" <<'EOF'
local all all trust
host all all 127.0.0.1/32 trust
EOF
    durability="-c fsync=off -c full_page_writes=off"
    [[ ${DURABLE:-0} != 1 ]] || durability=""
    # A port that nothing answers on; the start is retried on another one if it is taken
    # between the probe and the bind.
    for _ in $(seq 20); do
      port=$((20000 + RANDOM % 40000))
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        continue
      fi
      if pg_ctl -w -t 60 -l "$dir/server.log" start -o "-c listen_addresses=127.0.0.1 \
          -c port=$port -c unix_socket_directories='$dir' $durability \
          -c max_connections=300" >/dev/null; then
        echo "postgresql://postgres@127.0.0.1:$port/postgres"
        exit 0
      fi
    done
    echo "postgres-test-cluster: the cluster did not start; its log:" >&2
    cat "$dir/server.log" >&2 || true
    exit 1
    ;;
  stop)
    if [[ -f $dir/data/postmaster.pid ]]; then
      pg_ctl -w -t 60 -m immediate stop >/dev/null || true
    fi
    rm -rf "$dir"
    ;;
  *)
    usage
    ;;
esac
