"""Python tap consumer for the benchmark: the runner's own per-batch work (parse, flow table,
aggregates: Runner._apply) on an AF_XDP source, and every 100 ms (the runner's default tick)
its own flow work (Runner.table_flows: expire, drain and encode in slices, reading the ring
between slices) and aggregate tick. Only the uplink is left out.

Runs for SECONDS, prints "ready" once its sockets are registered and at the end
"received <n> fill_empty <n> dropped <n> flows <n>" (same format as xsk_rxdrop).
Usage: tap_consumer.py IFNAME SECONDS [--count-only]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from dataplane.bpf import XdpProgram
from dataplane.config import DEFAULT_TICK_SECONDS, DataplaneConfig
from dataplane.flowtable import FlowTable
from dataplane.runner import Runner
from dataplane.sources.afxdp import AfXdpSource

TICK = DEFAULT_TICK_SECONDS  # the runner's default tick


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("ifname")
    ap.add_argument("seconds", type=float)
    ap.add_argument("--count-only", action="store_true", help="drain rings only (no pipeline)")
    ap.add_argument("--batch", type=int, default=4096)
    args = ap.parse_args()
    prog = XdpProgram.open(args.ifname)
    src = AfXdpSource(args.ifname, prog)
    config = DataplaneConfig(target="127.0.0.1:1", api_key="", node_id="bench",
                             instance_id="bench", state_dir=Path(tempfile.gettempdir()))
    runner = Runner(config, "tap", args.ifname)
    runner.source = src  # so table_flows reads the ring between slices, as in production
    runner.table = ft = FlowTable(capacity=1 << 20, track_deltas=True)
    assert runner.aggregator is not None
    print("ready", flush=True)
    received = 0
    cpu0 = time.process_time()
    end = time.monotonic() + args.seconds
    next_tick = time.monotonic() + TICK
    worst_tick = 0.0
    while (now := time.monotonic()) < end:
        batch = src.read_batch(args.batch, 0.001)
        if batch is None:
            break
        n = len(batch)
        received += n
        if n and not args.count_only:
            runner._apply(batch)
        if now >= next_tick and not args.count_only:
            t = time.perf_counter()
            ts = time.time_ns()
            runner.table_flows(ts)
            runner.aggregator.tick(ts)
            worst_tick = max(worst_tick, time.perf_counter() - t)
            next_tick = now + TICK
    cpu = time.process_time() - cpu0
    loss = src.loss()
    src.close()
    prog.close()
    if not args.count_only:  # frames table_flows read between its slices count too
        received = runner.user_counters["packets"]
    print(
        f"received {received} fill_empty {loss['fill_ring_empty']} "
        f"dropped {loss['rx_ring_full'] + loss['dropped_other']} flows {ft.stats().created} "
        f"worst_tick_ms {worst_tick * 1e3:.2f} cpu_s {cpu:.3f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
