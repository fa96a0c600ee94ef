#!/usr/bin/env bash
# bench/tokens.sh measures peer tokens (docs/tokens.md): the token authority's issuance rate in
# `devid serve` (POST /tokens over mutual TLS, each worker on one kept-alive connection, at several
# concurrencies, with the server's CPU per token) and, per core, the authority's signing alone and
# a peer's offline check (devid_peer_token_bench). Same-run baseline: `openssl speed ecdsap256`
# (each token is one ECDSA P-256 signature plus one audit write) and, when MIT Kerberos is
# installed (krb5-kdc, krb5-admin-server, krb5-user), its KDC's service-ticket (TGS) rate: KRB5_PROCS
# `kvno` processes, each with its own ticket-granting ticket, asking for KRB5_SERVICES distinct
# services, the KDC's CPU per ticket measured as devid's; and, when nginx is installed, nginx
# answering the same requests over the same mutual TLS with a fixed token (the ceiling of the
# exchange itself on this machine). Two devices are enrolled over
# EST exactly as a device would be; the policy lets bench-a ask for bench-b. Everything runs on
# 127.0.0.1; results go to $OUT (default: a new temp dir) and a summary is printed.
#
# Environment (defaults): DURATION=10 (s per measurement) CONCURRENCIES="4 8 16 32"
#   SAS_CONCURRENCY=16 (the SAS-token run) KRB5_PROCS=0 skips the Kerberos baseline
#   KRB5_PROCS=4 KRB5_SERVICES=1000 PERF=0 (1: perf record the server during the last concurrency, for the audit write's share)
#   BUILD_DIR=build/release (configured with the release preset unless it has the binaries)
set -euo pipefail

DURATION=${DURATION:-10}
CONCURRENCIES=${CONCURRENCIES:-4 8 16 32}
PERF=${PERF:-0}
KRB5_PROCS=${KRB5_PROCS:-4}
KRB5_SERVICES=${KRB5_SERVICES:-1000}

# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
require_tools openssl jq curl
ensure_built "devid devid_x509_load devid_peer_token_bench" "$BUILD_DIR/devid" \
  "$BUILD_DIR/bench/devid_x509_load" "$BUILD_DIR/bench/devid_peer_token_bench"
devid=$BUILD_DIR/devid
load=$BUILD_DIR/bench/devid_x509_load

make_workspace devid-tokens-bench
devid_pid=""
perf_pid=""

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  stop "$perf_pid" INT
  stop "$devid_pid"
  stop "${nginx_pid:-}"
  stop "${kdc_pid:-}"
  remove_workspace
}
trap cleanup EXIT

describe_machine
echo "$machine" >"$OUT/machine.txt"

log "openssl speed -seconds 3 ecdsap256 (CPU time)"
read -r speed_sign speed_verify < <(ecdsa_speed cpu)

log "devid_peer_token_bench: signing and offline verification per core"
"$BUILD_DIR/bench/devid_peer_token_bench" --benchmark_format=json \
  --benchmark_out="$OUT/peer-token-bench.json" --benchmark_out_format=json >/dev/null

# --- devid serve with a policy, two devices enrolled over EST ----------------------------------
data=$tmp/data
printf '%s\n' '[tokens]' 'ttl_seconds = 300' '[[tokens.rule]]' 'from_devices = ["bench-a"]' \
  'to_devices = ["bench-b"]' 'scopes = ["door:open"]' >"$tmp/devid.toml"
"$devid" serve --data-dir "$data" --listen 127.0.0.1:0 --config "$tmp/devid.toml" \
  >"$tmp/devid.log" 2>&1 &
devid_pid=$!
port=$(wait_listening "$tmp/devid.log" "$devid_pid")
read_connection "$data"
endpoint=$(jq -r .deviceEndpoint "$data/connection.json")
devices=$tmp/devices
mkdir -p "$devices"
printf 'bench passphrase\n' >"$devices/passphrase"
chmod 600 "$devices/passphrase"
for device in bench-a bench-b; do
  openssl rand -base64 32 >"$devices/$device.sas"
  "$devid" enrollment add --registration-id "$device" --primary-key "$(cat "$devices/$device.sas")" \
    --connection "$data/connection.json" >/dev/null
  "$devid" device enroll --symmetric-key-file "$devices/$device.sas" \
    --key "file:$devices/$device.key?passphrase-file=$devices/passphrase" \
    --cert-out "$devices/$device.pem" --registration-id "$device" --id-scope "$id_scope" \
    --endpoint "$endpoint" --trust-bundle "$trust" >/dev/null
done
# The load generator reads a plain PEM key.
openssl pkey -in "$devices/bench-a.key" -passin "file:$devices/passphrase" \
  -out "$devices/bench-a.plain.key"

