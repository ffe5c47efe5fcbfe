#!/usr/bin/env bash
# In-kernel path: floe_xdp with 1k CIDR rules vs empty XDP programs, same veth + generator.
# Needs root (namespaces, XDP). Bounded: 12 configs x 150 bursts x 20k frames (~60 s),
# killed after 180 s. Output is also appended to bench/results/xdp.txt with the date.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" != 0 ]; then echo "bench/xdp: needs root, skipped"; exit 0; fi
make -s -C bpf
mkdir -p bench/results
# reference programs (bench/xdp/floor.c): the least a counting CIDR filter does per frame
BUILD="${TMPDIR:-/tmp}/floe-bench-xdp"
mkdir -p "$BUILD"
clang -O2 -g -target bpf -mcpu=v3 -Wall -Werror -Ibpf/build -Ibpf -D__TARGET_ARCH_"$(uname -m | sed -e s/x86_64/x86/ -e s/aarch64/arm64/)" \
  -c bench/xdp/floor.c -o "$BUILD/floor.o"
{ echo "== bench/xdp $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  timeout 180 .venv/bin/python bench/xdp/bench_xdp.py --floor "$BUILD/floor.o" "$@"
} | tee -a bench/results/xdp.txt
