#!/usr/bin/env bash
# Observer benchmark: 100 GetFlows followers at >= 20k events/s, alone and under REST load,
# with one stalled consumer (see observer_bench.py). ~1 minute with the defaults.
# Usage: bench/observer/run.sh [--rate N] [--seconds S] [--followers F]
set -euo pipefail
cd "$(dirname "$0")/../.."
exec .venv/bin/python bench/observer/observer_bench.py "$@"
