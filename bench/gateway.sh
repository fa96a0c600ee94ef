#!/usr/bin/env bash
# bench/gateway.sh measures MQTT connects/s (TLS connect + CONNECT with credentials + CONNACK +
# DISCONNECT) through Mosquitto 2.0 on one TLS listener, five ways, same client, same run:
#   anonymous       allow_anonymous true, no plugin (the issue's baseline)
#   password        Mosquitto's own password_file (the built-in authentication)
#   devid           the devid plugin admitting group devices provisioned through devid (IoT Hub SAS)
#   anonymous-mtls  as anonymous, but the listener requires a client certificate (each device's
#                   devid-issued one, from EST): the baseline for
#   devid-x509      the devid plugin admitting the devices by those certificates
# The broker serves devid's own server certificate; the client verifies it against devid's trust
# bundle. Rounds are interleaved so a change in machine load affects all five alike. Results go
# to $OUT (default: a new temp dir) as JSON lines, and a summary is printed.
#
# Environment (defaults): DEVICES=64 THREADS=8 DURATION=10 WARMUP=2 ROUNDS=3
#   BUILD_DIR=build/release (configured with the release preset, DEVID_BENCH=ON, when needed)
#   PLUGIN=$BUILD_DIR/libdevid_mosquitto.so
set -euo pipefail

DEVICES=${DEVICES:-64}
THREADS=${THREADS:-8}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
ROUNDS=${ROUNDS:-3}

# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
require_tools curl jq mosquitto mosquitto_passwd
ensure_built "devid devid_mosquitto devid_register_load devid_mqtt_connect_load" \
  "$BUILD_DIR/devid" "$BUILD_DIR/libdevid_mosquitto.so" "$BUILD_DIR/bench/devid_mqtt_connect_load"
devid=$BUILD_DIR/devid
register=$BUILD_DIR/bench/devid_register_load
load=$BUILD_DIR/bench/devid_mqtt_connect_load
plugin=$(realpath "${PLUGIN:-$BUILD_DIR/libdevid_mosquitto.so}")

make_workspace devid-gw-bench
devid_pid=""
broker_pid=""

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  stop "$broker_pid"
  stop "$devid_pid"
  remove_workspace
}
trap cleanup EXIT

describe_machine

# --- devid: a group and DEVICES provisioned devices --------------------------------------------
data=$tmp/data
"$devid" serve --data-dir "$data" --listen 127.0.0.1:0 >"$tmp/devid.log" 2>&1 &
devid_pid=$!
port=$(wait_listening "$tmp/devid.log" "$devid_pid")
connection=$data/connection.json
trust=$(jq -r .trustBundle "$connection")
connection_string=$(jq -r .serviceConnectionString "$connection")
host_name=$(sed -n 's/.*HostName=\([^;]*\).*/\1/p' <<<"$connection_string")
group_key=$(openssl rand -base64 32)
service_token=$("$register" --make-service-token --connection-string "$connection_string")
curl -sS --fail-with-body --max-time 30 --cacert "$trust" \
  --resolve "$host_name:$port:127.0.0.1" \
  -X PUT "https://$host_name:$port/enrollmentGroups/gw?api-version=2021-10-01" \
  -H "Authorization: $service_token" -H 'Content-Type: application/json' \
  --data-binary "{\"enrollmentGroupId\":\"gw\",\"attestation\":{\"type\":\"symmetricKey\",\
\"symmetricKey\":{\"primaryKey\":\"$group_key\"}}}" -o "$tmp/group.json"
log "provisioning $DEVICES devices"
"$register" --host 127.0.0.1 --port "$port" --trust-bundle "$trust" \
  --id-scope "$(jq -r .idScope "$connection")" --group-key "$group_key" --devices "$DEVICES" \
  --id-prefix gw- --concurrency 8 --label provision >/dev/null
# devid keeps running (idle): the plugin reads its SQLite store beside it, as on a gateway node.

