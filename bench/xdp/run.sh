#!/usr/bin/env bash
# In-kernel path: floe_xdp with 1k CIDR rules vs empty XDP programs, same veth + generator.
# Needs root (namespaces, XDP). Bounded: 5 configs x 3 rounds x 1M frames (~15 s).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" != 0 ]; then echo "bench/xdp: needs root, skipped"; exit 0; fi
make -s -C bpf
exec timeout 180 .venv/bin/python bench/xdp/bench_xdp.py "$@"
