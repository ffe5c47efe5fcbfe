#!/usr/bin/env bash
# High-concurrency serving benchmark (issue 13): `floe serve` pinned to CPU 1, clients on CPU 0.
#  * HTTP/3: bench/serving/h3load.py at H3_COUNTS connections (all opening at once, several
#    client processes), storm and steady state reported apart, Floe's QUIC queue drops and the
#    kernel's UDP drop counters before/after; steady req/s as a ratio of the 16-connection row.
#  * TCP: wrk (HTTP/1.1 keep-alive, cleartext) and h2load (h2 over TLS) at TCP_COUNTS
#    connections, with the kernel's listen-queue overflow counters before/after.
# Bounded: every client run has a duration and a timeout; ~3-4 min with the defaults.
#  * HTTP/3 open loop: H3_OPEN_CONNS (1000) connections offered H3_OPEN_SHARES (0.5, 0.9) of the
#    best 16-connection rate, latency timed from when each request was due.
# Usage: [DUR=8] [ROUNDS=1] [H3_COUNTS="16 64 256 1000"] [TCP_COUNTS="1000 10000"] [ONLY=h3|tcp]
#        [H3_OPEN_CONNS=1000] [H3_OPEN_SHARES="0.5 0.9"]
#        bench/serving/concurrency.sh       (extra env, e.g. QUIC_QUEUE_SIZE=4096, reaches Floe)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
PY=$ROOT/.venv/bin/python
DUR=${DUR:-8}
ROUNDS=${ROUNDS:-1}
H3_COUNTS=${H3_COUNTS:-16 64 256 1000}
TCP_COUNTS=${TCP_COUNTS:-1000 10000}
OUT=$ROOT/bench/results/concurrency.jsonl
WORK=$(mktemp -d /tmp/floe-bench-concurrency.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM HUP
mkdir -p "$ROOT/bench/results"

# 10,000 connections need 10,000+ descriptors on each side: raise the soft limit to the hard one
# (raising the hard limit needs CAP_SYS_RESOURCE, which this VM's root does not have).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)

source bench/serving/lib.sh  # free_port, wait_port, token
F_HTTP=$(free_port); F_HTTPS=$(free_port); F_GRPC=$(free_port); F_MET=$(free_port)
export PYTHONPATH=$ROOT
env FLOE_DATA_DIR="$WORK/data" BIND_HOST=127.0.0.1 HTTP_PORT=$F_HTTP HTTPS_PORT=$F_HTTPS \
    GRPC_PORT=$F_GRPC METRICS_PORT=$F_MET LOG_JSON=true \
    taskset -c 1 "$PY" -m app.cli serve >"$WORK/floe.log" 2>&1 &
FLOE=$!; PIDS+=("$FLOE")
wait_port "$F_HTTP"; wait_port "$F_HTTPS"
CERT=$WORK/data/tls/dev-cert.pem
RUN="$(date -u +%FT%TZ)"

echo "# concurrency benchmark $RUN — $($PY -V), ${DUR}s per run, floe on CPU 1, clients on CPU 0"
echo "# ulimit -n $NOFILE (client and server); load average $(cut -d' ' -f1-3 /proc/loadavg);" \
     "net.core.rmem_max $(sysctl -n net.core.rmem_max), somaxconn $(sysctl -n net.core.somaxconn)"

record() {  # kind connections round json → one line in bench/results/concurrency.jsonl
  "$PY" -c 'import json, sys; print(json.dumps({"run": sys.argv[1], "kind": sys.argv[2],
    "connections": int(sys.argv[3]), "round": int(sys.argv[4]), "nofile": int(sys.argv[5])}
    | json.loads(sys.argv[6])))' "$RUN" "$1" "$2" "$3" "$NOFILE" "$4" >>"$OUT"
}

