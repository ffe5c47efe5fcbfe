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
echo "== bench/observer/ipfix_bench.py (IPFIX export to nfcapd, ~1.5 min)"
timeout 600 .venv/bin/python bench/observer/ipfix_bench.py 2>&1 | tee -a bench/results/ipfix.txt \
  || status=1
exit $status
