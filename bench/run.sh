#!/usr/bin/env bash
# bench/run.sh measures devid's durable device registrations per second over HTTPS keep-alive,
# then nginx answering a static 200 over the same TLS identity, with the same load generator and
# the same requests. Everything runs on 127.0.0.1, bounded in count and time; results go to
# $OUT (default: a new temp dir) as JSON, and a summary is printed.
#
# Environment (defaults): DEVICES=50000 CONCURRENCY=64 WARMUP=5000 THREADS=1 TIMEOUT=300
#   BUILD_DIR=build/release (configured with the release preset unless it has the tools already)
#   HANDLER_THREADS="" sets [server] handler_threads in a generated devid config (default: devid's)
#   DEVID_ARGS="" extra `devid serve` arguments
#   SKIP_NGINX=1 to leave out the baseline.
set -euo pipefail

DEVICES=${DEVICES:-50000}
CONCURRENCY=${CONCURRENCY:-64}
WARMUP=${WARMUP:-5000}
THREADS=${THREADS:-1}
TIMEOUT=${TIMEOUT:-300}
SKIP_NGINX=${SKIP_NGINX:-0}
HANDLER_THREADS=${HANDLER_THREADS:-}
DEVID_ARGS=${DEVID_ARGS:-}

# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
require_tools curl openssl nginx jq
ensure_built "devid devid_register_load" "$BUILD_DIR/devid" "$BUILD_DIR/bench/devid_register_load"
devid=$BUILD_DIR/devid
load=$BUILD_DIR/bench/devid_register_load

make_workspace devid-bench
devid_pid=""
nginx_pid=""

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  stop "$nginx_pid"
  stop "$devid_pid"
  remove_workspace
}
trap cleanup EXIT

describe_machine

# --- devid -------------------------------------------------------------------------------------
data=$tmp/data
if [[ -n $HANDLER_THREADS ]]; then
  printf '[server]\nhandler_threads = %d\n' "$HANDLER_THREADS" >"$tmp/devid.toml"
  DEVID_ARGS="--config $tmp/devid.toml $DEVID_ARGS"
fi
log "starting devid serve (data dir $data) $DEVID_ARGS"
# shellcheck disable=SC2086
"$devid" serve --data-dir "$data" --listen 127.0.0.1:0 $DEVID_ARGS >"$tmp/devid.log" 2>&1 &
devid_pid=$!
port=$(wait_listening "$tmp/devid.log" "$devid_pid")
connection=$data/connection.json
id_scope=$(jq -r .idScope "$connection")
trust=$(jq -r .trustBundle "$connection")
connection_string=$(jq -r .serviceConnectionString "$connection")
host_name=$(sed -n 's/.*HostName=\([^;]*\).*/\1/p' <<<"$connection_string")

group_key=$(openssl rand -base64 32)
service_token=$("$load" --make-service-token --connection-string "$connection_string")
log "creating enrollment group bench on port $port"
curl -sS --fail-with-body --max-time 30 --cacert "$trust" \
  --resolve "$host_name:$port:127.0.0.1" \
  -X PUT "https://$host_name:$port/enrollmentGroups/bench?api-version=2021-10-01" \
  -H "Authorization: $service_token" -H 'Content-Type: application/json' \
  --data-binary "{\"enrollmentGroupId\":\"bench\",\"attestation\":{\"type\":\"symmetricKey\",\
\"symmetricKey\":{\"primaryKey\":\"$group_key\"}}}" -o "$tmp/group.json"
echo >&2

common=(--host 127.0.0.1 --port "$port" --trust-bundle "$trust" --id-scope "$id_scope"
        --group-key "$group_key" --concurrency "$CONCURRENCY" --threads "$THREADS"
        --timeout "$TIMEOUT")
log "warmup: $WARMUP devices"
"$load" "${common[@]}" --devices "$WARMUP" --id-prefix warm- --label warmup \
  --json-out "$OUT/devid-warmup.json" >/dev/null
log "measured: $DEVICES distinct devices, concurrency $CONCURRENCY"
"$load" "${common[@]}" --devices "$DEVICES" --id-prefix dev- --label devid \
  --cpu-pid "$devid_pid" --json-out "$OUT/devid.json" >"$OUT/devid.txt" || true
head -1 "$OUT/devid.txt"
stop "$devid_pid"
devid_pid=""
rows=$(sqlite3 "$data/devid.db" 'select count(*) from registrations' 2>/dev/null || echo "?")
log "devid stopped; registrations stored: $rows"

# --- nginx baseline ----------------------------------------------------------------------------
if [[ $SKIP_NGINX != 1 ]]; then
  nginx_dir=$tmp/nginx
  mkdir -p "$nginx_dir/body"
  nginx_port=$(free_port)
  cat >"$nginx_dir/nginx.conf" <<EOF
worker_processes auto;
daemon off;
pid $nginx_dir/nginx.pid;
error_log $nginx_dir/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $nginx_dir/body;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  server {
    listen 127.0.0.1:$nginx_port ssl;
    ssl_certificate $data/tls/server.pem;
    ssl_certificate_key $data/tls/server.key;
    ssl_protocols TLSv1.3;
    location / {
      default_type application/json;
      return 200 '{}';
    }
  }
}
EOF
  log "starting nginx on port $nginx_port"
  start_nginx "$nginx_dir" "$nginx_port"
  nginx_pids=(--cpu-pid "$nginx_pid")
  for pid in $(pgrep -P "$nginx_pid"); do nginx_pids+=(--cpu-pid "$pid"); done
  base=(--host 127.0.0.1 --port "$nginx_port" --trust-bundle "$trust" --id-scope "$id_scope"
        --group-key "$group_key" --concurrency "$CONCURRENCY" --threads "$THREADS"
        --timeout "$TIMEOUT" --path-only-baseline)
  "$load" "${base[@]}" --devices "$WARMUP" --id-prefix warm- --label warmup >/dev/null
  "$load" "${base[@]}" --devices "$DEVICES" --id-prefix dev- --label nginx "${nginx_pids[@]}" \
    --json-out "$OUT/nginx.json" >"$OUT/nginx.txt" || true
  head -1 "$OUT/nginx.txt"
  stop "$nginx_pid"
  nginx_pid=""
fi

# --- summary -----------------------------------------------------------------------------------
echo
log "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "results in $OUT"
summarize "$OUT/devid.json"
[[ -f $OUT/nginx.json ]] && summarize "$OUT/nginx.json"
exit 0
