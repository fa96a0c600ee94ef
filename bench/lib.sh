#!/usr/bin/env bash
# bench/lib.sh: what every benchmark script shares. Source it after `set -euo pipefail`; it
# moves to the repository root and sets BUILD_DIR (default build/release).
# shellcheck disable=SC2034  # root and machine are for the sourcing script

bench_name=$(basename "$0")
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1
BUILD_DIR=${BUILD_DIR:-build/release}

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'bench/%s: %s\n' "$bench_name" "$*" >&2; exit 1; }

# require_tools TOOL...: each must be on PATH.
require_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || die "$tool is required"
  done
}

# ensure_built "TARGET..." FILE...: builds the targets when any of the files is missing,
# configuring BUILD_DIR first when it has no cache (the release preset for build/release, else
# RelWithDebInfo), both with the benchmarks on.
ensure_built() {
  local targets=$1 file missing=0
  shift
  for file in "$@"; do
    [[ -e $file ]] || missing=1
  done
  ((missing)) || return 0
  if [[ ! -f $BUILD_DIR/CMakeCache.txt ]]; then
    if [[ $BUILD_DIR == build/release ]]; then
      log "configuring the release preset"
      cmake --preset release -DDEVID_BENCH=ON >/dev/null
    else
      cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDEVID_BENCH=ON \
        >/dev/null
    fi
  fi
  # shellcheck disable=SC2086  # a list of targets
  cmake --build "$BUILD_DIR" --target $targets
}

# make_workspace PREFIX: a temp dir in $tmp and the results dir $OUT (default: inside it).
make_workspace() {
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
  OUT=${OUT:-$tmp/results}
  mkdir -p "$OUT"
}

# remove_workspace deletes $tmp but the results under it (KEEP_TMP=1 keeps everything).
remove_workspace() {
  if [[ ${KEEP_TMP:-0} != 1 ]]; then
    find "$tmp" -mindepth 1 -maxdepth 1 ! -path "$OUT" -exec rm -rf {} + 2>/dev/null || true
  fi
}

