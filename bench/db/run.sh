#!/usr/bin/env bash
# Database layer: PyDAL units of work vs the async path, point selects, three backends.
# Bounded: 2000 queries per path per backend (BENCH_DB_QUERIES), well under a minute.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHONPATH=. timeout 180 .venv/bin/python bench/db/bench_db.py
