#!/usr/bin/env bash
# Identity hot path: GET /api/v2/me with a bearer JWT and with an API key, as a ratio to the
# unauthenticated GET /api/v2/ping, measured side by side (interleaved, 2 rounds) in one run
# against one `floe serve` over HTTP/1.1 (wrk). Then logins/s (argon2id, production cost).
# Bounded: ~75 s. Env: DURATION (s per wrk run, default 8), CONNS (default 32).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
DURATION=${DURATION:-8}
CONNS=${CONNS:-32}
PORT=${PORT:-$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
DATA=$(mktemp -d /tmp/floe-bench-identity.XXXXXX)
BASE="http://127.0.0.1:${PORT}"

env -i PATH="$PATH" HOME="$HOME" PYTHONPATH="$PWD" FLOE_DATA_DIR="$DATA" DB_TYPE=sqlite DB_NAME="$DATA/floe.sqlite" \
  BIND_HOST=127.0.0.1 HTTP_PORT="$PORT" HTTPS_PORT=0 HTTP3_ENABLED=false GRPC_ENABLED=false \
  METRICS_ENABLED=false LOG_JSON=true .venv/bin/floe serve >"$DATA/server.log" 2>&1 &
SERVER=$!
cleanup() { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT

for _ in $(seq 1 100); do
  curl -fsS "$BASE/api/v2/ping" >/dev/null 2>&1 && break
  kill -0 "$SERVER" 2>/dev/null || { cat "$DATA/server.log"; exit 1; }
  sleep 0.1
done
read -r JWT KEY < <($PY bench/identity/setup_creds.py "$BASE")

rps() {  # rps PATH [HEADER]
  local args=(-t1 -c"$CONNS" -d"${DURATION}s" --latency)
  if [[ $# -gt 1 ]]; then args+=(-H "$2"); fi
  wrk "${args[@]}" "$BASE$1" | awk '/Requests\/sec/ {print $2}'
}

declare -A SUM=([ping]=0 [jwt]=0 [key]=0)
for round in 1 2; do
  p=$(rps /api/v2/ping); j=$(rps /api/v2/me "Authorization: Bearer $JWT"); k=$(rps /api/v2/me "Authorization: Bearer $KEY")
  echo "round $round: ping=$p me_jwt=$j me_key=$k req/s"
  SUM[ping]=$(echo "${SUM[ping]} + $p" | bc -l); SUM[jwt]=$(echo "${SUM[jwt]} + $j" | bc -l); SUM[key]=$(echo "${SUM[key]} + $k" | bc -l)
done
printf 'mean req/s: ping=%.0f me_jwt=%.0f me_key=%.0f\n' "$(echo "${SUM[ping]}/2" | bc -l)" "$(echo "${SUM[jwt]}/2" | bc -l)" "$(echo "${SUM[key]}/2" | bc -l)"
printf 'ratio me_jwt/ping=%.3f me_key/ping=%.3f (goal >= 0.9)\n' "$(echo "${SUM[jwt]}/${SUM[ping]}" | bc -l)" "$(echo "${SUM[key]}/${SUM[ping]}" | bc -l)"
$PY bench/identity/logins.py "$BASE" 10 8
echo "interpreter: $($PY -c 'import sys; print(sys.version.split()[0], sys.executable)')"