# --- issuance over HTTPS -----------------------------------------------------------------------
# measure LABEL PID ARGS...: one load run, its JSON in $OUT/LABEL.json with the CPU per token of
# the server PID (and its children) and of the load generator.
measure() {
  local label=$1 pid=$2 before after client_s TIMEFORMAT='%U %S'
  shift 2
  before=$(cpu_ticks "$pid")
  client_s=$({ time "$load" "$@" --duration "$DURATION" --label "$label" \
    >"$OUT/$label.raw.json"; } 2>&1 | awk '{print $1 + $2}')
  after=$(cpu_ticks "$pid")
  jq --argjson ticks $((after - before)) --argjson hz "$(getconf CLK_TCK)" \
    --argjson client_s "$client_s" \
    '. + {server_cpu_us_per_ok: (if .ok > 0 then $ticks / $hz * 1e6 / .ok else null end),
      client_cpu_us_per_ok: (if .ok > 0 then $client_s * 1e6 / .ok else null end)}' \
    "$OUT/$label.raw.json" >"$OUT/$label.json"
}

# The requests without --port, which says whom they go to (devid, or the nginx baseline).
token_args=(--mode token --cert "$devices/bench-a.pem" --key "$devices/bench-a.plain.key"
  --audience bench-b --scope door:open --trust-bundle "$trust")
log "warm-up: 2 s at concurrency 4"
"$load" "${token_args[@]}" --port "$port" --concurrency 4 --duration 2 --label warmup >"$OUT/warmup.json"
last=${CONCURRENCIES##* }
for c in $CONCURRENCIES; do
  if [[ $PERF == 1 && $c == "$last" ]]; then
    perf record -e cpu-clock -F 499 -g -p "$devid_pid" -o "$OUT/perf-tokens.data" \
      >/dev/null 2>&1 &
    perf_pid=$!
    sleep 1
  fi
  log "POST /tokens: concurrency $c, $DURATION s"
  measure "tokens-c$c" "$devid_pid" "${token_args[@]}" --port "$port" --concurrency "$c"
  if [[ -n $perf_pid ]]; then
    stop "$perf_pid" INT
    perf_pid=""
  fi
done

# --- issuance to a symmetric-key device: SAS token, sealed session key -------------------------
# The DPS SAS token of bench-a (protocol notes §2): HMAC-SHA256 over "{sr}\n{se}" with its key.
sr="$id_scope/registrations/bench-a"
se=$(($(date +%s) + 3600))
key_hex=$(base64 -d "$devices/bench-a.sas" | od -An -tx1 | tr -d ' \n')
sig=$(printf '%s\n%s' "$sr" "$se" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key_hex" -binary |
  base64 | jq -rR @uri)
sas_args=(--mode token --authorization "SharedAccessSignature sr=$sr&sig=$sig&se=$se&skn=registration"
  --audience bench-b --scope door:open --port "$port" --trust-bundle "$trust")
sas_c=${SAS_CONCURRENCY:-16}
log "POST /tokens with a SAS token (sealed session key): concurrency $sas_c, $DURATION s"
measure tokens-sas "$devid_pid" "${sas_args[@]}" --concurrency "$sas_c"

# --- baseline: nginx answering the same requests with a fixed token -----------------------------
# The ceiling of a kept-alive mutual-TLS request and answer on this machine with this client: the
# same server identity, the client certificate requested as devid does, an answer of the same
# size, and nothing decided, signed or recorded.
nginx_pid=""
if command -v nginx >/dev/null; then
  nginx_dir=$tmp/nginx
  mkdir -p "$nginx_dir/body"
  nginx_port=$(free_port)
  answer=$(curl -sS --fail --cacert "$trust" --cert "$devices/bench-a.pem" \
    --key "$devices/bench-a.plain.key" -H 'Content-Type: application/json' \
    -d '{"audience":"bench-b","scope":"door:open"}' "https://127.0.0.1:$port/tokens")
  printf '%s\n' 'daemon off;' 'worker_processes auto;' "pid $nginx_dir/nginx.pid;" \
    "error_log $nginx_dir/error.log warn;" 'events { worker_connections 1024; }' 'http {' \
    '  access_log off;' "  client_body_temp_path $nginx_dir/body;" \
    '  keepalive_requests 100000000;' '  keepalive_timeout 300s;' \
    '  server {' "    listen 127.0.0.1:$nginx_port ssl;" \
    "    ssl_certificate $data/tls/server.pem;" "    ssl_certificate_key $data/tls/server.key;" \
    '    ssl_protocols TLSv1.3;' '    ssl_verify_client optional_no_ca;' \
    "    location / { default_type application/json; return 200 '$answer'; }" \
    '  }' '}' >"$nginx_dir/nginx.conf"
  start_nginx "$nginx_dir" "$nginx_port"
  for c in $CONCURRENCIES; do
    log "nginx, the same requests with a fixed answer: concurrency $c, $DURATION s"
    measure "nginx-c$c" "$nginx_pid" "${token_args[@]}" --port "$nginx_port" --concurrency "$c"
  done
  stop "$nginx_pid"
  nginx_pid=""
else
  log "no nginx baseline (nginx not installed)"
fi

# --- baseline: MIT Kerberos service tickets -----------------------------------------------------
kdc_pid=""
if ((KRB5_PROCS > 0)) && command -v krb5kdc >/dev/null && command -v kvno >/dev/null; then
  krb=$tmp/krb5
  mkdir -p "$krb"
  kdc_port=$(free_port)
  printf '%s\n' '[realms]' ' BENCH.TEST = {' "  database_name = $krb/principal" \
    "  key_stash_file = $krb/stash" "  kdc_ports = $kdc_port" "  kdc_tcp_ports = $kdc_port" ' }' \
    '[logging]' " kdc = FILE:$krb/kdc.log" >"$krb/kdc.conf"
  printf '%s\n' '[libdefaults]' ' default_realm = BENCH.TEST' ' dns_lookup_kdc = false' \
    ' rdns = false' '[realms]' ' BENCH.TEST = {' "  kdc = 127.0.0.1:$kdc_port" ' }' \
    >"$krb/krb5.conf"
  export KRB5_CONFIG=$krb/krb5.conf KRB5_KDC_PROFILE=$krb/kdc.conf
  log "krb5: a realm with $KRB5_SERVICES services"
  kdb5_util create -s -r BENCH.TEST -P "$(openssl rand -hex 16)" >/dev/null 2>&1
  services=()
  for i in $(seq "$KRB5_SERVICES"); do services+=("svc/s$i"); done
  { echo "addprinc -pw client-password client"
    printf 'addprinc -randkey %s\n' "${services[@]}"; } | kadmin.local >/dev/null 2>&1
  krb5kdc -n -P "$krb/kdc.pid" >/dev/null 2>&1 &
  kdc_pid=$!
  sleep 1
  for p in $(seq "$KRB5_PROCS"); do
    KRB5CCNAME=FILE:$krb/cc$p kinit client <<<client-password >/dev/null
  done
  log "krb5: $KRB5_PROCS kvno processes x $KRB5_SERVICES service tickets"
  before=$(cpu_ticks "$kdc_pid")
  start_ns=$(date +%s%N)
  kvno_pids=()
  for p in $(seq "$KRB5_PROCS"); do
    KRB5CCNAME=FILE:$krb/cc$p kvno "${services[@]}" >/dev/null &
    kvno_pids+=($!)
  done
  wait_ok=0
  for pid in "${kvno_pids[@]}"; do wait "$pid" || wait_ok=1; done
  end_ns=$(date +%s%N)
  after=$(cpu_ticks "$kdc_pid")
  jq -n --argjson tickets $((KRB5_PROCS * KRB5_SERVICES)) --argjson failed "$wait_ok" \
    --argjson ns $((end_ns - start_ns)) --argjson ticks $((after - before)) \
    --argjson hz "$(getconf CLK_TCK)" '{tickets: $tickets, any_failed: ($failed == 1),
      elapsed_s: ($ns / 1e9), tickets_per_s: ($tickets / ($ns / 1e9)),
      kdc_cpu_us_per_ticket: ($ticks / $hz * 1e6 / $tickets)}' >"$OUT/krb5-tgs.json"
  stop "$kdc_pid"
  kdc_pid=""
