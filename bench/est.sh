#!/usr/bin/env bash
# bench/est.sh measures EST certificate issuance (RFC 7030 simpleenroll: CSR in, certificate out)
# over HTTPS keep-alive, with the CA's issuing key in an encrypted file and then in a SoftHSM2
# token, each beside its baseline from the same run:
#   - `openssl speed -seconds 3 ecdsap256` (sign and verify on one core; per second of CPU time,
#     openssl's default, and per second of wall-clock time with -elapsed);
#   - the same issuing key signing in a loop through devid's own key store (devid_sign_bench),
#     with SIGN_THREADS threads: for SoftHSM2 that is SoftHSM2's own signing rate.
# Everything runs on 127.0.0.1, bounded in count and time; results go to $OUT (default: a new temp
# dir) as JSON, and a summary is printed.
#
# Environment (defaults): DEVICES=10000 COUNT=20000 WARMUP=2000 CONCURRENCY=64 THREADS=1
#   TIMEOUT=300 MODES="file softhsm" SIGN_THREADS="2 32" SIGN_SECONDS=3
#   BUILD_DIR=build/release (configured with the release preset unless it has the tools already)
#   HANDLER_THREADS="" sets [server] handler_threads in a generated devid config
#   PERF=1 records a CPU profile of devid during each measured run (perf record, software clock)
set -euo pipefail

DEVICES=${DEVICES:-10000}
COUNT=${COUNT:-20000}
WARMUP=${WARMUP:-2000}
CONCURRENCY=${CONCURRENCY:-64}
THREADS=${THREADS:-1}
TIMEOUT=${TIMEOUT:-300}
MODES=${MODES:-file softhsm}
SIGN_THREADS=${SIGN_THREADS:-2 32}
SIGN_SECONDS=${SIGN_SECONDS:-3}
HANDLER_THREADS=${HANDLER_THREADS:-}
PERF=${PERF:-0}

# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
require_tools openssl jq softhsm2-util
[[ $PERF != 1 ]] || require_tools perf
ensure_built "devid devid_register_load devid_sign_bench" "$BUILD_DIR/devid" \
  "$BUILD_DIR/bench/devid_register_load" "$BUILD_DIR/bench/devid_sign_bench"
devid=$BUILD_DIR/devid
load=$BUILD_DIR/bench/devid_register_load
sign=$BUILD_DIR/bench/devid_sign_bench
# The SoftHSM2 module the build found (CMake's find_library, as the tests use).
module=$(sed -n 's/^DEVID_SOFTHSM2_MODULE:[A-Z]*=//p' "$BUILD_DIR/CMakeCache.txt")
[[ -n $module && -f $module ]] || die "no SoftHSM2 module in $BUILD_DIR/CMakeCache.txt"

make_workspace devid-est-bench
devid_pid=""
perf_pid=""

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  stop "$perf_pid" INT
  stop "$devid_pid"
  remove_workspace
}
trap cleanup EXIT

describe_machine
echo "$machine" >"$OUT/machine.txt"

# --- baseline: openssl speed -------------------------------------------------------------------
log "openssl speed -seconds 3 ecdsap256 (CPU time, then -elapsed)"
read -r cpu_sign cpu_verify < <(ecdsa_speed cpu)
read -r wall_sign wall_verify < <(ecdsa_speed elapsed -elapsed)
jq -n --arg s1 "$cpu_sign" --arg v1 "$cpu_verify" --arg s2 "$wall_sign" --arg v2 "$wall_verify" \
  '{cpu_time: {sign_per_s: ($s1|tonumber), verify_per_s: ($v1|tonumber)},
    elapsed: {sign_per_s: ($s2|tonumber), verify_per_s: ($v2|tonumber)}}' >"$OUT/openssl-speed.json"

