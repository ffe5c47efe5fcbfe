"""Python tap consumer for the benchmark: AF_XDP source -> parse -> flow table -> aggregates,
and every 100 ms (the runner's default tick) the flow work the runner does: expire, drain and
encode the records to their wire form.

Runs for SECONDS, prints "ready" once its sockets are registered and at the end
"received <n> fill_empty <n> dropped <n> flows <n>" (same format as xsk_rxdrop).
Usage: tap_consumer.py IFNAME SECONDS [--count-only]
"""

from __future__ import annotations

import argparse
import time

from dataplane.aggregate import Aggregator
from dataplane.bpf import XdpProgram
from dataplane.config import DEFAULT_TICK_SECONDS
from dataplane.flowtable import FlowTable
from dataplane.flowwire import encode_flows
from dataplane.parse import parse_batch
from dataplane.runner import MAX_FLOWS_PER_TICK
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
    ft = FlowTable(capacity=1 << 20, track_deltas=True)
    agg = Aggregator()
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
            parsed = parse_batch(batch)
            ft.update(parsed)
            agg.add(parsed, ft.last_deltas())
        if now >= next_tick:
            t = time.perf_counter()
            ts = time.time_ns()
            encode_flows(ft.expire(ts), args.ifname)
            encode_flows(ft.drain_updates(limit=MAX_FLOWS_PER_TICK), args.ifname)
            agg.tick(ts)
            worst_tick = max(worst_tick, time.perf_counter() - t)
            next_tick = now + TICK
    cpu = time.process_time() - cpu0
    loss = src.loss()
    src.close()
    prog.close()
    print(
        f"received {received} fill_empty {loss['fill_ring_empty']} "
        f"dropped {loss['rx_ring_full'] + loss['dropped_other']} flows {ft.stats().created} "
        f"worst_tick_ms {worst_tick * 1e3:.2f} cpu_s {cpu:.3f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
