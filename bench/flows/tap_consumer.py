"""Python consumer for the benchmarks: the runner's own per-batch work (parse, flow table,
aggregates: Runner._apply) on an AF_XDP source (tap) or the XDP ring buffer (`--ring`,
pass-through), and every 100 ms (the runner's default tick) its own flow work
(Runner.table_flows: expire, drain and encode in slices, reading the ring between slices) and
aggregate tick. Only the uplink is left out.

Runs for SECONDS, prints "ready" once its sockets are registered and at the end
"received <n> fill_empty <n> dropped <n> flows <n> ... busy_s <s>" (the xsk_rxdrop format
plus more); busy_s and busy_cpu_s are the wall and CPU time from the first frame read to the
last.
Usage: tap_consumer.py IFNAME SECONDS [--count-only] [--ring]
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
from dataplane.sources.base import Source
from dataplane.sources.ringbuf import RingSource

TICK = DEFAULT_TICK_SECONDS  # the runner's default tick


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("ifname")
    ap.add_argument("seconds", type=float)
    ap.add_argument("--count-only", action="store_true", help="drain rings only (no pipeline)")
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--ring", action="store_true", help="read the ring buffer (pass-through)")
    args = ap.parse_args()
    prog = XdpProgram.open(args.ifname)
    src: Source = RingSource(prog) if args.ring else AfXdpSource(args.ifname, prog)
    config = DataplaneConfig(target="127.0.0.1:1", api_key="", node_id="bench",
                             instance_id="bench", state_dir=Path(tempfile.gettempdir()))
    runner = Runner(config, "passthrough" if args.ring else "tap", args.ifname)
    runner.source = src  # so table_flows reads the ring between slices, as in production
    runner.table = ft = FlowTable(capacity=1 << 20, track_deltas=True)
    assert runner.aggregator is not None
    print("ready", flush=True)
    received = 0
    cpu0 = time.process_time()
    end = time.monotonic() + args.seconds
    next_tick = time.monotonic() + TICK
    worst_tick = 0.0
    first = last = 0.0
    cpu_first = cpu_last = 0.0
    while (now := time.monotonic()) < end:
        batch = src.read_batch(args.batch, 0.001)
        if batch is None:
            break
        n = len(batch)
        if n:
            if not first:
                first, cpu_first = now, time.process_time()
            last, cpu_last = time.monotonic(), time.process_time()
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
    if args.ring:
        loss = {"fill_ring_empty": 0, "rx_ring_full": prog.counters().ring_full,
                "dropped_other": 0}
    src.close()
    prog.close()
    if not args.count_only:  # frames table_flows read between its slices count too
        received = runner.user_counters["packets"]
    print(
        f"received {received} fill_empty {loss['fill_ring_empty']} "
        f"dropped {loss['rx_ring_full'] + loss['dropped_other']} flows {ft.stats().created} "
        f"worst_tick_ms {worst_tick * 1e3:.2f} cpu_s {cpu:.3f} busy_s {last - first:.3f} "
        f"busy_cpu_s {cpu_last - cpu_first:.3f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