# stop PID [SIGNAL]: SIGNAL (default TERM), then SIGKILL after 15 s.
stop() {
  local pid=$1 signal=${2:-TERM}
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill "-$signal" "$pid" 2>/dev/null || true
  for _ in $(seq 150); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# free_port prints a TCP port that nothing on 127.0.0.1 listens on now. It stays below Linux's
# ephemeral range (32768 and up): a client connection's port there lingers in TIME-WAIT after a
# handshake benchmark, and binding it fails (EADDRINUSE) although nothing listens.
free_port() {
  local port
  for _ in $(seq 100); do
    port=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  die "no free port found"
}

# start_swtpm starts a swtpm daemon with its state in $tmp/tpm on a free port and sets tpm_port
# and tpm_pid (stop_swtpm ends it). The TCTI finds the control channel at the command port + 1.
start_swtpm() {
  tpm_port=$(free_port)
  mkdir -p "$tmp/tpm"
  swtpm socket --tpm2 --daemon --server "type=tcp,port=$tpm_port,bindaddr=127.0.0.1" \
    --ctrl "type=tcp,port=$((tpm_port + 1)),bindaddr=127.0.0.1" --tpmstate "dir=$tmp/tpm" \
    --pid "file=$tmp/swtpm.pid" --flags not-need-init,startup-clear
  tpm_pid=$(cat "$tmp/swtpm.pid")
}

# stop_swtpm ends the swtpm start_swtpm started, if any.
stop_swtpm() {
  if [[ -n ${tpm_pid:-} ]]; then kill "$tpm_pid" 2>/dev/null || true; fi
}

# start_nginx DIR PORT: nginx with DIR/nginx.conf (DIR its prefix, its error log in DIR) in the
# background; sets nginx_pid and returns once PORT accepts connections, or dies with nginx's log
# if it exits first.
start_nginx() {
  local dir=$1 port=$2
  nginx -e "$dir/error.log" -p "$dir" -c "$dir/nginx.conf" &
  nginx_pid=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    kill -0 "$nginx_pid" 2>/dev/null || { cat "$dir/error.log" >&2; die "nginx exited"; }
    sleep 0.1
  done
  die "nginx is not listening on port $port"
}

# cpu_ticks PID: the CPU time (user + system, clock ticks) of PID and its child processes
# (nginx's workers) so far.
cpu_ticks() {
  local pid total=0 fields
  for pid in "$1" $(pgrep -P "$1" || true); do
    read -ra fields <"/proc/$pid/stat" || continue
    # Fields 14 and 15 (utime, stime), counted after the parenthesized command name.
    total=$((total + fields[13] + fields[14]))
  done
  echo "$total"
}

# ecdsa_speed NAME [ARG...]: `openssl speed ARG... -seconds 3 ecdsap256`, its output in
# $OUT/openssl-speed-NAME.txt; prints "<sign/s> <verify/s>" from its last line
# ("256 bits ecdsa (nistp256)  <sign s> <verify s>  <sign/s> <verify/s>").
ecdsa_speed() {
  local name=$1
  shift
  openssl speed "$@" -seconds 3 ecdsap256 >"$OUT/openssl-speed-$name.txt" 2>/dev/null
  awk '/ecdsa \(nistp256\)/ { s = $(NF-1); v = $NF } END { print s, v }' \
    "$OUT/openssl-speed-$name.txt"
}

# describe_machine logs the load average and sets $machine: cores, CPU, kernel, time and commit
# (+changes when the tree differs from it), as RESULTS.md records them.
describe_machine() {
  local cpu_model commit
  log "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
  commit=$(git rev-parse --short HEAD 2>/dev/null || echo none)
  if [[ $commit != none ]] && ! git diff --quiet HEAD 2>/dev/null; then commit+="+changes"; fi
  machine="$(nproc) cores, $cpu_model, kernel $(uname -r), $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $commit"
  log "machine: $machine"
}

# wait_listening LOG PID prints the port `devid serve` (PID, output in LOG) reports, or fails.
wait_listening() {
  local log_file=$1 pid=$2 port=""
  for _ in $(seq 300); do
    port=$(sed -n 's/^devid serve: listening on https:\/\/127\.0\.0\.1:\([0-9]*\)$/\1/p' \
      "$log_file" 2>/dev/null || true)
    [[ -n $port ]] && { echo "$port"; return 0; }
    kill -0 "$pid" 2>/dev/null || { cat "$log_file" >&2; die "devid serve exited"; }
    sleep 0.1
  done
  die "devid serve did not start within 30 s"
}

# read_connection DATA_DIR sets id_scope, trust, connection_string and host_name from the
# connection.json that `devid serve` wrote in DATA_DIR.
read_connection() {
  local connection=$1/connection.json
  id_scope=$(jq -r .idScope "$connection")
  trust=$(jq -r .trustBundle "$connection")
  connection_string=$(jq -r .serviceConnectionString "$connection")
  host_name=$(sed -n 's/.*HostName=\([^;]*\).*/\1/p' <<<"$connection_string")
}

# service_put LOAD PORT PATH JSON: PUT JSON to the service API of the devid on 127.0.0.1:PORT, as
# read_connection describes it, with a service token minted by LOAD (devid_register_load); fails
# on an error status, printing the answer.
service_put() {
  local load=$1 port=$2 path=$3 body=$4 token
  token=$("$load" --make-service-token --connection-string "$connection_string")
  curl -sS --fail-with-body --max-time 30 --cacert "$trust" \
    --resolve "$host_name:$port:127.0.0.1" -X PUT \
    "https://$host_name:$port$path?api-version=2021-10-01" -H "Authorization: $token" \
    -H 'Content-Type: application/json' --data-binary "$body" -o "$tmp/service-answer.json" ||
    { cat "$tmp/service-answer.json" >&2; die "PUT $path failed"; }
}

# summarize JSON prints a devid_register_load result (--json-out) on one line.
summarize() {
  jq -r '"\(.label): \(.ok)/\(.requests) ok, errors \(.errors|tostring), \(.elapsed_s) s, " +
    "\(.ok_per_s) req/s, p50 \(.latency_ms.p50) ms, p90 \(.latency_ms.p90) ms, " +
    "p99 \(.latency_ms.p99) ms, max \(.latency_ms.max) ms; cpu s: server \(.server_cpu_s), " +
    "client \(.client_cpu_s.user + .client_cpu_s.sys | . * 100 | round / 100), " +
    "other processes \(.machine_cpu_s.other_processes) of \(.machine_cpu_s.total) " +
    "(\(.tls.version) \(.tls.cipher))"' "$1"
}
