#!/usr/bin/env bash
# bench/ocsp.sh measures OCSP responses per second for a cached status: devid's responder
# (POST /ocsp with keep-alive, on its plain-HTTP revocation listener and on its HTTPS listener)
# against `openssl ocsp -index ... -port ...` (plain HTTP, the same issuing CA, key type and
# signer), all asked the same DER request (no nonce, so devid may serve its cached response) by
# the same load generator, wrk with a Lua script that POSTs the request. The target compares like
# with like: devid over plain HTTP against openssl over plain HTTP. Everything runs on loopback,
# bounded in time; results go to $OUT (default: a new temp dir) and a summary is printed.
#
# Environment (defaults): DURATION=20 (s per measurement) CONNECTIONS=32 THREADS=1
#   MULTI=$CONNECTIONS: openssl ocsp -multi, one baseline run per value ("8 32"); the fastest is
#   the baseline. Its workers serve one keep-alive connection each, so each run uses as many
#   connections as processes.
#   HANDLER_THREADS="" sets [server] handler_threads in a generated devid config (default: devid's)
#   BUILD_DIR=build/release (configured with the release preset unless it has devid already)
set -euo pipefail

DURATION=${DURATION:-20}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
MULTI=${MULTI:-$CONNECTIONS}
HANDLER_THREADS=${HANDLER_THREADS:-}

# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
require_tools curl openssl wrk jq
ensure_built devid "$BUILD_DIR/devid"
devid=$BUILD_DIR/devid

make_workspace devid-ocsp-bench
devid_pid=""
openssl_pid=""

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  # openssl ocsp -multi puts itself and its workers in a process group of their own.
  [[ -n $openssl_pid ]] && kill -TERM -- "-$openssl_pid" 2>/dev/null || true
  stop "$openssl_pid"
  stop "$devid_pid"
  remove_workspace
}
trap cleanup EXIT

# cpu_ticks PID...: user+system clock ticks of the processes (and their reaped children).
cpu_ticks() {
  local total=0 pid
  for pid in "$@"; do
    [[ -r /proc/$pid/stat ]] || continue
    total=$((total + $(awk '{print $14 + $15 + $16 + $17}' "/proc/$pid/stat")))
  done
  echo "$total"
}

describe_machine

# --- devid -------------------------------------------------------------------------------------
data=$tmp/data
devid_args=()
if [[ -n $HANDLER_THREADS ]]; then
  printf '[server]\nhandler_threads = %d\n' "$HANDLER_THREADS" >"$tmp/devid.toml"
  devid_args=(--config "$tmp/devid.toml")
fi
log "starting devid serve (data dir $data) ${devid_args[*]}"
http_port=$(free_port)
"$devid" serve --data-dir "$data" --listen 127.0.0.1:0 --revocation-listen "127.0.0.1:$http_port" \
  "${devid_args[@]}" >"$tmp/devid.log" 2>&1 &
devid_pid=$!
port=$(wait_listening "$tmp/devid.log" "$devid_pid")
trust=$(jq -r .trustBundle "$data/connection.json")

# The certificate asked about: the server's own TLS certificate, which devid issued from its CA
# and recorded in its inventory, so its status is "good".
ca_dir=$data/ca/authority
issuer=$ca_dir/$(jq -r '.issuers[-1].certificate' "$ca_dir/authority.json")
leaf=$data/tls/server.pem
chain=$tmp/chain.pem
cat "$issuer" "$trust" >"$chain"
request=$tmp/request.der
openssl ocsp -issuer "$issuer" -cert "$leaf" -no_nonce -reqout "$request" >/dev/null
log "request: $(wc -c <"$request") bytes for $(openssl x509 -in "$leaf" -noout -serial)"

curl -sS --fail --cacert "$trust" --data-binary "@$request" \
  -H 'Content-Type: application/ocsp-request' "https://127.0.0.1:$port/ocsp" -o "$tmp/devid1.der"
curl -sS --fail --data-binary "@$request" \
  -H 'Content-Type: application/ocsp-request' "http://127.0.0.1:$http_port/ocsp" -o "$tmp/devid2.der"
openssl ocsp -respin "$tmp/devid1.der" -issuer "$issuer" -cert "$leaf" -CAfile "$chain" \
  >"$OUT/devid-check.txt" 2>&1 || { cat "$OUT/devid-check.txt" >&2; die "devid's answer does not verify"; }
grep -q ': good' "$OUT/devid-check.txt" || die "devid does not say good: $(cat "$OUT/devid-check.txt")"
cmp -s "$tmp/devid1.der" "$tmp/devid2.der" || die "devid re-signed a cached status"