else
  log "no Kerberos baseline (KRB5_PROCS=0, or krb5kdc or kvno not installed)"
fi

# --- summary -----------------------------------------------------------------------------------
echo
log "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "results in $OUT"
echo "machine: $machine"
echo "openssl speed ecdsap256, one core: $speed_sign sign/s, $speed_verify verify/s"
jq -r '.benchmarks[] | "\(.name): \(.tokens_per_s | round) tokens/s on one core " +
  "(\(.real_time * 10 | round / 10) us each)\(if .error_occurred then " ERROR " +
  .error_message else "" end)"' "$OUT/peer-token-bench.json"
for run in $(for c in $CONCURRENCIES; do echo "tokens-c$c"; done) tokens-sas \
  $(for c in $CONCURRENCIES; do [[ -f $OUT/nginx-c$c.json ]] && echo "nginx-c$c"; done); do
  jq -r '"\(.label): \(.ok) ok, \(.failed) failed, \(.ok_per_s | round) tokens/s, " +
    "p50 \(.latency_ms.p50 * 100 | round / 100) ms, p99 \(.latency_ms.p99 * 100 | round / 100) ms, " +
    "server CPU \(.server_cpu_us_per_ok // 0 | round) us/token, " +
    "load generator CPU \(.client_cpu_us_per_ok // 0 | round) us/token" +
    (if .first_error != "" then " (first error: " + (.first_error | .[0:200]) + ")" else "" end)' \
    "$OUT/$run.json"
done
if [[ -f $OUT/krb5-tgs.json ]]; then
  jq -r '"MIT Kerberos TGS: \(.tickets) service tickets in \(.elapsed_s * 100 | round / 100) s, " +
    "\(.tickets_per_s | round) tickets/s, KDC CPU \(.kdc_cpu_us_per_ticket | round) us/ticket" +
    (if .any_failed then " (a kvno failed)" else "" end)' "$OUT/krb5-tgs.json"
fi
exit 0
