#!/usr/bin/env bash
# Server CPU time per request, this checkout vs another (e.g. the commit before a change), for
# `GET /api/v2/ping` over HTTP/1.1 (wrk -c64). Both servers run at once, pinned to CPU 1; wrk
# (CPU 0) alternates between them, ROUNDS times each. Per run: server CPU (utime+stime from
# /proc/PID/stat) / requests wrk completed. Unlike req/s, this barely moves when other jobs
# share the machine (they take wall time, not the server's CPU time per request).
# Bounded: 2 x ROUNDS runs of DUR seconds (~1 minute with the defaults).
# Usage: bench/serving/cpu_per_request.sh OTHER_CHECKOUT [rounds (5)] [seconds-per-run (5)]
set -euo pipefail
cd "$(dirname "$0")/../.."
NEW=$PWD
OLD=$(cd "$1" && pwd)
ROUNDS=${2:-5}
DUR=${3:-5}
PY=$NEW/.venv/bin/python
WORK=$(mktemp -d /tmp/floe-bench-cpu.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM HUP

source bench/serving/lib.sh  # free_port, wait_port, token

start() {  # name checkout port: the server in the background, run from its checkout (`-m` puts
  # the working directory first on sys.path); not in a subshell, which would run the trap
  local name=$1 tree=$2 http=$3
  env -C "$tree" PYTHONPATH="$tree" FLOE_DATA_DIR="$WORK/$name" BIND_HOST=127.0.0.1 HTTP_PORT="$http" \
    HTTPS_PORT=0 GRPC_ENABLED=false METRICS_ENABLED=false LOG_JSON=true \
    taskset -c 1 "$PY" -m app.cli -v serve >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

NEW_PORT=$(free_port); OLD_PORT=$(free_port)
start new "$NEW" "$NEW_PORT"; NEW_PID=$!
start old "$OLD" "$OLD_PORT"; OLD_PID=$!
wait_port "$NEW_PORT"; wait_port "$OLD_PORT"
HZ=$(getconf CLK_TCK)

run() {  # pid port → "us_per_request req_per_s"
  local pid=$1 port=$2 t0 t1 out
  t0=$(cpu_ticks "$pid")
  out=$(taskset -c 0 wrk -t1 -c64 -d"${DUR}s" "http://127.0.0.1:$port/api/v2/ping" 2>/dev/null)
  t1=$(cpu_ticks "$pid")
  awk -v t0="$t0" -v t1="$t1" -v hz="$HZ" '
    /requests in/ {n=$1} /Requests\/sec/ {rps=$2}
    END {printf "%.1f %.0f\n", (t1 - t0) / hz * 1e6 / n, rps}' <<<"$out"
}

echo "# server CPU per request $(date -u +%FT%TZ) — $($PY -V), ${DUR}s per run, servers on CPU 1"
echo "# new=$NEW ($(git -C "$NEW" rev-parse --short HEAD)) old=$OLD; load: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s %12s %10s %12s %10s\n' round new_us/req new_rps old_us/req old_rps
: >"$WORK/rows"
for r in $(seq "$ROUNDS"); do
  if (( r % 2 )); then read -r NU NR <<<"$(run "$NEW_PID" "$NEW_PORT")"; read -r OU OR <<<"$(run "$OLD_PID" "$OLD_PORT")"
  else read -r OU OR <<<"$(run "$OLD_PID" "$OLD_PORT")"; read -r NU NR <<<"$(run "$NEW_PID" "$NEW_PORT")"; fi
  printf '%-6s %12s %10s %12s %10s\n' "#$r" "$NU" "$NR" "$OU" "$OR"
  echo "$NU $OU" >>"$WORK/rows"
done
"$PY" - "$WORK/rows" <<'PYEOF'
import statistics, sys
rows = [tuple(map(float, line.split())) for line in open(sys.argv[1]) if line.strip()]
new, old = statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows)
print(f"median µs/request: new {new:.1f}, old {old:.1f}, difference {new - old:+.1f} "
      f"({(new - old) / old * 100:+.1f} %); implied throughput ratio {old / new:.3f}")
PYEOF
