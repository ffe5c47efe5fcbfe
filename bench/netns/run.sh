#!/usr/bin/env bash
# Namespace + veth set-up time (demo, root tests): this checkout vs a baseline commit, same run.
# BASE (default: the last commit that still shelled out to `ip`/`sysctl`) is exported to a temp
# dir and imported from there; the two alternate for PASSES passes. Then `floe demo` from start
# to first traffic, both alternating against one control plane. Needs root. ~2 min.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" != 0 ]; then echo "bench/netns: needs root, skipped"; exit 0; fi
BASE="${BASE:-4c5a16a}"
ROUNDS="${ROUNDS:-20}"
PASSES="${PASSES:-3}"
base_dir="$(mktemp -d)"
trap 'rm -rf "$base_dir"' EXIT
git archive "$BASE" dataplane app bpf | tar -x -C "$base_dir"
ln -s "$PWD/floe" "$base_dir/floe"  # generated gRPC code and the XDP object: not in git
ln -s "$PWD/bpf/build" "$base_dir/bpf/build"
mkdir -p bench/results
out="bench/results/netns.jsonl"
echo "{\"date\": \"$(date -u +%FT%TZ)\", \"base\": \"$BASE\", \"head\": \"$(git rev-parse --short HEAD)\", \"python\": \"$(.venv/bin/python -VV | tr -d '\n')\"}" >> "$out"
for _ in $(seq "$PASSES"); do
  PYTHONPATH="$base_dir" .venv/bin/python bench/netns/setup_bench.py --rounds "$ROUNDS" --label base | tee -a "$out"
  PYTHONPATH="$PWD" .venv/bin/python bench/netns/setup_bench.py --rounds "$ROUNDS" --label this | tee -a "$out"
done
.venv/bin/python bench/netns/demo_start.py --base "$base_dir" --rounds "${DEMO_ROUNDS:-5}" | tee -a "$out"
