#!/usr/bin/env bash
# HTTP/3 A/B: two `floe serve` processes at once (both on CPU 1, through quic_levers.py), each
# with its own environment, loaded in turn by h3load.py (order alternating per round), so a
# lever's before/after is measured side by side while neighbours' load comes and goes.
# Usage: [COUNTS="256 1000"] [ROUNDS=2] [DUR=6] [RATE=req/s] bench/serving/h3ab.sh "A_ENV" "B_ENV"
#   (RATE: open loop, h3load.py --rate, each request timed from when it was due)
#   e.g. bench/serving/h3ab.sh "" "QUIC_RCVBUF=4194304"      (appends to bench/results/h3ab.jsonl)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
PY=$ROOT/.venv/bin/python
A_ENV=${1:-}; B_ENV=${2:-}
COUNTS=${COUNTS:-256 1000}; ROUNDS=${ROUNDS:-2}; DUR=${DUR:-6}
OUT=$ROOT/bench/results/h3ab.jsonl
WORK=$(mktemp -d /tmp/floe-bench-h3ab.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM HUP
mkdir -p "$ROOT/bench/results"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
source bench/serving/lib.sh  # free_port, wait_port, token
export PYTHONPATH=$ROOT

declare -A HTTPS MET PID
start() {  # name env
  local http grpc; http=$(free_port); HTTPS[$1]=$(free_port); grpc=$(free_port); MET[$1]=$(free_port)
  # shellcheck disable=SC2086  # the env string is a list of NAME=value words
  env FLOE_DATA_DIR="$WORK/$1" BIND_HOST=127.0.0.1 HTTP_PORT="$http" HTTPS_PORT="${HTTPS[$1]}" \
      GRPC_PORT="$grpc" METRICS_PORT="${MET[$1]}" LOG_JSON=true $2 \
      taskset -c 1 "$PY" bench/serving/quic_levers.py serve >"$WORK/$1.log" 2>&1 &
  PID[$1]=$!; PIDS+=("$!")
  wait_port "$http"; wait_port "${HTTPS[$1]}"
  grep -h "quic_levers" "$WORK/$1.log" | sed "s/^/# $1: /" || true
}
start A "$A_ENV"; start B "$B_ENV"
RUN=$(date -u +%FT%TZ)
echo "# h3 A/B $RUN — $($PY -V), ${DUR}s steady per run${RATE:+, open loop at $RATE req/s}; A: '${A_ENV}' B: '${B_ENV}'; load $(cut -d' ' -f1-3 /proc/loadavg)"

one() {  # name connections round
  local out json
  out=$(taskset -c 0 timeout $((DUR + 150)) "$PY" bench/serving/h3load.py "${HTTPS[$1]}" "$WORK/$1/tls/dev-cert.pem" \
        "$2" "$DUR" --steady --json --metrics "http://127.0.0.1:${MET[$1]}/metrics" --server-pid "${PID[$1]}" ${RATE:+--rate "$RATE"}) || true
  echo "$1 ${out%%$'\n'*}"
  json=${out##*$'\n'}
  [[ $json == \{* ]] && "$PY" -c 'import json, sys; print(json.dumps({"run": sys.argv[1], "side": sys.argv[2],
      "env": sys.argv[3], "round": int(sys.argv[4])} | json.loads(sys.argv[5])))' \
      "$RUN" "$1" "$([[ $1 == A ]] && echo "$A_ENV" || echo "$B_ENV")" "$3" "$json" >>"$OUT"
  return 0
}
for c in $COUNTS; do
  for r in $(seq "$ROUNDS"); do
    if (( r % 2 )); then one A "$c" "$r"; one B "$c" "$r"; else one B "$c" "$r"; one A "$c" "$r"; fi
  done
done
"$PY" - "$OUT" "$RUN" <<'PYEOF'
import json, statistics, sys
rows = [r for line in open(sys.argv[1]) if (r := json.loads(line))["run"] == sys.argv[2]]
for c in sorted({r["connections"] for r in rows}):
    side = {s: [r for r in rows if r["connections"] == c and r["side"] == s] for s in "AB"}
    def med(s, f):
        vals = [f(r) for r in side[s] if f(r) is not None]
        return statistics.median(vals) if vals else float("nan")
    fig = {
        "steady rps": lambda r: r["steady"]["rps"], "steady p99 ms": lambda r: r["steady"]["p99_ms"],
        "storm p99 ms": lambda r: r["storm"]["p99_ms"], "handshakes/s": lambda r: r["handshakes"]["per_s"],
        "failed": lambda r: r["errors"], "floe dropped": lambda r: r["server"].get("floe_dropped"),
        "kernel RcvbufErrors": lambda r: r["server"].get("udp_RcvbufErrors"),
        "server waiting share": lambda r: r["server"].get("server_runqueue_share"),
        "server us/request": lambda r: r["server"].get("server_us_per_ok"),
    }
    print(f"c={c} (median of {len(side['A'])} rounds): " + "; ".join(
        f"{name} A {med('A', f):g} B {med('B', f):g}" for name, f in fig.items()))
PYEOF