for mode in $MODES; do
  data=$tmp/$mode/data
  mkdir -p "$tmp/$mode"
  init=(ca init --data-dir "$data" --base-url https://localhost)
  case $mode in
    file) ;;
    softhsm)
      hsm=$tmp/softhsm/token
      mkdir -p "$hsm/tokens"
      printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
        "$hsm" >"$hsm/softhsm2.conf"
      export SOFTHSM2_CONF=$hsm/softhsm2.conf
      printf '1234\n' >"$hsm/pin"
      softhsm2-util --init-token --free --label devid-bench --pin 1234 --so-pin 5678 >/dev/null
      uri="pkcs11:token=devid-bench;object=OBJECT?pin-source=$hsm/pin"
      init+=(--pkcs11-module "$module" --root-key "${uri/OBJECT/devid-root}"
             --issuing-key "${uri/OBJECT/devid-issuing}")
      ;;
    *) die "unknown mode $mode (file, softhsm)" ;;
  esac
  log "[$mode] devid ca init"
  "$devid" "${init[@]}" >/dev/null
  key_uri=$(jq -r '.issuers[-1].key' "$data/ca/authority/authority.json")

  for n in $SIGN_THREADS; do
    log "[$mode] devid_sign_bench: the issuing key, $n threads, $SIGN_SECONDS s"
    "$sign" --key "$key_uri" --threads "$n" --seconds "$SIGN_SECONDS" --label "sign-$mode-$n" \
      --json-out "$OUT/sign-$mode-$n.json" >&2
  done

  args=(serve --data-dir "$data" --listen 127.0.0.1:0)
  if [[ -n $HANDLER_THREADS ]]; then
    printf '[server]\nhandler_threads = %d\n' "$HANDLER_THREADS" >"$tmp/$mode/devid.toml"
    args+=(--config "$tmp/$mode/devid.toml")
  fi
  log "[$mode] starting devid serve (data dir $data)"
  "$devid" "${args[@]}" >"$tmp/$mode/devid.log" 2>&1 &
  devid_pid=$!
  port=$(wait_listening "$tmp/$mode/devid.log" "$devid_pid")
  connection=$data/connection.json
  common=(--host 127.0.0.1 --port "$port" --trust-bundle "$(jq -r .trustBundle "$connection")"
          --id-scope "$(jq -r .idScope "$connection")" --group-key "$(openssl rand -base64 32)"
          --operation est-enroll --id-prefix est- --devices "$DEVICES"
          --concurrency "$CONCURRENCY" --threads "$THREADS" --timeout "$TIMEOUT")
  log "[$mode] creating $DEVICES enrollments, then $WARMUP warmup enrollments over them"
  "$load" "${common[@]}" --create-enrollments \
    --connection-string "$(jq -r .serviceConnectionString "$connection")" --count "$WARMUP" \
    --label "warmup-$mode" --json-out "$OUT/est-$mode-warmup.json" >/dev/null

  if [[ $PERF == 1 ]]; then
    perf record -e cpu-clock -F 499 --call-graph dwarf,16384 -p "$devid_pid" \
      -o "$OUT/perf-$mode.data" >/dev/null 2>&1 &
    perf_pid=$!
    sleep 1
  fi
  log "[$mode] measured: $COUNT enrollments of $DEVICES devices, concurrency $CONCURRENCY"
  "$load" "${common[@]}" --count "$COUNT" --label "est-$mode" --cpu-pid "$devid_pid" \
    --json-out "$OUT/est-$mode.json" >"$OUT/est-$mode.txt" || true
  head -1 "$OUT/est-$mode.txt"
  stop "$perf_pid" INT
  perf_pid=""
  stop "$devid_pid"
  devid_pid=""
done

# --- summary -----------------------------------------------------------------------------------
echo
log "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "results in $OUT"
echo "machine: $machine"
jq -r '"openssl speed ecdsap256, one core: \(.cpu_time.sign_per_s) sign/s and " +
  "\(.cpu_time.verify_per_s) verify/s per CPU second; \(.elapsed.sign_per_s) sign/s and " +
  "\(.elapsed.verify_per_s) verify/s per wall-clock second (-elapsed)"' "$OUT/openssl-speed.json"
for mode in $MODES; do
  for n in $SIGN_THREADS; do
    jq -r '"\(.label): \(.signatures_per_s) signatures/s, \(.signatures_per_cpu_s) per CPU " +
      "second (p50 \(.latency_ms.p50) ms, p99 \(.latency_ms.p99) ms)"' "$OUT/sign-$mode-$n.json"
  done
  [[ -f $OUT/est-$mode.json ]] || continue
  jq -r '"\(.label): \(.ok)/\(.requests) ok, errors \(.errors|tostring), \(.elapsed_s) s, " +
    "\(.ok_per_s) certificates/s, p50 \(.latency_ms.p50) ms, p90 \(.latency_ms.p90) ms, " +
    "p99 \(.latency_ms.p99) ms, max \(.latency_ms.max) ms; cpu s: server \(.server_cpu_s), " +
    "client \(.client_cpu_s.user + .client_cpu_s.sys | . * 100 | round / 100), " +
    "other processes \(.machine_cpu_s.other_processes) of \(.machine_cpu_s.total); " +
    "\(.ok / .server_cpu_s | round) certificates per server CPU second"' \
    "$OUT/est-$mode.json"
done
exit 0
