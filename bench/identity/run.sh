#!/usr/bin/env bash
# Identity hot path: GET /api/v2/me with a bearer JWT and with an API key, as a ratio to the
# unauthenticated GET /api/v2/ping, measured side by side (interleaved rounds) in one run
# against one `floe serve` over HTTP/1.1 (wrk). Then logins/s (argon2id, production cost).
# Bounded: ~85 s. Env: ROUNDS (default 6), DURATION (s per wrk run, default 4), CONNS (32).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
ROUNDS=${ROUNDS:-6}
DURATION=${DURATION:-4}
CONNS=${CONNS:-32}
PORT=${PORT:-$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
DATA=$(mktemp -d /tmp/floe-bench-identity.XXXXXX)
BASE="http://127.0.0.1:${PORT}"

# development: the admin123 admin; logins.py runs 8 logins of one account from one address at
# once, past the 5 in flight that FLOE_LOGIN_MAX_PER_SOURCE allows by default.
env -i PATH="$PATH" HOME="$HOME" PYTHONPATH="$PWD" FLOE_DATA_DIR="$DATA" DB_TYPE=sqlite DB_NAME="$DATA/floe.sqlite" \
  FLOE_ENV=development FLOE_LOGIN_MAX_PER_SOURCE=64 \
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

RESULTS=()
for round in $(seq 1 "$ROUNDS"); do
  # Rotate the order each round so a drifting background load favours no endpoint.
  case $((round % 3)) in
    1) p=$(rps /api/v2/ping); j=$(rps /api/v2/me "Authorization: Bearer $JWT"); k=$(rps /api/v2/me "Authorization: Bearer $KEY") ;;
    2) j=$(rps /api/v2/me "Authorization: Bearer $JWT"); k=$(rps /api/v2/me "Authorization: Bearer $KEY"); p=$(rps /api/v2/ping) ;;
    0) k=$(rps /api/v2/me "Authorization: Bearer $KEY"); p=$(rps /api/v2/ping); j=$(rps /api/v2/me "Authorization: Bearer $JWT") ;;
  esac
  echo "round $round: ping=$p me_jwt=$j me_key=$k req/s"
  RESULTS+=("$p $j $k")
done
# Per-round ratios (each round measures the three side by side), then their median:
# robust against other load on a shared machine drifting between rounds.
printf '%s\n' "${RESULTS[@]}" | $PY -c '
import statistics, sys
rows = [tuple(map(float, line.split())) for line in sys.stdin if line.strip()]
ping, jwt, key = (statistics.median(c) for c in zip(*rows))
print(f"median req/s: ping={ping:.0f} me_jwt={jwt:.0f} me_key={key:.0f}")
rj = statistics.median(r[1] / r[0] for r in rows)
rk = statistics.median(r[2] / r[0] for r in rows)
print(f"median per-round ratio me_jwt/ping={rj:.3f} me_key/ping={rk:.3f} (goal >= 0.9)")
'
$PY bench/identity/logins.py "$BASE" 10 8
echo "interpreter: $($PY -c 'import sys; print(sys.version.split()[0], sys.executable)')"
