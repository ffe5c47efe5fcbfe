#!/usr/bin/env bash
# The dashboard in Chromium: bundle size, time to interactive, main-thread time per update
# with 4 live charts and 1,000 flows/s, long tasks, memory over 10 minutes (bench.mjs).
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s webui chromium
node bench/webui/bench.mjs | tee -a bench/results/webui.txt
