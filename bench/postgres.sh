#!/usr/bin/env bash
# bench/postgres.sh measures devid's durable SAS registrations per second on PostgreSQL, with one
# node and with two nodes on one database, beside the same load on SQLite in the same run; then
# registrations of individually enrolled devices with SCALES enrollments loaded (10,000 against
# 1,000,000 by default), and the server's memory after them. Everything runs on 127.0.0.1 against
# a throwaway PostgreSQL cluster with fsync on (scripts/postgres-test-cluster.sh, DURABLE=1).
# Every node is started and loaded first; then ROUNDS rounds each run every measurement once, in
# turn, so a change in the machine's other load falls on all of them alike. Results go to $OUT
# (default: a new temp dir) as JSON, one file per measurement and round, and a summary with the
# median of the rounds is printed.
#
# Environment (defaults): ROUNDS=5 DEVICES=3000 (group registrations per measurement and round)
#   CONCURRENCY=64 WARMUP=500 TIMEOUT=300
#   SCALES="10000 1000000" SAMPLE=2000 (enrolled devices registered per scale and round, every
#   (scale / ROUNDS / SAMPLE)-th of the round's own block, so the sample spans the table)
#   BUILD_DIR=build/release (configured with the release preset unless it has the tools already)
#   STEPS="sqlite pg1 pg2 scale" (a subset runs only those measurements)
set -euo pipefail

ROUNDS=${ROUNDS:-5}
DEVICES=${DEVICES:-3000}
CONCURRENCY=${CONCURRENCY:-64}
WARMUP=${WARMUP:-500}
TIMEOUT=${TIMEOUT:-300}
SCALES=${SCALES:-10000 1000000}
SAMPLE=${SAMPLE:-2000}
STEPS=${STEPS:-sqlite pg1 pg2 scale}

# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
require_tools curl openssl jq psql
ensure_built "devid devid_register_load" "$BUILD_DIR/devid" "$BUILD_DIR/bench/devid_register_load"
devid=$BUILD_DIR/devid
load=$BUILD_DIR/bench/devid_register_load

make_workspace devid-pg-bench
# The cluster's directory must be reachable by the postgres user, so not inside $tmp (0700).
pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/devid-pg-bench-cluster.XXXXXX")
chmod 755 "$pg_dir"
node_pids=()

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  local pid
  for pid in "${node_pids[@]}"; do stop "$pid"; done
  scripts/postgres-test-cluster.sh stop "$pg_dir" || true
  remove_workspace
}
trap cleanup EXIT

