#!/usr/bin/env bash
# Packet sent → visible in /api/v2/stats/summary (needs root: veth + XDP). ~30 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" != 0 ]; then echo "bench/freshness: needs root, skipped"; exit 0; fi
for mode in tap inline; do
  .venv/bin/python bench/freshness/freshness.py --mode "$mode" --samples "${SAMPLES:-60}" \
    | tee -a bench/results/freshness.txt
done
