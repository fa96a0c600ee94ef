#!/usr/bin/env bash
# bench/sdk.sh measures the device SDK's key stores on the device side:
#   1. SAS tokens per second (devid_sas_token_bench) with the symmetric key in software (OpenSSL
#      HMAC in process), in a SoftHSM2 token (CKM_SHA256_HMAC; the key stored there by
#      `devid device key import-symmetric`) and in swtpm (TPM2_HMAC; the key installed through a
#      DPS activation blob). Same-run baseline: `openssl speed -hmac sha256` on 64-byte inputs.
#   2. TLS client handshakes per second (devid_tls_client_bench) through the SDK's HttpsClient
#      with an ECDSA P-256 client key as a `file:` key vs a SoftHSM2 key, against
#      `openssl s_server -Verify 1 -www` (a new connection and GET / each). Same-run baselines:
#      `openssl s_time -new` with the software key against the same server, and the signature
#      alone with each key (devid_sign_bench: what CertificateVerify costs).
#
# Environment (defaults): SECONDS_EACH=5 BUILD_DIR=build/release
set -euo pipefail

SECONDS_EACH=${SECONDS_EACH:-5}

# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
require_tools openssl softhsm2-util pkcs11-tool swtpm jq
ensure_built "devid devid_sas_token_bench devid_tls_client_bench devid_sign_bench" \
  "$BUILD_DIR/devid" "$BUILD_DIR/bench/devid_sas_token_bench" \
  "$BUILD_DIR/bench/devid_tls_client_bench" "$BUILD_DIR/bench/devid_sign_bench"
devid=$BUILD_DIR/devid
sas_bench=$BUILD_DIR/bench/devid_sas_token_bench
tls_bench=$BUILD_DIR/bench/devid_tls_client_bench
sign_bench=$BUILD_DIR/bench/devid_sign_bench
module=$(find /usr/lib /usr/local/lib -name libsofthsm2.so -print -quit 2>/dev/null)
[[ -n $module ]] || die "libsofthsm2.so not found"

make_workspace devid-sdk-bench
tpm_pid=""
server_pid=""

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  stop "$server_pid"
  stop_swtpm
  remove_workspace
}
trap cleanup EXIT

describe_machine

# The SoftHSM2 token, in the workspace.
mkdir -p "$tmp/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
  "$tmp/tokens" >"$tmp/softhsm2.conf"
export SOFTHSM2_CONF=$tmp/softhsm2.conf
softhsm2-util --init-token --free --label bench --pin 1234 --so-pin 5678 >/dev/null
printf '1234\n' >"$tmp/pin"
token_uri() { echo "pkcs11:token=bench;object=$1?pin-source=$tmp/pin&module-path=$module"; }

# A 64-byte key, the size of a DPS individual enrollment's key.
(umask 077 && openssl rand -base64 64 | tr -d '\n' >"$tmp/device.key")

start_swtpm

log "SAS tokens: baseline openssl speed -hmac sha256, 64-byte inputs"
openssl speed -seconds "$SECONDS_EACH" -bytes 64 -hmac sha256 2>/dev/null | tail -n 2 |
  tee "$OUT/openssl-speed-hmac.txt"

log "SAS tokens: the key imported into SoftHSM2 with devid device key import-symmetric"
"$devid" device key import-symmetric --key "$(token_uri sas)" \
  --symmetric-key-file "$tmp/device.key" -o json >"$OUT/import.json"

for threads in 1 2; do
  "$sas_bench" --software "$tmp/device.key" --threads "$threads" --seconds "$SECONDS_EACH" \
    --label "software" --json-out "$OUT/sas-software-$threads.json"
  "$sas_bench" --pkcs11 "$(token_uri sas)" --key-file "$tmp/device.key" --threads "$threads" \
    --seconds "$SECONDS_EACH" --label "softhsm2" --json-out "$OUT/sas-softhsm2-$threads.json"
done
"$sas_bench" --tcti "swtpm:host=127.0.0.1,port=$tpm_port" --seconds "$SECONDS_EACH" \
  --label "swtpm" --json-out "$OUT/sas-swtpm-1.json"

