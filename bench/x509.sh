#!/usr/bin/env bash
# bench/x509.sh measures X.509 device requests per second over mutual TLS with a new connection
# and a full handshake per request: devid serve against nginx with `ssl_verify_client on`, same
# device chain (ECDSA P-256 leaf + intermediate under a root both trust), same server key type
# (P-256 leaf + intermediate), same load generator (devid_x509_load), same run.
#   status    GET of a registered device's operation status (devid: attestation, no write);
#             nginx answers a fixed 200 after verifying the chain.
#   register  a full X.509 registration of a new device per request (a distinct leaf each).
#   resumed   status again, each connection resuming the previous one's TLS session.
# Everything runs on 127.0.0.1; results go to $OUT (default: a new temp dir) and a summary is
# printed.
#
# Environment (defaults): DURATION=10 (s per measurement) CONCURRENCY=4 DEVICES=30000
#   BUILD_DIR=build/release (configured with the release preset unless it has the binaries)
set -euo pipefail

DURATION=${DURATION:-10}
CONCURRENCY=${CONCURRENCY:-4}
DEVICES=${DEVICES:-30000}

# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
require_tools curl openssl nginx jq
ensure_built "devid devid_register_load devid_x509_load" "$BUILD_DIR/devid" \
  "$BUILD_DIR/bench/devid_register_load" "$BUILD_DIR/bench/devid_x509_load"
devid=$BUILD_DIR/devid
load=$BUILD_DIR/bench/devid_x509_load

make_workspace devid-x509-bench
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

# --- the PKIs: the devices' (root, intermediate, one leaf) and nginx's server chain ------------
pki=$tmp/pki
mkdir -p "$pki"
printf '%s\n' '[req]' 'distinguished_name = dn' '[dn]' \
  '[ca]' 'basicConstraints = critical,CA:TRUE' 'keyUsage = critical,keyCertSign,cRLSign' \
  'subjectKeyIdentifier = hash' 'authorityKeyIdentifier = keyid' \
  '[device]' 'basicConstraints = critical,CA:FALSE' 'keyUsage = critical,digitalSignature' \
  'extendedKeyUsage = clientAuth' 'subjectKeyIdentifier = hash' 'authorityKeyIdentifier = keyid' \
  '[server]' 'basicConstraints = critical,CA:FALSE' 'keyUsage = critical,digitalSignature' \
  'extendedKeyUsage = serverAuth' 'subjectAltName = DNS:localhost' \
  'subjectKeyIdentifier = hash' 'authorityKeyIdentifier = keyid' >"$pki/pki.cnf"
# make NAME SECTION [ISSUER]: NAME.key and NAME.pem (P-256), self-signed without ISSUER.
make() {
  local name=$1 section=$2 issuer=${3:-}
  if [[ -z $issuer ]]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/$name.key" \
      -subj "/CN=$name" -days 30 -out "$pki/$name.pem" -config "$pki/pki.cnf" -extensions ca \
      2>/dev/null
    return
  fi
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/$name.key" \
    -subj "/CN=$name" -out "$pki/$name.csr" -config "$pki/pki.cnf" 2>/dev/null
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/$issuer.pem" -CAkey "$pki/$issuer.key" \
    -CAcreateserial -days 30 -extfile "$pki/pki.cnf" -extensions "$section" \
    -out "$pki/$name.pem" 2>/dev/null
}
make bench-root ca
make bench-intermediate ca bench-root
make x509-bench-status device bench-intermediate
cat "$pki/x509-bench-status.pem" "$pki/bench-intermediate.pem" >"$pki/status.chain.pem"
make nginx-root ca
make nginx-intermediate ca nginx-root
make localhost server nginx-intermediate
cat "$pki/localhost.pem" "$pki/nginx-intermediate.pem" >"$pki/nginx.chain.pem"

# --- devid -------------------------------------------------------------------------------------
data=$tmp/data
"$devid" serve --data-dir "$data" --listen 127.0.0.1:0 >"$tmp/devid.log" 2>&1 &
devid_pid=$!
devid_port=$(wait_listening "$tmp/devid.log" "$devid_pid")
read_connection "$data"
root_pem=$(jq -Rs . <"$pki/bench-root.pem")
service_put "$BUILD_DIR/bench/devid_register_load" "$devid_port" /enrollmentGroups/x509-bench \
  "{\"enrollmentGroupId\":\"x509-bench\",\"attestation\":{\"type\":\"x509\",\"x509\":{\"signingCertificates\":{\"primary\":{\"certificate\":$root_pem}}}}}"
curl -sS --fail-with-body --max-time 30 --cacert "$trust" \
  --resolve "$host_name:$devid_port:127.0.0.1" --cert "$pki/status.chain.pem" \
  --key "$pki/x509-bench-status.key" -X PUT -H 'Content-Type: application/json' \
  -d '{"registrationId":"x509-bench-status"}' -o "$tmp/registered.json" \
  "https://$host_name:$devid_port/$id_scope/registrations/x509-bench-status/register?api-version=2019-03-31" ||
  { cat "$tmp/registered.json" >&2; die "registering the status device failed"; }
