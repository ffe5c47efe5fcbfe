#!/usr/bin/env bash
# WebSocket stream A/B between a git revision (A) and the working tree (B): two `floe serve`
# processes at once, both on CPU 1, each loaded in turn by wsload.py (WS_CLIENTS clients at
# WS_HZ heartbeats a second, from CPU 0), order alternating per round. Per run: the server's
# CPU time over the run and per heartbeat delivered, p50/p99 lag, dropped. With WRK=1 a
# wrk -c128 on /api/v2/ping (CPU 0) saturates REST on the loaded server meanwhile (the CPU
# figures then include the REST answers: compare the lag and REST req/s instead).
# Usage: [ROUNDS=2] [DUR=8] [WS_CLIENTS=1000] [WS_HZ=10] [WRK=0] bench/serving/wsab.sh [REV (HEAD)]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
PY=$ROOT/.venv/bin/python
REV=${1:-HEAD}; ROUNDS=${ROUNDS:-2}; DUR=${DUR:-8}
WS_CLIENTS=${WS_CLIENTS:-1000}; WS_HZ=${WS_HZ:-10}; WRK=${WRK:-0}
WORK=$(mktemp -d /tmp/floe-bench-wsab.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; done
  git -C "$ROOT" worktree remove --force "$WORK/a-tree" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP  # the EXIT trap cleans up; do not go on without the servers
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
git -C "$ROOT" worktree add --detach "$WORK/a-tree" "$REV" >/dev/null 2>&1
cp -r "$ROOT/floe" "$WORK/a-tree/" 2>/dev/null || true  # the generated gRPC modules (untracked)
source bench/serving/lib.sh  # free_port, wait_port, token

declare -A HTTP PID
start() {  # name source-tree
  local grpc met https; HTTP[$1]=$(free_port); grpc=$(free_port); met=$(free_port); https=$(free_port)
  (cd "$2" && exec env PYTHONPATH="$2" FLOE_DATA_DIR="$WORK/$1" BIND_HOST=127.0.0.1 HTTP_PORT="${HTTP[$1]}" \
      HTTPS_PORT="$https" GRPC_PORT="$grpc" METRICS_PORT="$met" LOG_JSON=true FLOE_ENV=development \
      WS_HEARTBEAT_INTERVAL="$(awk -v hz="$WS_HZ" 'BEGIN {print 1 / hz}')" WS_MAX_PER_PRINCIPAL=1000 \
      SECRET_KEY=bench-secret-key-not-for-production-0123456789 \
      taskset -c 1 "$PY" -m app.cli serve >"$WORK/$1.log" 2>&1) &
  PID[$1]=$!; PIDS+=("$!")
  wait_port "${HTTP[$1]}" "$WORK/$1.log"
}
cpu_ms() {  # pid → utime+stime of the process and its threads, in ms
  awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) * 1000 / hz}' "/proc/$1/stat"
}
start A "$WORK/a-tree"; start B "$ROOT"
echo "# WebSocket A/B $(date -u +%FT%TZ) — $($PY -V); A: $REV ($(git -C "$ROOT" rev-parse --short "$REV")), B: working tree;" \
     "$WS_CLIENTS clients, $WS_HZ Hz, ${DUR}s, wrk=$WRK; load $(cut -d' ' -f1-3 /proc/loadavg)"
one() {  # name
  local port=${HTTP[$1]} tok before after out wrk_pid="" rest=""
  tok=$(token "$port")
  if [[ $WRK == 1 ]]; then
    taskset -c 0 wrk -t1 -c128 -d"$((DUR + 4))s" "http://127.0.0.1:$port/api/v2/ping" >"$WORK/wrk.out" 2>&1 &
    wrk_pid=$!
  fi
  before=$(cpu_ms "${PID[$1]}")
  out=$(taskset -c 0 timeout $((DUR + 120)) "$PY" bench/serving/wsload.py \
        "ws://127.0.0.1:$port/api/v2/stream" "$tok" "$WS_CLIENTS" "$DUR")
  after=$(cpu_ms "${PID[$1]}")
  if [[ -n $wrk_pid ]]; then
    while kill -0 "$wrk_pid" 2>/dev/null; do sleep 0.2; done
    rest=", REST $(awk '/Requests\/sec/ {printf "%.0f", $2}' "$WORK/wrk.out") req/s"
  fi
  "$PY" - "$1" "$out" "$before" "$after" "$rest" <<'PYEOF'
import json, sys
name, out, before, after, rest = sys.argv[1], json.loads(sys.argv[2]), *map(float, sys.argv[3:5]), sys.argv[5]
cpu = after - before  # includes connecting the clients, the same for both sides
per = cpu * 1000 / max(1, out["messages"])
cost = f"{per:.1f} µs/heartbeat" if not rest else "REST included"
print(f"{name}: messages {out['messages']}, p50 {out['p50_ms']} ms, p99 {out['p99_ms']} ms, "
      f"dropped {out['dropped']}, server cpu {cpu:.0f} ms = {cost}{rest}")
PYEOF
}
for r in $(seq "$ROUNDS"); do
  if (( r % 2 )); then one A; one B; else one B; one A; fi
done
