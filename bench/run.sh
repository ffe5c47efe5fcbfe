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
exit $status
