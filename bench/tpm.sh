#!/usr/bin/env bash
# bench/tpm.sh measures TPM registrations per second end to end: one swtpm and tpm2-tools play
# the device (the DPS TPM flow, protocol notes §4.2: challenge, ActivateCredential + Import +
# Load, TPM2_HMAC for the SAS token, answer) against `devid serve`, COUNT times in a row. The
# same-run baseline is the device's TPM work alone, on the last blob, COUNT times; the server's
# own cost per challenge is devid_tpm_bench's (Google Benchmark), run last.
#
# Environment (defaults): COUNT=30 BUILD_DIR=build/release
set -euo pipefail

COUNT=${COUNT:-30}

# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
require_tools swtpm tpm2_createek tpm2_activatecredential tpm2_import tpm2_hmac curl jq
ensure_built "devid devid_tpm_bench" "$BUILD_DIR/devid" "$BUILD_DIR/bench/devid_tpm_bench"
devid=$BUILD_DIR/devid

make_workspace devid-tpm-bench
devid_pid=""
tpm_pid=""

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  stop "$devid_pid"
  stop_swtpm
  remove_workspace
}
trap cleanup EXIT

describe_machine

start_swtpm
export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$tpm_port"
t() { "tpm2_$@" >/dev/null; }
flush() { t flushcontext -t; t flushcontext -s; }

log "provisioning the EK and SRK at Azure's handles"
t createek -c 0x81010001 -G rsa -u "$tmp/ek.pub"
t createprimary -C o -g sha256 -G rsa2048:null:aes128cfb \
  -a 'restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda' \
  -c "$tmp/srk.ctx"
t evictcontrol -C o -c "$tmp/srk.ctx" 0x81000001
t readpublic -c 0x81000001 -o "$tmp/srk.pub"
flush

"$devid" serve --data-dir "$tmp/data" --listen 127.0.0.1:0 >"$tmp/serve.log" 2>&1 &
devid_pid=$!
port=$(wait_listening "$tmp/serve.log" "$devid_pid")
read_connection "$tmp/data"
reg_id=$("$devid" enrollment add --tpm-ek "$tmp/ek.pub" --tpm-srk "$tmp/srk.pub" -o json \
  --connection "$tmp/data/connection.json" | jq -r .registrationId)
body=$(jq -cn --arg id "$reg_id" --arg ek "$(base64 -w0 "$tmp/ek.pub")" \
  --arg srk "$(base64 -w0 "$tmp/srk.pub")" \
  '{registrationId: $id, tpm: {endorsementKey: $ek, storageRootKey: $srk}}')
url="https://$host_name:$port/$id_scope/registrations/$reg_id/register?api-version=2019-03-31"
sr=$(printf '%s' "$id_scope/registrations/$reg_id" | jq -sRr @uri)

# put AUTHORIZATION: the register PUT; prints the HTTP status, the answer in $tmp/answer.json.
put() {
  curl -sS --max-time 30 --cacert "$trust" --resolve "$host_name:$port:127.0.0.1" -X PUT "$url" \
    -H 'Content-Type: application/json' ${1:+-H "Authorization: $1"} --data-binary "$body" \
    -o "$tmp/answer.json" -w '%{http_code}'
}

# field N: the Nth (0-based) size-prefixed field of $tmp/blob, with its size, to stdout.
field() {
  local offset=0 size i hi lo
  for ((i = 0; i <= $1; i++)); do
    read -r hi lo < <(od -An -tu1 -j "$offset" -N 2 "$tmp/blob")
    size=$((hi * 256 + lo))
    ((i == $1)) && { tail -c +$((offset + 1)) "$tmp/blob" | head -c $((size + 2)); return; }
    offset=$((offset + 2 + size))
  done
}

# activate: what a DPS device does with $tmp/blob (protocol notes §4.3), then the SAS token.
activate() {
  { printf '\xba\xdc\xc0\xde\x00\x00\x00\x01'; field 0; field 1; } >"$tmp/cred.blob"
  field 2 >"$tmp/dup.priv"
  field 3 >"$tmp/seed.bin"
  field 4 >"$tmp/id.pub"
  flush
  t startauthsession --policy-session -S "$tmp/session.ctx"
  t policysecret -S "$tmp/session.ctx" -c e
  t activatecredential -c 0x81000001 -C 0x81010001 -i "$tmp/cred.blob" -o "$tmp/inner.key" \
    -P "session:$tmp/session.ctx"
  t flushcontext "$tmp/session.ctx"
  t import -C 0x81000001 -u "$tmp/id.pub" -i "$tmp/dup.priv" -s "$tmp/seed.bin" \
    -k "$tmp/inner.key" -r "$tmp/id.priv"
  t load -C 0x81000001 -u "$tmp/id.pub" -r "$tmp/id.priv" -c "$tmp/id.ctx"
  flush
  se=$(($(date +%s) + 600))
  printf '%s\n%s' "$sr" "$se" >"$tmp/msg.bin"
  t hmac -c "$tmp/id.ctx" -g sha256 -o "$tmp/sig.bin" "$tmp/msg.bin"
  flush
  token="SharedAccessSignature sr=$sr&sig=$(base64 -w0 "$tmp/sig.bin" | jq -sRr @uri)&se=$se&skn=registration"
}

register() {
  [[ $(put "") == 401 ]] || die "the challenge was not answered with 401: $(cat "$tmp/answer.json")"
  jq -r .authenticationKey "$tmp/answer.json" | base64 -d >"$tmp/blob"
  activate
  [[ $(put "$token") == 202 ]] || die "the answer was refused: $(cat "$tmp/answer.json")"
}

log "warmup: 3 registrations"
for _ in 1 2 3; do register; done
log "measured: $COUNT registrations"
start=$(date +%s.%N)
for ((n = 0; n < COUNT; n++)); do register; done
end=$(date +%s.%N)
log "baseline: the device's TPM work alone, $COUNT times"
base_start=$(date +%s.%N)
for ((n = 0; n < COUNT; n++)); do activate; done
base_end=$(date +%s.%N)
server_cpu=$(awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$devid_pid/stat")

jq -n --arg machine "$machine" --argjson count "$COUNT" \
  --argjson e2e "$(awk "BEGIN { print $end - $start }")" \
  --argjson base "$(awk "BEGIN { print $base_end - $base_start }")" --argjson server_cpu_s "$server_cpu" \
  '{machine: $machine, registrations: $count, elapsed_s: $e2e,
    registrations_per_s: ($count / $e2e), device_tpm_work_s: $base,
    device_tpm_work_per_s: ($count / $base), devid_cpu_s_total: $server_cpu_s}' \
  | tee "$OUT/tpm-e2e.json"

log "server side per challenge (devid_tpm_bench)"
"$BUILD_DIR/bench/devid_tpm_bench" --benchmark_min_time=1 \
  --benchmark_out="$OUT/tpm-bench.json" --benchmark_out_format=json
log "results in $OUT"
