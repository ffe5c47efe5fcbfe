"""Freshness: a packet sent → visible in /api/v2/stats/summary, p50/p99 (goal p99 ≤ 250 ms).

Starts `floe serve` and `floe dataplane --mode tap` on a veth in a namespace it creates,
then sends one small burst at a time and polls the summary every 5 ms until the packet
count includes it. Bounded: `--samples` bursts, 5 s timeout each. Needs root.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from dataplane.config import KEY_FILE  # noqa: E402
from dataplane.netns import Topology, unique_prefix  # noqa: E402
from dataplane.trafficgen import AfPacketSender, FrameSpec, build_frame  # noqa: E402
from tests.e2e.test_dataplane_e2e import ControlPlane, _dataplane, _stop  # noqa: E402
from tests.support.server import FloeServer  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--mode", default="tap", choices=("tap", "inline"))
    args = parser.parse_args()
    server = FloeServer.start({"FLOE_ARGON2_PROFILE": "fast", "HTTP3_ENABLED": "false"}, timeout=60)
    try:
        deadline = time.monotonic() + 30
        while not (server.data_dir / KEY_FILE).exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        with Topology(unique_prefix("fresh")) as topo:
            pair = topo.add_veth(namespace=topo.add_namespace())
            process = _dataplane(server, "--mode", args.mode, "--interface", pair.host)
            plane = ControlPlane(server)
            try:
                seen = plane.wait_packets(pair.host, 0, timeout=30)["packets"]
                sender = AfPacketSender(pair.peer, pair.namespace)
                frame = build_frame(FrameSpec(src="10.8.0.1", dst="10.8.0.2", proto="udp"))
                lags: list[float] = []
                for _ in range(args.samples):
                    sent_at = time.monotonic()
                    sender.send([frame] * 4)
                    deadline = sent_at + 5
                    while time.monotonic() < deadline:
                        now = plane.interface(pair.host)["packets"]  # type: ignore[index]
                        if now >= seen + 4:
                            lags.append((time.monotonic() - sent_at) * 1000)
                            seen = now
                            break
                        time.sleep(0.005)
                    time.sleep(0.05)
            finally:
                plane.close()
                _stop(process)
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "app.cli",
                        "dataplane",
                        "--detach",
                        "--interface",
                        pair.host,
                    ],
                    env=dict(server.env),
                    cwd=REPO,
                    capture_output=True,
                    check=False,
                )
    finally:
        server.stop()
    if not lags:
        print("freshness: no sample completed")
        return 1
    lags.sort()
    p99 = lags[min(len(lags) - 1, round(0.99 * (len(lags) - 1)))]
    print(
        f"freshness ({args.mode}): samples={len(lags)}/{args.samples} "
        f"p50={statistics.median(lags):.1f} ms p99={p99:.1f} ms max={lags[-1]:.1f} ms "
        f"(goal p99 <= 250 ms)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