# --- a devid-issued client certificate per device, through EST simpleenroll ---------------------
id_scope=$(jq -r .idScope "$connection")
certs=$tmp/certs
mkdir -p "$certs"
# hmac_base64 KEY_BASE64: HMAC-SHA256 of stdin under the key, base64.
hmac_base64() {
  openssl dgst -sha256 -mac HMAC -macopt "hexkey:$(base64 -d <<<"$1" | od -An -tx1 | tr -d ' \n')" \
    -binary | base64 -w0
}
log "enrolling $DEVICES client certificates through EST"
last=$((DEVICES - 1))
width=${#last}  # device IDs are zero-padded to the width of the last, as devid_register_load does
for i in $(seq 0 $((DEVICES - 1))); do
  id=$(printf "gw-%0${width}d" "$i")
  key=$(printf '%s' "$id" | hmac_base64 "$group_key")  # the group-derived device key (DPS)
  se=$(( $(date +%s) + 3600 ))
  sig=$(printf '%s\n%s' "$id_scope/registrations/$id" "$se" | hmac_base64 "$key" |
        sed 's/+/%2B/g; s|/|%2F|g; s/=/%3D/g')
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$certs/$id.key" \
    -subj "/CN=$id" -outform DER 2>/dev/null | openssl base64 >"$certs/$id.csr"
  curl -sS --fail-with-body --max-time 30 --cacert "$trust" --resolve "$host_name:$port:127.0.0.1" \
    -X POST "https://$host_name:$port/.well-known/est/simpleenroll" \
    -H 'Content-Type: application/pkcs10' --data-binary "@$certs/$id.csr" \
    -H "Authorization: SharedAccessSignature sr=$id_scope/registrations/$id&sig=$sig&se=$se&skn=registration" \
    -o "$certs/$id.p7"
  openssl base64 -d -in "$certs/$id.p7" | openssl pkcs7 -inform DER -print_certs -out "$certs/$id.pem"
  # The device sends its chain: the broker's cafile holds only the trust bundle's roots.
  cat "$data"/ca/authority/certs/issuing-*.pem >>"$certs/$id.pem"
done

# --- the broker, three ways, same listener -----------------------------------------------------
mqtt_port=$(free_port)
mosquitto_passwd -b -c "$tmp/passwords" bench bench-password 2>/dev/null
run_broker() {
  local mode=$1 round=$2 conf=$tmp/mosquitto-$1.conf
  {
    echo "per_listener_settings false"
    echo "persistence false"
    echo "listener $mqtt_port 127.0.0.1"
    echo "certfile $data/tls/server.pem"
    echo "keyfile $data/tls/server.key"
    echo "log_dest file $tmp/mosquitto-$mode.log"
    echo "log_type error"
    echo "log_type warning"
    echo "user $(id -un)"
    case $mode in
      anonymous) echo "allow_anonymous true" ;;
      password) echo "allow_anonymous false"; echo "password_file $tmp/passwords" ;;
      devid|devid-x509) echo "allow_anonymous false"; echo "plugin $plugin"
             echo "plugin_opt_store sqlite://$data/devid.db" ;;
      anonymous-mtls) echo "allow_anonymous true" ;;
    esac
    case $mode in
      *-mtls|*-x509) echo "cafile $trust"; echo "require_certificate true" ;;
    esac
  } >"$conf"
  mosquitto -c "$conf" >>"$tmp/mosquitto-$mode.out" 2>&1 &
  broker_pid=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$mqtt_port") 2>/dev/null && break
    kill -0 "$broker_pid" 2>/dev/null || die "mosquitto ($mode) exited: $(cat "$tmp/mosquitto-$mode.out")"
    sleep 0.1
  done
  local auth=(--auth "$mode")
  case $mode in
    password) auth+=(--username bench --password bench-password) ;;
    devid) auth=(--auth sas --hub "$host_name" --group-key "$group_key" --devices "$DEVICES"
                 --id-prefix gw-) ;;
    anonymous-mtls) auth+=(--cert-dir "$certs" --devices "$DEVICES" --id-prefix gw-) ;;
    devid-x509) auth=(--auth x509 --hub "$host_name" --cert-dir "$certs" --devices "$DEVICES"
                      --id-prefix gw-) ;;
  esac
  "$load" --port "$mqtt_port" --cafile "$trust" --threads "$THREADS" --duration "$DURATION" \
    --warmup "$WARMUP" --label "$mode-$round" "${auth[@]}" | tee -a "$OUT/results.jsonl" ||
    log "$mode round $round had failed connects (see $tmp/mosquitto-$mode.log)"
  stop "$broker_pid"
  broker_pid=""
}
for round in $(seq "$ROUNDS"); do
  for mode in anonymous password devid anonymous-mtls devid-x509; do
    run_broker "$mode" "$round"
  done
done

log "summary (connects/s, median of $ROUNDS rounds):"
jq -rs 'group_by(.label | sub("-[0-9]+$"; "")) | map({mode: (.[0].label | sub("-[0-9]+$"; "")),
        rates: (map(.connects_per_s) | sort)}) | map(.median = .rates[(.rates | length) / 2 | floor])
        | .[] | "\(.mode): \(.median) (rounds: \(.rates | map(tostring) | join(", ")))"' \
  "$OUT/results.jsonl"
log "load after: $(cut -d' ' -f1-3 /proc/loadavg); results in $OUT"