operation=$(jq -r .operationId "$tmp/registered.json")
status_path="/$id_scope/registrations/x509-bench-status/operations/$operation?api-version=2019-03-31"

# --- nginx -------------------------------------------------------------------------------------
nginx_port=$(free_port)
mkdir -p "$tmp/nginx"
printf '%s\n' \
  'daemon off;' 'worker_processes auto;' "pid $tmp/nginx/nginx.pid;" \
  "error_log $tmp/nginx/error.log warn;" 'events { worker_connections 4096; }' 'http {' \
  '  access_log off;' "  client_body_temp_path $tmp/nginx/body;" \
  "  proxy_temp_path $tmp/nginx/proxy;" "  fastcgi_temp_path $tmp/nginx/fastcgi;" \
  "  uwsgi_temp_path $tmp/nginx/uwsgi;" "  scgi_temp_path $tmp/nginx/scgi;" \
  '  server {' "    listen 127.0.0.1:$nginx_port ssl;" \
  "    ssl_certificate $pki/nginx.chain.pem;" "    ssl_certificate_key $pki/localhost.key;" \
  '    ssl_protocols TLSv1.3;' '    ssl_session_tickets on;' \
  '    ssl_verify_client on;' "    ssl_client_certificate $pki/bench-root.pem;" \
  '    ssl_verify_depth 2;' \
  "    location / { default_type application/json; return 200 '{\"status\":\"assigned\"}'; }" \
  '  }' '}' >"$tmp/nginx/nginx.conf"
start_nginx "$tmp/nginx" "$nginx_port"

# --- measurements ------------------------------------------------------------------------------
# run LABEL PORT TRUST SERVER_PID ARGS...: one measurement, its JSON in $OUT/LABEL.json with the
# server's CPU microseconds per successful request added, summarized.
run() {
  local label=$1 port=$2 trust_file=$3 server_pid=$4 before after
  shift 4
  before=$(cpu_ticks "$server_pid")
  "$load" --port "$port" --trust-bundle "$trust_file" --concurrency "$CONCURRENCY" \
    --duration "$DURATION" --label "$label" "$@" >"$OUT/$label.raw.json"
  after=$(cpu_ticks "$server_pid")
  jq --argjson ticks $((after - before)) --argjson hz "$(getconf CLK_TCK)" \
    '. + {server_cpu_us_per_ok: (if .ok > 0 then $ticks / $hz * 1e6 / .ok else null end)}' \
    "$OUT/$label.raw.json" >"$OUT/$label.json"
  jq -r '"\(.label): \(.ok) ok, \(.failed) failed, \(.ok_per_s | round) req/s, " +
    "resumed \(.resumed), p50 \(.latency_ms.p50 * 100 | round / 100) ms, " +
    "p99 \(.latency_ms.p99 * 100 | round / 100) ms, " +
    "server CPU \(.server_cpu_us_per_ok // 0 | round) us/req \(if .first_error != "" then
    "(first error: " + (.first_error | .[0:200]) + ")" else "" end)"' "$OUT/$label.json"
}
status_args=(--mode status --cert "$pki/status.chain.pem" --key "$pki/x509-bench-status.key"
  --path "$status_path")
register_args=(--mode register --issuer-cert "$pki/bench-intermediate.pem"
  --issuer-key "$pki/bench-intermediate.key" --id-scope "$id_scope" --devices "$DEVICES")
log "status: a full handshake per request"
run nginx-status "$nginx_port" "$pki/nginx-root.pem" "$nginx_pid" "${status_args[@]}"
run devid-status "$devid_port" "$trust" "$devid_pid" "${status_args[@]}"
log "register: a new device and a full handshake per request"
run nginx-register "$nginx_port" "$pki/nginx-root.pem" "$nginx_pid" \
  "${register_args[@]}" --id-prefix nginx-
run devid-register "$devid_port" "$trust" "$devid_pid" "${register_args[@]}" --id-prefix devid-
log "status with TLS session resumption"
run nginx-status-resumed "$nginx_port" "$pki/nginx-root.pem" "$nginx_pid" \
  "${status_args[@]}" --resume
run devid-status-resumed "$devid_port" "$trust" "$devid_pid" "${status_args[@]}" --resume

ratio() { jq -rn --slurpfile a "$OUT/$1.json" --slurpfile b "$OUT/$2.json" \
  '$a[0].ok_per_s / $b[0].ok_per_s * 100 | round / 100'; }
echo "machine: $machine"
echo "devid/nginx: status $(ratio devid-status nginx-status)x (target 0.9)," \
  "register $(ratio devid-register nginx-register)x (target 0.7)," \
  "status resumed $(ratio devid-status-resumed nginx-status-resumed)x"
cpu_ratio() { jq -rn --slurpfile a "$OUT/$1.json" --slurpfile b "$OUT/$2.json" \
  '$a[0].server_cpu_us_per_ok / $b[0].server_cpu_us_per_ok * 100 | round / 100'; }
echo "server CPU per request, devid/nginx: status $(cpu_ratio devid-status nginx-status)x," \
  "register $(cpu_ratio devid-register nginx-register)x," \
  "status resumed $(cpu_ratio devid-status-resumed nginx-status-resumed)x"
echo "results: $OUT"
