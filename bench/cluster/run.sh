#!/usr/bin/env bash
# Cross-instance freshness and load through the Redis relay (two floe serve, PostgreSQL,
# a private redis-server). ~1 min.
set -euo pipefail
cd "$(dirname "$0")/../.."
.venv/bin/python bench/cluster/relay_bench.py --samples 100 --nodes 10 --rate 10 --seconds 10 \
  --flows 100 | tee -a bench/results/cluster.txt