log "TLS: a bench CA, a server certificate for localhost, client certificates for both keys"
export DEVID_BENCH_PASSPHRASE=bench-passphrase
ossl() { openssl "$@" 2>/dev/null; }
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=bench CA" \
  -keyout "$tmp/ca.key" -out "$tmp/ca.pem" -days 1 \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign
printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$tmp/server.ext"
printf 'extendedKeyUsage=clientAuth\n' >"$tmp/client.ext"
ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
  -keyout "$tmp/server.key" -out "$tmp/server.csr"
ossl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -days 1 \
  -extfile "$tmp/server.ext" -out "$tmp/server.pem"
# Software: an encrypted PKCS #8 file, as the file: key store keeps keys.
ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -aes-256-cbc \
  -pass env:DEVID_BENCH_PASSPHRASE -out "$tmp/client-sw.key"
chmod 600 "$tmp/client-sw.key"
ossl pkey -in "$tmp/client-sw.key" -passin env:DEVID_BENCH_PASSPHRASE -out "$tmp/client-plain.key"
ossl req -new -key "$tmp/client-plain.key" -subj /CN=bench-device-sw |
  ossl x509 -req -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -days 1 -extfile "$tmp/client.ext" \
    -out "$tmp/client-sw.pem"
# SoftHSM2: a P-256 key pair made in the token; the certificate carries its public key.
pkcs11-tool --module "$module" --token-label bench --login --pin 1234 --keypairgen \
  --key-type EC:prime256v1 --label tls --id 01 --usage-sign >/dev/null 2>&1
pkcs11-tool --module "$module" --token-label bench --read-object --type pubkey --id 01 \
  -o "$tmp/client-hsm.pub.der" >/dev/null 2>&1
ossl pkey -pubin -inform DER -in "$tmp/client-hsm.pub.der" -out "$tmp/client-hsm.pub.pem"
ossl x509 -new -subj /CN=bench-device-hsm -force_pubkey "$tmp/client-hsm.pub.pem" \
  -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -days 1 -extfile "$tmp/client.ext" \
  -out "$tmp/client-hsm.pem"

tls_port=$(free_port)
openssl s_server -quiet -accept "$tls_port" -cert "$tmp/server.pem" -key "$tmp/server.key" \
  -CAfile "$tmp/ca.pem" -Verify 1 -verify_return_error -www >"$tmp/s_server.log" 2>&1 &
server_pid=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$tls_port") 2>/dev/null && break; sleep 0.1; done

log "TLS: baseline openssl s_time -new, software key"
openssl s_time -connect "127.0.0.1:$tls_port" -new -time "$SECONDS_EACH" -www / \
  -cert "$tmp/client-sw.pem" -key "$tmp/client-plain.key" -CAfile "$tmp/ca.pem" 2>/dev/null |
  grep 'connections' | tee "$OUT/s_time.txt"

log "TLS: baseline, the client key's signature alone (devid_sign_bench)"
sw_key="file:$tmp/client-sw.key?passphrase-env=DEVID_BENCH_PASSPHRASE"
"$sign_bench" --key "$sw_key" --seconds "$SECONDS_EACH" --message-bytes 130 --label software \
  --json-out "$OUT/sign-software.json"
"$sign_bench" --key "$(token_uri tls)" --seconds "$SECONDS_EACH" --message-bytes 130 \
  --label softhsm2 --json-out "$OUT/sign-softhsm2.json"

tls_run() {
  "$tls_bench" --port "$tls_port" --server-name localhost --trust-bundle "$tmp/ca.pem" \
    --seconds "$SECONDS_EACH" "$@"
}
for threads in 1 2; do
  tls_run --cert "$tmp/client-sw.pem" --threads "$threads" --label software \
    --key "$sw_key" --json-out "$OUT/tls-software-$threads.json"
  tls_run --cert "$tmp/client-hsm.pem" --threads "$threads" --label softhsm2 \
    --key "$(token_uri tls)" --json-out "$OUT/tls-softhsm2-$threads.json"
done
stop "$server_pid"
server_pid=""

jq -s --arg machine "$machine" '{machine: $machine, runs: .}' "$OUT"/sas-*.json \
  "$OUT"/sign-*.json "$OUT"/tls-*.json >"$OUT/sdk.json"
log "results in $OUT"