cat >"$tmp/post.lua" <<EOF
local f = assert(io.open("$request", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/ocsp-request"
done = function(summary, latency, requests)
  io.write(string.format("JSON {\"requests\": %d, \"duration_us\": %d, \"errors\": %d, " ..
    "\"non2xx\": %d, \"p50_ms\": %.3f, \"p99_ms\": %.3f}\n", summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
EOF

# run_wrk LABEL CONNECTIONS WARMUP URL PID...: a WARMUP-second run (0: none), then the measured
# run; writes $OUT/LABEL.txt and $OUT/LABEL.json.
run_wrk() {
  local label=$1 connections=$2 warmup=$3 url=$4
  shift 4
  if ((warmup > 0)); then
    wrk -t "$THREADS" -c "$connections" -d "${warmup}s" -s "$tmp/post.lua" "$url" >/dev/null 2>&1 ||
      true
  fi
  local before after
  before=$(cpu_ticks "$@")
  wrk -t "$THREADS" -c "$connections" -d "${DURATION}s" --latency -s "$tmp/post.lua" "$url" \
    >"$OUT/$label.txt" 2>&1 || true
  after=$(cpu_ticks "$@")
  local json
  json=$(sed -n 's/^JSON //p' "$OUT/$label.txt")
  [[ -n $json ]] || { cat "$OUT/$label.txt" >&2; die "wrk failed against $label"; }
  jq --arg name "$label" --argjson ticks "$((after - before))" --argjson hz "$(getconf CLK_TCK)" \
    '. + {"label": $name, "per_s": (.requests / (.duration_us / 1e6) | floor),
          "server_cpu_s": ($ticks / $hz)}' <<<"$json" >"$OUT/$label.json"
  jq -r '"\(.label): \(.per_s) responses/s (\(.requests) in \(.duration_us / 1e6) s), " +
    "p50 \(.p50_ms) ms, p99 \(.p99_ms) ms, socket errors \(.errors), non-2xx \(.non2xx), " +
    "server cpu \(.server_cpu_s) s"' "$OUT/$label.json"
}

log "devid: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s POST http://127.0.0.1:$http_port/ocsp"
run_wrk devid "$CONNECTIONS" 3 "http://127.0.0.1:$http_port/ocsp" "$devid_pid"
log "devid-https: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s POST https://127.0.0.1:$port/ocsp"
run_wrk devid-https "$CONNECTIONS" 3 "https://127.0.0.1:$port/ocsp" "$devid_pid"
stop "$devid_pid"
devid_pid=""

# --- openssl ocsp baseline ---------------------------------------------------------------------
# Signed by the issuing CA itself (same ECDSA key type as devid's delegated signer), from an
# index naming the same certificate as valid.
key_uri=$(jq -r '.issuers[-1].key' "$ca_dir/authority.json")
key_path=${key_uri#file:}
key_path=${key_path%%\?*}
passphrase_file=$(sed -n 's/.*passphrase-file=\([^&]*\).*/\1/p' <<<"$key_uri")
[[ -n $passphrase_file ]] || die "the issuing key does not use a passphrase file: $key_uri"
openssl pkey -in "$key_path" -passin "file:$passphrase_file" -out "$tmp/issuer.key"
expiry=$(date -u -d "$(openssl x509 -in "$leaf" -noout -enddate | cut -d= -f2)" +%y%m%d%H%M%SZ)
serial=$(openssl x509 -in "$leaf" -noout -serial | cut -d= -f2)
subject=$(openssl x509 -in "$leaf" -noout -subject -nameopt compat | sed 's/^subject=//')
printf 'V\t%s\t\t%s\tunknown\t%s\n' "$expiry" "$serial" "$subject" >"$tmp/index.txt"
# run_openssl LABEL PROCESSES: one responder with -multi PROCESSES, asked over PROCESSES
# connections (each process serves one keep-alive connection at a time; more connections than
# processes stall wrk).
run_openssl() {
  local label=$1 processes=$2 openssl_port
  openssl_port=$(free_port)
  log "starting openssl ocsp -multi $processes on port $openssl_port"
  openssl ocsp -index "$tmp/index.txt" -port "$openssl_port" -rsigner "$issuer" \
    -rkey "$tmp/issuer.key" -CA "$issuer" -nmin 60 -multi "$processes" >"$tmp/openssl.log" 2>&1 &
  openssl_pid=$!
  # openssl ocsp -port listens on [::] for IPv6 only: the baseline is asked over ::1 (loopback).
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/::1/$openssl_port") 2>/dev/null && break
    sleep 0.1
  done
  openssl ocsp -issuer "$issuer" -cert "$leaf" -no_nonce -url "http://[::1]:$openssl_port" \
    -CAfile "$chain" >"$OUT/$label-check.txt" 2>&1 || true
  grep -q ': good' "$OUT/$label-check.txt" ||
    die "openssl ocsp does not say good: $(cat "$OUT/$label-check.txt" "$tmp/openssl.log")"
  local pids
  mapfile -t pids < <(echo "$openssl_pid"; pgrep -P "$openssl_pid" || true)
  log "$label: wrk -t$THREADS -c$processes -d${DURATION}s POST http://[::1]:$openssl_port/"
  # No warmup: the responder has no cache to fill, and its workers spin on connections a previous
  # wrk run closed (they then answer nothing), so every baseline run gets a fresh responder.
  run_wrk "$label" "$processes" 0 "http://[::1]:$openssl_port/" "${pids[@]}"
  kill -TERM -- "-$openssl_pid" 2>/dev/null || true
  stop "$openssl_pid"
  openssl_pid=""
}
for processes in $MULTI; do run_openssl "openssl-multi$processes" "$processes"; done

devid_rate=$(jq .per_s "$OUT/devid.json")
best=$(jq -s 'max_by(.per_s) | .label' -r "$OUT"/openssl-multi*.json)
openssl_rate=$(jq .per_s "$OUT/$best.json")
ratio=$(awk -v a="$devid_rate" -v b="$openssl_rate" 'BEGIN { printf "%.1f", (b > 0) ? a / b : 0 }')
https_rate=$(jq .per_s "$OUT/devid-https.json")
https_ratio=$(awk -v a="$https_rate" -v b="$openssl_rate" 'BEGIN { printf "%.1f", (b > 0) ? a / b : 0 }')
echo "devid/openssl (best baseline, $best), both plain HTTP: ${ratio}x (target 10);" \
  "devid over HTTPS: ${https_ratio}x"
log "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
log "results in $OUT"
