#!/usr/bin/env bash
# Flow pipeline benchmarks (bounded, < 4 min): flow table at 1M flows, then (root only) the
# AF_XDP tap path in Python vs a C libxdp rx-drop consumer on the same veth and generator, and
# pass-through (ring buffer) against an empty XDP_PASS and against the tap path.
# Output is also appended to bench/results/flows.txt with the date.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's code, whatever .venv points at
mkdir -p bench/results
{
  echo "### $(date -u +%Y-%m-%dT%H:%M:%SZ) bench/flows/run.sh (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  echo "== flow table (1M live flows)"
  timeout 120 $PY bench/flows/flowtable_bench.py --flows 1000000
  if [ "$(id -u)" != 0 ]; then
    echo "== tap path: skipped (needs root)"
  else
    [ -f bpf/build/floe_xdp.o ] || make -s bpf
    BUILD="${TMPDIR:-/tmp}/floe-bench-flows"
    mkdir -p "$BUILD"
    cc -O2 -Wall -o "$BUILD/xsk_rxdrop" bench/flows/xsk_rxdrop.c -lxdp -lbpf
    echo "== AF_XDP tap path"
    timeout 150 $PY bench/flows/tap_bench.py --rxdrop "$BUILD/xsk_rxdrop" --seconds 4 --rounds 2
    echo "== pass-through (ring buffer)"
    timeout 300 $PY bench/flows/passthrough_bench.py --seconds 4
  fi
} 2>&1 | tee -a bench/results/flows.txt
