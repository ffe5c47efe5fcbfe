#!/usr/bin/env bash
# In-kernel path: floe_xdp with 1k CIDR rules vs empty XDP programs, same veth + generator.
# Needs root (namespaces, XDP). Bounded: 5 configs x 150 bursts x 20k frames (~30 s),
# killed after 180 s. Output is also appended to bench/results/xdp.txt with the date.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" != 0 ]; then echo "bench/xdp: needs root, skipped"; exit 0; fi
make -s -C bpf
mkdir -p bench/results
{ echo "== bench/xdp $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  timeout 180 .venv/bin/python bench/xdp/bench_xdp.py "$@"
} | tee -a bench/results/xdp.txt
