#!/usr/bin/env bash
# `floe serve` vs `floe serve --instances N` (default 2), side by side in the same run: HTTP/1.1
# /api/v2/ping with wrk (c=64), TLS h2 with h2load (c=64, m=4), HTTP/3 with bench/serving/h3load.py (16 connections), and
# HTTP/3 with bench/serving/h3ng.py (ngtcp2's C client: H3NG_PROCS (64) connections at a time,
# 500 requests each as concurrent streams; cheap enough to load two instances on 2 cores; with
# 32 the two instances were not kept busy: 1.5 of 2 cores), ROUNDS rounds alternating the order,
# then each test's ratio over all rounds (total answers / total answers). h3ng rows also give the
# servers' cores busy and CPU µs per answer over the steady window, and the client's cores.
# No CPU pinning: N instances are meant to use N cores, and the load generator competes with
# them — on a 2-core machine the gain is bounded by that.
# Then WebSocket fan-out to WS_CLIENTS (1,000) clients under REST saturation, one instance vs N.
# Bounded: 2 servers x ROUNDS x 4 tests x DUR seconds (h3ng: + the last connections' ~3 s)
# + 2 WS runs (~3.5 minutes by default).
# Usage: [N=2] [ROUNDS=2] [TESTS="h1 h2 h3 h3ng"] [H3NG_PROCS=64] [WS_CLIENTS=1000] [WS_HZ=10]
#        [ONLY=ws]
#        bench/serving/instances.sh [seconds-per-run (default 8)]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
PY=$ROOT/.venv/bin/python
DUR=${1:-8}
N=${N:-2}
ROUNDS=${ROUNDS:-2}
WORK=$(mktemp -d /tmp/floe-bench-instances.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
PORT_HTTP=0; PORT_HTTPS=0; PORT_MET=0; SERVER_PID=0
WS_HZ=${WS_HZ:-10}  # heartbeats a second to each WebSocket client
trap cleanup EXIT INT TERM HUP
export PYTHONPATH=$ROOT

source bench/serving/lib.sh  # free_port, wait_port, token
free_run() { "$PY" -c "from tests.support.ports import free_port_run; print(free_port_run($1))"; }

start() {  # name instances: sets PORT_HTTP, PORT_HTTPS (no subshell: PIDS must see the pid)
  local name=$1 n=$2 grpc met
  PORT_HTTP=$(free_port); PORT_HTTPS=$(free_port); grpc=$(free_port); met=$(free_run "$n")
  env FLOE_DATA_DIR="$WORK/$name" BIND_HOST=127.0.0.1 HTTP_PORT=$PORT_HTTP HTTPS_PORT=$PORT_HTTPS \
      GRPC_PORT=$grpc METRICS_PORT=$met LOG_JSON=true FLOE_ENV=development \
      WS_HEARTBEAT_INTERVAL="$(awk -v hz="$WS_HZ" 'BEGIN {print 1 / hz}')" WS_MAX_PER_PRINCIPAL=1000 \
      SECRET_KEY=bench-secret-key-not-for-production-0123456789 \
      "$PY" -m app.cli serve --instances "$n" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  SERVER_PID=$!
  PORT_MET=$met
  for i in $(seq 0 $((n - 1))); do wait_port $((met + i)); done
  wait_port "$PORT_HTTP"
}
wrk_rps() { wrk -t1 -c64 -d"${DUR}s" "$1" 2>/dev/null | awk '/Requests\/sec/ {printf "%.0f\n", $2}'; }
h2_rps() {  # TLS h2, 64 connections x 4 streams, a fixed duration
  h2load -D "$DUR" -c 64 -m 4 "https://127.0.0.1:$1/api/v2/ping" 2>/dev/null \
    | awk '/^finished in/ {gsub(/,/,""); printf "%.0f\n", $4}'
}
h3_rps() { "$PY" bench/serving/h3load.py "$1" "$2" 16 "$DUR" | awk '{print $1 " (" $3 " errors)"}'; }
h3ng_rps() {  # https-port metrics-port instances server-pid: the servers' steady-window rate,
  # and their CPU over that window (cores busy, µs per answer), the client's cores (see h3ng.py)
  local urls=() i
  for i in $(seq 0 $(($3 - 1))); do urls+=(--metrics "http://127.0.0.1:$(($2 + i))/metrics"); done
  "$PY" bench/serving/h3ng.py "$1" "$DUR" --procs "${H3NG_PROCS:-64}" --requests 500 "${urls[@]}" --server-pid "$4" \
    | awk '{print $1 " (" $2 " failed; server " $5 " cores, " $6 " us/req; client " $3 " cores)"}'
}

start one 1; ONE_HTTP=$PORT_HTTP; ONE_HTTPS=$PORT_HTTPS; ONE_MET=$PORT_MET; ONE_PID=$SERVER_PID
start many "$N"; MANY_HTTP=$PORT_HTTP; MANY_HTTPS=$PORT_HTTPS; MANY_MET=$PORT_MET
MANY_PID=$SERVER_PID
echo "# floe serve vs --instances $N, $(date -u +%FT%TZ), $($PY -V), $(nproc) CPUs, ${DUR}s per run"
printf '%-16s %18s %18s %7s\n' test one_rps instances_rps ratio
declare -A SUM_ONE SUM_MANY
for r in $(seq "$ROUNDS"); do
  [[ ${ONLY:-all} == ws ]] && break
  for t in ${TESTS:-h1 h2 h3 h3ng}; do
    if [ "$t" = h3ng ] && ! command -v gtlsclient >/dev/null; then
      echo "h3ng: gtlsclient not installed (apt install ngtcp2-client, or make install): skipped"; continue
    fi
    if [ "$t" = h1 ]; then
      run() { wrk_rps "http://127.0.0.1:$1/api/v2/ping"; }; a=$ONE_HTTP; b=$MANY_HTTP
    elif [ "$t" = h2 ]; then
      run() { h2_rps "$1"; }; a=$ONE_HTTPS; b=$MANY_HTTPS
    elif [ "$t" = h3ng ]; then
      run() {
        if [ "$1" = "$ONE_HTTPS" ]; then h3ng_rps "$1" "$ONE_MET" 1 "$ONE_PID"
        else h3ng_rps "$1" "$MANY_MET" "$N" "$MANY_PID"; fi
      }
      a=$ONE_HTTPS; b=$MANY_HTTPS
    else
      run() { h3_rps "$1" "$2"; }; a=$ONE_HTTPS; b=$MANY_HTTPS
    fi
    if (( r % 2 )); then
      one=$(run "$a" "$WORK/one/tls/dev-cert.pem"); many=$(run "$b" "$WORK/many/tls/dev-cert.pem")
    else
      many=$(run "$b" "$WORK/many/tls/dev-cert.pem"); one=$(run "$a" "$WORK/one/tls/dev-cert.pem")
    fi
    printf '%-16s %18s %18s %6.2fx\n' "$t #$r" "$one" "$many" "$(echo "${many%% *} / ${one%% *}" | bc -l)"
    SUM_ONE[$t]=$(echo "${SUM_ONE[$t]:-0} + ${one%% *}" | bc -l)
    SUM_MANY[$t]=$(echo "${SUM_MANY[$t]:-0} + ${many%% *}" | bc -l)
  done
done
for t in ${TESTS:-h1 h2 h3 h3ng}; do
  [ -n "${SUM_ONE[$t]:-}" ] || continue
  printf '%-16s %18.0f %18.0f %6.2fx\n' "$t all rounds" "${SUM_ONE[$t]}" "${SUM_MANY[$t]}" \
    "$(echo "${SUM_MANY[$t]} / ${SUM_ONE[$t]}" | bc -l)"
done

# WebSocket fan-out (issue 13): WS_CLIENTS (1,000) clients on /api/v2/stream, each
# instance's heartbeat at 10 Hz, lag = receive time - the heartbeat's `ts`; the kernel spreads
# the connections over the instances (SO_REUSEPORT), and wrk saturates REST on the same port
# meanwhile. One instance, then N, in the same run.
WS_CLIENTS=${WS_CLIENTS:-1000}
ws_clients() {  # metrics-port instances -> "a+b+..." open stream clients per instance
  local i out=""
  for i in $(seq 0 $(($2 - 1))); do
    out+="$(curl -s "http://127.0.0.1:$(($1 + i))/metrics" | awk '/^floe_ws_clients / {printf "%d", $2}')+"
  done
  echo "${out%+}"
}
ws_run() {  # name http-port metrics-port instances
  local spread load count
  ( sleep 3; wrk -t1 -c128 -d"$((DUR + 2))s" "http://127.0.0.1:$2/api/v2/ping" >"$WORK/wrk-ws.out" 2>&1 ) &
  load=$!
  ( sleep $((DUR / 2 + 3)); ws_clients "$3" "$4" >"$WORK/spread" ) &
  count=$!
  out=$("$PY" bench/serving/wsload.py "ws://127.0.0.1:$2/api/v2/stream" "$(token "$2")" "$WS_CLIENTS" "$DUR")
  wait "$load" "$count"  # not a bare `wait`: the servers are children too
  spread=$(cat "$WORK/spread" 2>/dev/null)
  echo "WebSocket $WS_CLIENTS clients, $WS_HZ Hz, wrk c=128 REST, $1: $out; clients per instance $spread;" \
       "REST $(awk '/Requests\/sec/ {printf "%.0f req/s", $2}' "$WORK/wrk-ws.out")"
}
ws_run "one instance" "$ONE_HTTP" "$ONE_MET" 1
ws_run "$N instances" "$MANY_HTTP" "$MANY_MET" "$N"
