#!/usr/bin/env bash
# TCP A/B at high concurrency: two `floe serve` processes (CPU 1, through quic_levers.py) with
# their own environment, wrk (HTTP/1.1) and h2load (TLS h2) alternating between them.
# Usage: [COUNTS="1000"] [ROUNDS=2] [DUR=8] bench/serving/tcpab.sh "A_ENV" "B_ENV"
#   e.g. bench/serving/tcpab.sh "" "HYPERCORN_BACKLOG=4096"
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
PY=$ROOT/.venv/bin/python
A_ENV=${1:-}; B_ENV=${2:-}
COUNTS=${COUNTS:-1000}; ROUNDS=${ROUNDS:-2}; DUR=${DUR:-8}
WORK=$(mktemp -d /tmp/floe-bench-tcpab.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM HUP
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
source bench/serving/lib.sh  # free_port, wait_port, token
export PYTHONPATH=$ROOT
declare -A HTTP HTTPS PID
start() {  # name env
  HTTP[$1]=$(free_port); HTTPS[$1]=$(free_port)
  # shellcheck disable=SC2086  # the env string is a list of NAME=value words
  env FLOE_DATA_DIR="$WORK/$1" BIND_HOST=127.0.0.1 HTTP_PORT="${HTTP[$1]}" HTTPS_PORT="${HTTPS[$1]}" \
      GRPC_ENABLED=false METRICS_ENABLED=false HTTP3_ENABLED=false LOG_JSON=true $2 \
      taskset -c 1 "$PY" bench/serving/quic_levers.py serve >"$WORK/$1.log" 2>&1 &
  PID[$1]=$!; PIDS+=("$!")
  wait_port "${HTTP[$1]}"; wait_port "${HTTPS[$1]}"
}
start A "$A_ENV"; start B "$B_ENV"
echo "# TCP A/B $(date -u +%FT%TZ) — ${DUR}s per run, ulimit -n $(ulimit -n); A: '${A_ENV}' B: '${B_ENV}'; load $(cut -d' ' -f1-3 /proc/loadavg)"
listen_drops() { awk '/^TcpExt:/ {if (!h) {for (i = 2; i <= NF; i++) n[$i] = i; h = 1} else print $n["ListenOverflows"], $n["ListenDrops"]}' /proc/net/netstat; }
one() {  # side tool connections
  local l0 d0 l1 d1 c0 c1 t0 t1
  read -r l0 d0 <<<"$(listen_drops)"; c0=$(awk '{print $14 + $15}' "/proc/${PID[$1]}/stat"); t0=$(date +%s.%N)
  if [[ $2 == wrk ]]; then
    taskset -c 0 timeout $((DUR + 60)) wrk -t1 -c"$3" -d"${DUR}s" --timeout 10s --latency \
      "http://127.0.0.1:${HTTP[$1]}/api/v2/ping" >"$WORK/out" 2>&1 || true
  else
    rm -f "$WORK/h2.log"
    taskset -c 0 timeout $((DUR + 90)) h2load -t1 -c"$3" -m1 -n "$((1000 * DUR))" -N 10 \
      --log-file="$WORK/h2.log" "https://127.0.0.1:${HTTPS[$1]}/api/v2/ping" >"$WORK/out" 2>&1 || true
  fi
  t1=$(date +%s.%N); c1=$(awk '{print $14 + $15}' "/proc/${PID[$1]}/stat"); read -r l1 d1 <<<"$(listen_drops)"
  echo "$1 $("$PY" bench/serving/tcpload_parse.py "$2" "$WORK/out" "$WORK/h2.log" \
    "$(echo "($c1 - $c0) / $(getconf CLK_TCK) / ($t1 - $t0)" | bc -l)" "$((l1 - l0))" "$((d1 - d0))" "$3" |
    "$PY" -c 'import json, sys; print(json.load(sys.stdin)["human"])')"
}
for c in $COUNTS; do
  for r in $(seq "$ROUNDS"); do
    for tool in wrk h2load; do
      if (( r % 2 )); then one A $tool "$c"; one B $tool "$c"; else one B $tool "$c"; one A $tool "$c"; fi
    done
  done
done
