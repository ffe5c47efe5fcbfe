#!/usr/bin/env bash
# `make bench`: run every bench/<area>/run.sh in turn. Each prints its figures as ratios
# measured side by side in one run and appends a dated block to bench/results/.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
status=0
for script in bench/*/run.sh; do
  echo "== ${script}"
  bash "$script" || status=1
done
echo "== bench/serving/concurrency.sh (HTTP/3 16-1,000 and TCP 1,000/10,000 connections, ~4 min)"
bash bench/serving/concurrency.sh || status=1
echo "== bench/serving/instances.sh (--instances 2 vs one: REST and WebSocket fan-out, ~3 min)"
bash bench/serving/instances.sh || status=1
echo "== bench/observer/ipfix_bench.py (IPFIX export to nfcapd, ~1.5 min)"
timeout 600 .venv/bin/python bench/observer/ipfix_bench.py 2>&1 | tee -a bench/results/ipfix.txt \
  || status=1
exit $status