# ---- HTTP/3 ----------------------------------------------------------------------------------
if [[ ${ONLY:-all} != tcp ]]; then
  declare -A STEADY=() US=()
  for r in $(seq "$ROUNDS"); do
    for c in $H3_COUNTS; do
      out=$(taskset -c 0 timeout $((DUR + 150)) "$PY" bench/serving/h3load.py "$F_HTTPS" "$CERT" "$c" "$DUR" \
            --steady --json --metrics "http://127.0.0.1:$F_MET/metrics" --server-pid "$FLOE") || true
      echo "${out%%$'\n'*}  [round $r]"
      json=${out##*$'\n'}
      [[ $json == \{* ]] || { echo "# h3 c=$c: no result"; continue; }
      record h3 "$c" "$r" "$json"
      STEADY[$c]="${STEADY[$c]:-} $("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["steady"]["rps"] or 0)' "$json")"
      US[$c]="${US[$c]:-} $("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["server"].get("steady_server_us_per_ok") or 0)' "$json")"
    done
  done
  base=$(echo ${STEADY[16]:-0} | tr ' ' '\n' | sort -n | tail -1)
  base_us=$(echo ${US[16]:-0} | tr ' ' '\n' | grep -v '^0$' | sort -n | head -1)  # 0: not measured
  for c in $H3_COUNTS; do
    best=$(echo ${STEADY[$c]:-0} | tr ' ' '\n' | sort -n | tail -1)
    us=$(echo ${US[$c]:-0} | tr ' ' '\n' | grep -v '^0$' | sort -n | head -1)
    # Server capacity: what one core answers at this CPU per request (steady window only),
    # as a ratio of 16 connections' — the server's own figure when the clients are the bound.
    awk -v c="$c" -v b="$best" -v z="$base" -v u="$us" -v zu="$base_us" 'BEGIN {
      printf "HTTP/3 c=%-5s steady %7.0f req/s  %s", c, b, (z > 0 ? sprintf("%.2fx of c=16", b / z) : "")
      if (u + 0 > 0 && zu + 0 > 0) printf "; server %d us/request in the steady state, capacity %.2fx of c=16", u, zu / u
      printf "\n" }'
  done
  # Open loop at H3_OPEN_CONNS connections: a fixed offered rate (a share of the best
  # 16-connection closed-loop rate), every request timed from when it was due. This is the
  # latency users meet at that load; closed-loop clients, each waiting for its last answer,
  # only measure their own queue (Little's law: 1,000 of them at ~1,100 req/s wait ~0.9 s).
  if [[ ${base%.*} -gt 0 ]]; then
    for r in $(seq "$ROUNDS"); do
      for share in ${H3_OPEN_SHARES:-0.5 0.9}; do
        c=${H3_OPEN_CONNS:-1000}
        rate=$(awk -v b="$base" -v s="$share" 'BEGIN {printf "%.0f", b * s}')
        out=$(taskset -c 0 timeout $((DUR + 150)) "$PY" bench/serving/h3load.py "$F_HTTPS" "$CERT" "$c" "$DUR" \
              --steady --json --rate "$rate" --metrics "http://127.0.0.1:$F_MET/metrics" --server-pid "$FLOE") || true
        echo "${out%%$'\n'*}  [open loop, ${share}x of c=16, round $r]"
        json=${out##*$'\n'}
        [[ $json == \{* ]] || { echo "# h3 open loop c=$c: no result"; continue; }
        record h3-open "$c" "$r" "$json"
        "$PY" -c 'import json, sys
r = json.loads(sys.argv[1]); s = r["steady"]; rps = s["rps"] or 0
print("HTTP/3 c=%d open loop %.0f req/s offered: steady %.0f req/s (%.2fx of c=16), p99 %s ms, "
      "failed %d, client send lag p99 %s ms" % (r["connections"], r["offered_rps"], rps,
      rps / float(sys.argv[2]), s["p99_ms"], r["errors"], r["send_lag"]["p99_ms"]))' "$json" "$base"
      done
    done
  fi
fi
[[ ${ONLY:-all} == h3 ]] && exit 0

# ---- TCP: wrk (HTTP/1.1) and h2load (TLS h2) -------------------------------------------------
listen_drops() {  # TcpExt ListenOverflows + ListenDrops
  awk '/^TcpExt:/ {if (!h) {for (i = 2; i <= NF; i++) n[$i] = i; h = 1} else print $n["ListenOverflows"], $n["ListenDrops"]}' /proc/net/netstat
}
cpu() { awk '{print $14 + $15}' "/proc/$FLOE/stat"; }
tcp_run() {  # tool connections round
  local tool=$1 c=$2 r=$3 t0 t1 c0 c1 l0 l1 json
  read -r l0 d0 <<<"$(listen_drops)"; c0=$(cpu); t0=$(date +%s.%N)
  if [[ $tool == wrk ]]; then
    taskset -c 0 timeout $((DUR + 60)) wrk -t1 -c"$c" -d"${DUR}s" --timeout 10s --latency \
      "http://127.0.0.1:$F_HTTP/api/v2/ping" >"$WORK/tcp.out" 2>&1 || true
  else
    rm -f "$WORK/h2load.log"
    # -n, not -D: with -D and more than ~300 connections h2load 1.52 never printed its summary
    # (it hung after "Stopped all clients"). H2_REQUESTS defaults to ~DUR seconds of work.
    local n=${H2_REQUESTS:-$(( c * 2 > 1000 * DUR ? c * 2 : 1000 * DUR ))}
    taskset -c 0 timeout $((DUR + 90)) h2load -t1 -c"$c" -m1 -n "$n" -N 10 \
      --log-file="$WORK/h2load.log" "https://127.0.0.1:$F_HTTPS/api/v2/ping" >"$WORK/tcp.out" 2>&1 || true
  fi
  t1=$(date +%s.%N); c1=$(cpu); read -r l1 d1 <<<"$(listen_drops)"
  json=$("$PY" bench/serving/tcpload_parse.py "$tool" "$WORK/tcp.out" "$WORK/h2load.log" \
         "$(echo "($c1 - $c0) / $(getconf CLK_TCK) / ($t1 - $t0)" | bc -l)" "$((l1 - l0))" "$((d1 - d0))" "$c")
  echo "$("$PY" -c 'import json,sys; r=json.loads(sys.argv[1]); print(r["human"])' "$json")  [round $r]"
  record "$tool" "$c" "$r" "$json"
}
for r in $(seq "$ROUNDS"); do
  for c in $TCP_COUNTS; do
    tcp_run wrk "$c" "$r"
    tcp_run h2load "$c" "$r"
  done
done
