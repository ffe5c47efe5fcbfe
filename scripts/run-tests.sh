#!/usr/bin/env bash
# Run every suite; pytest's summary is the last line of output.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-services.sh
.venv/bin/python -m pytest -q -p no:cacheprovider tests "$@"