describe_machine
echo "$machine" >"$OUT/machine.txt"
log "starting PostgreSQL (fsync on)"
pg_url=$(DURABLE=1 scripts/postgres-test-cluster.sh start "$pg_dir")
pg_base=${pg_url%/*}
psql -qAt "$pg_url" -c 'SELECT version()' >"$OUT/postgres-version.txt"
psql -qAt "$pg_url" -c 'SHOW fsync; SHOW synchronous_commit; SHOW shared_buffers' |
  paste -sd' ' >>"$OUT/postgres-version.txt"
log "$(paste -sd' ' "$OUT/postgres-version.txt")"

# postgres_cpu prints the CPU seconds used so far by the cluster's processes (its postmaster and
# the backends serving devid's pooled connections).
postgres_cpu() {
  local postmaster pid total=0 ticks used
  postmaster=$(head -1 "$pg_dir/data/postmaster.pid")
  ticks=$(getconf CLK_TCK)
  for pid in "$postmaster" $(pgrep -P "$postmaster"); do
    # utime and stime, fields 14 and 15 of /proc/PID/stat (a postgres comm has no spaces).
    used=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || true)
    total=$((total + ${used:-0}))
  done
  awk -v t="$total" -v h="$ticks" 'BEGIN { printf "%.2f", t / h }'
}

# new_database NAME creates database NAME and prints its URL.
new_database() {
  psql -q "$pg_url" -c "CREATE DATABASE $1"
  echo "$pg_base/$1"
}

# start_node NAME URL: devid serve with data dir $tmp/NAME on store URL ("" = the data dir's
# SQLite file); records its port, pid, trust bundle and ID scope under NAME.
declare -A node_port node_pid node_trust node_scope
start_node() {
  local name=$1 url=$2 config=$tmp/$1.toml
  if [[ -n $url ]]; then printf '[store]\nurl = "%s"\n' "$url" >"$config"; else : >"$config"; fi
  "$devid" serve --data-dir "$tmp/$name" --listen 127.0.0.1:0 --config "$config" \
    >"$tmp/$name.log" 2>&1 &
  node_pid[$name]=$!
  node_pids+=("$!")
  node_port[$name]=$(wait_listening "$tmp/$name.log" "${node_pid[$name]}")
  read_connection "$tmp/$name"
  node_trust[$name]=$trust
  node_scope[$name]=$id_scope
}

# stop_nodes stops every node started so far.
stop_nodes() {
  local pid
  for pid in "${node_pids[@]}"; do stop "$pid"; done
  node_pids=()
}

# use_node NAME points read_connection's variables (service_put, run_load) at node NAME.
use_node() {
  read_connection "$tmp/$1"
}

group_key=$(openssl rand -base64 32)
# create_group NAME creates the symmetric-key group "bench" through node NAME.
create_group() {
  use_node "$1"
  service_put "$load" "${node_port[$1]}" /enrollmentGroups/bench "{\"enrollmentGroupId\":\
\"bench\",\"attestation\":{\"type\":\"symmetricKey\",\"symmetricKey\":{\"primaryKey\":\
\"$group_key\"}}}"
}

# run_load NODE LABEL CONCURRENCY ARGS...: WARMUP group registrations through NODE, then the
# measured run (ARGS say which devices), results in $OUT/LABEL.json and .txt.
run_load() {
  local node=$1 label=$2 concurrency=$3
  shift 3
  local common=(--host 127.0.0.1 --port "${node_port[$node]}" --trust-bundle "${node_trust[$node]}"
                --id-scope "${node_scope[$node]}" --group-key "$group_key"
                --concurrency "$concurrency" --threads 1 --timeout "$TIMEOUT")
  "$load" "${common[@]}" --devices "$WARMUP" --id-prefix "warm-$label-" --label warmup \
    >/dev/null
  "$load" "${common[@]}" "$@" --label "$label" --cpu-pid "${node_pid[$node]}" \
    --json-out "$OUT/$label.json" >"$OUT/$label.txt" || true
}

# record_pg_cpu LABEL BEFORE adds the cluster's CPU seconds since BEFORE to $OUT/LABEL.json.
record_pg_cpu() {
  local used
  used=$(awk -v a="$(postgres_cpu)" -v b="$2" 'BEGIN { printf "%.2f", a - b }')
  add_json "$1" --argjson s "$used" '. + {postgres_cpu_s: $s}'
}

# add_json LABEL ARGS...: merges jq's object ARGS (with --argjson variables) into $OUT/LABEL.json.
add_json() {
  local label=$1
  shift
  jq "$@" "$OUT/$label.json" >"$OUT/$label.tmp" && mv "$OUT/$label.tmp" "$OUT/$label.json"
}

# load_enrollments URL SCALE WIDTH: SCALE individual enrollments in ROUNDS blocks, IDs
# enr-<round>-<number of WIDTH digits>. One enrollment made through the API is the template; the
# rest copy its row in one INSERT, each with its own ID and the key derived from the group key as
# devices derive theirs (an HMAC of the registration ID), so the load generator can sign every
# device's token. The column list comes from the catalog, so the copy follows the migrations.
load_enrollments() {
  local url=$1 scale=$2 width=$3
  psql -q -v ON_ERROR_STOP=1 "$url" -c 'CREATE EXTENSION IF NOT EXISTS pgcrypto' -c "
    DO \$\$
    DECLARE columns text;
    BEGIN
      SELECT string_agg(CASE column_name WHEN 'registration_id' THEN 'ids.id'
                          WHEN 'symmetric_key_primary' THEN 'ids.key'
                          WHEN 'etag' THEN 'md5(ids.id)'
                          ELSE 't.' || quote_ident(column_name) END, ', '
                        ORDER BY ordinal_position)
        INTO columns FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = 'enrollments';
      EXECUTE format('INSERT INTO enrollments SELECT %s FROM enrollments AS t, (SELECT id, '
        'encode(hmac(convert_to(id, ''UTF8''), decode(%L, ''base64''), ''sha256''), '
        '''base64'') AS key FROM (SELECT ''enr-'' || (i / %s) || ''-'' || '
        'lpad(mod(i, %s)::text, %s, ''0'') AS id FROM generate_series(0, %s - 1) AS i) AS n) AS ids '
        'WHERE t.registration_id = ''template''', columns, '$group_key', $((scale / ROUNDS)),
        $((scale / ROUNDS)), $width, $scale);
    END
    \$\$" -c 'VACUUM ANALYZE enrollments'
}

has_step() { [[ " $STEPS " == *" $1 "* ]]; }

# --- every node, started and loaded before any measurement ------------------------------------
if has_step sqlite; then
  start_node sqlite ""
  create_group sqlite
fi
if has_step pg1; then
  start_node pg1 "$(new_database pg1)"
  create_group pg1
fi
if has_step pg2; then
  url=$(new_database pg2)
  start_node pg2-a "$url"
  create_group pg2-a
  start_node pg2-b "$url"
fi
declare -A scale_url scale_stride
if has_step scale; then
  for scale in $SCALES; do
    ((scale % (ROUNDS * SAMPLE) == 0)) || die "ROUNDS × SAMPLE must divide each scale ($scale)"
    per_round=$((scale / ROUNDS))
    scale_stride[$scale]=$((per_round / SAMPLE))
    last=$(((SAMPLE - 1) * scale_stride[$scale]))
    biggest=$((per_round - 1))
    ((${#last} == ${#biggest})) || die "scale $scale: a round's sample is not as wide as its block"
    name=scale-$scale
    scale_url[$scale]=$(new_database "e$scale")
    start_node "$name" "${scale_url[$scale]}"
    create_group "$name"
    service_put "$load" "${node_port[$name]}" /enrollments/template "{\"registrationId\":\
\"template\",\"attestation\":{\"type\":\"symmetricKey\",\"symmetricKey\":{\"primaryKey\":\
\"$group_key\"}}}"
    log "loading $scale enrollments"
    started=$(date +%s.%N)
    load_enrollments "${scale_url[$scale]}" "$scale" "${#last}"
    load_s=$(awk -v a="$(date +%s.%N)" -v b="$started" 'BEGIN { printf "%.1f", a - b }')
    table_mb=$(psql -qAt "${scale_url[$scale]}" -c \
      "SELECT pg_total_relation_size('enrollments') / 1048576")
    log "loaded in $load_s s; the enrollments table and its index: $table_mb MB"
    printf '{"enrollments": %d, "load_s": %s, "table_mb": %d}\n' "$scale" "$load_s" "$table_mb" \
      >"$OUT/load-$scale.json"
  done
fi

# --- the rounds --------------------------------------------------------------------------------
for ((round = 1; round <= ROUNDS; round++)); do
  log "round $round of $ROUNDS (load average $(cut -d' ' -f1 /proc/loadavg))"
  if has_step sqlite; then
    run_load sqlite "sqlite-$round" "$CONCURRENCY" --devices "$DEVICES" --id-prefix "dev-$round-"
  fi
  if has_step pg1; then
    cpu=$(postgres_cpu)
    run_load pg1 "pg1-$round" "$CONCURRENCY" --devices "$DEVICES" --id-prefix "dev-$round-"
    record_pg_cpu "pg1-$round" "$cpu"
  fi
  if has_step pg2; then
    # Both halves at once, each through its own node (each trusts its own node's certificate).
    cpu=$(postgres_cpu)
    run_load pg2-a "pg2-a-$round" $((CONCURRENCY / 2)) --devices $((DEVICES / 2)) \
      --id-prefix "dev-a-$round-" &
    load_a=$!
    run_load pg2-b "pg2-b-$round" $((CONCURRENCY / 2)) --devices $((DEVICES / 2)) \
      --id-prefix "dev-b-$round-" &
    load_b=$!
    wait "$load_a" "$load_b"
    record_pg_cpu "pg2-a-$round" "$cpu"
    jq -s '{label: "pg2", ok: (map(.ok) | add), elapsed_s: (map(.elapsed_s) | max),
            ok_per_s: ((map(.ok) | add) / (map(.elapsed_s) | max) | round),
            latency_ms: {p50: (map(.latency_ms.p50) | max), p99: (map(.latency_ms.p99) | max)},
            server_cpu_s: (map(.server_cpu_s) | add), postgres_cpu_s: .[0].postgres_cpu_s,
            machine_cpu_s: .[0].machine_cpu_s}' \
      "$OUT/pg2-a-$round.json" "$OUT/pg2-b-$round.json" >"$OUT/pg2-$round.json"
  fi
  if has_step scale; then
    for scale in $SCALES; do
      cpu=$(postgres_cpu)
      run_load "scale-$scale" "scale-$scale-$round" "$CONCURRENCY" --devices "$SAMPLE" \
        --id-prefix "enr-$((round - 1))-" --id-stride "${scale_stride[$scale]}"
      record_pg_cpu "scale-$scale-$round" "$cpu"
    done
  fi
done

if has_step scale; then
  for scale in $SCALES; do
    pid=${node_pid[scale-$scale]}
    rss_kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
    hwm_kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")
    registered=$(psql -qAt "${scale_url[$scale]}" -c \
      "SELECT count(*) FROM registrations WHERE registration_id LIKE 'enr-%'")
    add_json "load-$scale" --argjson rss "$rss_kb" --argjson hwm "$hwm_kb" \
      --argjson stored "$registered" \
      '. + {server_rss_kb: $rss, server_peak_rss_kb: $hwm, registrations_stored: $stored}'
  done
fi
stop_nodes

# --- summary -----------------------------------------------------------------------------------
echo
log "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "results in $OUT"
# median LABEL prints the rounds' registrations/s of LABEL and their median, their p99 latency,
# and the share of the machine's CPU that went to other processes than devid, the load generator
# and PostgreSQL.
median() {
  local files=("$OUT/$1"-[0-9]*.json)
  [[ -f ${files[0]} ]] || return 0
  jq -rs --arg name "$1" 'map(.ok_per_s) as $r | ($r | sort) as $s |
    "\($name): median \($s[($s | length) / 2 | floor]) registrations/s; rounds \($r | map(tostring) |
    join(", ")); p99 ms \(map(.latency_ms.p99 | round | tostring) | join(", ")); other load \(map((.machine_cpu_s.other_processes - (.postgres_cpu_s // 0)) / .machine_cpu_s.total * 100 | round | tostring + "%") | join(", "))"' \
    "${files[@]}"
}
for label in sqlite pg1 pg2; do median "$label"; done
for scale in $SCALES; do
  median "scale-$scale"
  [[ -f $OUT/load-$scale.json ]] &&
    jq -r '"  \(.enrollments) enrollments (\(.table_mb) MB, loaded in \(.load_s) s): " +
      "server RSS \(.server_rss_kb / 1024 | round) MB, peak \(.server_peak_rss_kb / 1024 | round) " +
      "MB; \(.registrations_stored) registrations stored"' "$OUT/load-$scale.json"
done
exit 0
