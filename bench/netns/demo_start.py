"""`floe demo` from process start to its first traffic, against a running control plane:
this checkout vs a baseline export (`run.sh` makes it), alternating, same control plane.

Covers what `setup_bench.py` leaves out: the one-time import of pyroute2 (~40 ms in a
process that already has asyncio) and the interface check before attaching. Each demo runs
0.5 s at 100 pps; rounds are bounded (at most 10, 60 s each).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.server import FloeServer  # noqa: E402


def _demo(checkout: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "demo", "--duration", "0.5", "--pps", "100"],
        cwd=checkout, env={**env, "PYTHONPATH": str(checkout)}, stderr=subprocess.PIPE,
        text=True)
    first = 0.0
    assert process.stderr is not None
    for line in process.stderr:
        if line.startswith("floe demo: traffic") and not first:
            first = time.perf_counter() - started
    if process.wait(timeout=60) != 0 or not first:
        raise RuntimeError(f"demo in {checkout} failed ({process.returncode})")
    return first


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="baseline checkout export")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rounds = max(1, min(args.rounds, 10))
    env = {"FLOE_ARGON2_PROFILE": "fast", "HTTP3_ENABLED": "false"}
    times: dict[str, list[float]] = {"base": [], "this": []}
    with FloeServer.start(env=env, timeout=60) as server:
        deadline = time.monotonic() + 30
        while not (server.data_dir / "dataplane.key").exists():
            if time.monotonic() > deadline:
                raise RuntimeError("no local dataplane key")
            time.sleep(0.1)
        for _ in range(rounds):
            times["base"].append(_demo(args.base, dict(server.env)))
            times["this"].append(_demo(ROOT, dict(server.env)))
    for label, values in times.items():
        print(json.dumps({"label": label, "scenario": "demo_first_traffic", "rounds": rounds,
                          "seconds_median": round(statistics.median(values), 3),
                          "seconds": [round(v, 3) for v in values]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
