"""IPFIX export: the exporter's own rate, the rate nfcapd takes without loss, and an exact
match of flows, packets and bytes after 100,000 flows through a real `floe serve`.

1. exporter alone (in process): 100,000 END events made by the observer's own code
   (`append_flows`) go through `Exporter.step` unpaced, to a socket nobody reads (so only
   our side is measured): records/s of CPU.
2. to nfcapd (in process): the same flows, paced at each of `--rates` messages/s, into a real
   nfcapd; `nfdump -I` must count every flow, packet and byte. The best rate with an exact
   match is the export rate to nfcapd on this machine.
3. end to end: `floe serve` (FLOE_IPFIX_COLLECTORS=nfcapd, default pacing) fed 100,000
   ended flows over a real uplink stream in batches of 2,000: nfdump must read back exactly
   the flows, packets and bytes sent. The ingest's time is compared, round by round, with the
   same feed into a `floe serve` without export and one exporting to a socket nobody reads
   (the exporter's own cost, without a collector process competing for the two cores), in
   wall time and in the server's CPU time (less sensitive to a shared machine's load).
Bounded: every wait has a timeout; the whole run takes about a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from app.export.exporter import Exporter, ExportQueue  # noqa: E402
from app.export.sender import CollectorLink, LinkLimits  # noqa: E402
from app.observer.events import FlowTracker, append_flows  # noqa: E402
from app.observer.fanout import Fanout  # noqa: E402
from app.observer.ring import EventRing  # noqa: E402
from tests.integration.export.conftest import BASE_ENV, Rest  # noqa: E402
from tests.integration.export.nfdump import RECEIVE_BUFFER, Nfcapd  # noqa: E402
from tests.integration.export.traffic import ended_flows, expected_row, uplink  # noqa: E402
from tests.support.ports import free_udp_port  # noqa: E402
from tests.support.server import FloeServer  # noqa: E402

BATCH = 2000
BIG_BUFFER = RECEIVE_BUFFER  # nfcapd -B 4 MiB (net.core.rmem_max here)


def totals(flows: list[Any]) -> tuple[int, int, int]:
    return (len(flows), sum(f.packets_ab + f.packets_ba for f in flows),
            sum(f.bytes_ab + f.bytes_ba for f in flows))


def rig(port: int, flows: list[Any], rate: int) -> Exporter:
    """An exporter towards 127.0.0.1:`port` with every flow's END event queued."""
    ring, tracker, fanout = EventRing(len(flows) + BATCH), FlowTracker(1024), Fanout()
    queue = ExportQueue(len(flows))
    fanout.add(queue)
    for start in range(0, len(flows), BATCH):
        batch = append_flows(ring, tracker, "bench", flows[start:start + BATCH])
        assert batch is not None
        fanout.publish(batch, ring)
    link = CollectorLink.open(f"127.0.0.1:{port}", (socket.AF_INET, ("127.0.0.1", port)),
                              LinkLimits(1400, 60, 1000))
    return Exporter(ring, queue, [link], messages_per_second=rate)


def exporter_alone(flows: list[Any]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        exporter = rig(sink.getsockname()[1], flows, 0)
        cpu, wall = time.process_time(), time.perf_counter()
        while exporter.step():
            pass
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        link = exporter.links[0]
        print(f"exporter alone: {len(flows)} records in {link.messages} messages, "
              f"CPU {cpu:.3f} s → {len(flows) / cpu:,.0f} records/s "
              f"({cpu / len(flows) * 1e6:.2f} µs/record; wall {wall:.3f} s)")
        link.close()


async def to_nfcapd(flows: list[Any], rate: int, buffer_bytes: int = 0) -> bool:
    port = free_udp_port()
    collector = Nfcapd.start(port, buffer_bytes=buffer_bytes)  # 0: the system's default
    try:
        exporter = rig(port, flows, rate)
        task = asyncio.create_task(exporter.run())
        started = time.perf_counter()
        deadline = started + 120
        while exporter.queue.held and time.perf_counter() < deadline:
            await asyncio.sleep(0.005)
        seconds = time.perf_counter() - started
        await exporter.stop(task)
        collector.stop()
        summary = collector.summary()
        got = (summary["Flows"], summary["Packets"], summary["Bytes"])
        exact = got == totals(flows)
        pace = f"{rate:,} msg/s" if rate else "unpaced"
        pace += f", nfcapd -B {buffer_bytes}" if buffer_bytes else ", nfcapd's default buffer"
        verdict = "== sent" if exact else f"!= sent {totals(flows)}"
        print(f"to nfcapd, {pace}: {len(flows)} records in {seconds:.3f} s = "
              f"{len(flows) / seconds:,.0f} records/s, {exporter.links[0].messages} messages; "
              f"nfdump flows/packets/bytes {got} {verdict}; "
              f"sequence failures {summary.get('Sequence failures')}")
        return exact
    finally:
        collector.cleanup()


def cpu_seconds(server: FloeServer) -> float:
    """User + system CPU of the `floe serve` process (all its threads) so far."""
    fields = Path(f"/proc/{server.process.pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def feed(server: FloeServer, flows: list[Any], node: str) -> tuple[Rest, float, float]:
    """(rest, ingest seconds, worst ack seconds) for every flow sent over one uplink."""
    client = httpx.AsyncClient(base_url=server.url("/api/v2"), timeout=30.0)
    rest = await Rest.login(server, client)
    key = await rest.dataplane_key(node)
    worst = 0.0
    async with uplink(server.grpc_port, key, node) as link:
        started = time.perf_counter()
        for start in range(0, len(flows), BATCH):
            sent = time.perf_counter()
            await link.send(flows[start:start + BATCH], timeout=60.0)
            worst = max(worst, time.perf_counter() - sent)
        return rest, time.perf_counter() - started, worst


async def ingest_only(flows: list[Any], sink: socket.socket | None) -> tuple[float, float]:
    """(ingest seconds, server CPU seconds) into a server without export, or exporting to
    `sink` (a socket that accepts and never reads: the exporter's cost without a collector
    process competing for the cores). CPU is counted until every record is settled."""
    env = dict(BASE_ENV)
    if sink is not None:
        env["FLOE_IPFIX_COLLECTORS"] = f"127.0.0.1:{sink.getsockname()[1]}"
    with FloeServer.start(env=env, timeout=60) as server:
        cpu = cpu_seconds(server)
        rest, seconds, worst = await feed(server, flows, "bench-ingest")
        if sink is not None:
            await rest.wait_ipfix("bench-ingest", f"127.0.0.1:{sink.getsockname()[1]}",
                                  records=len(flows), timeout=120.0)
        cpu = cpu_seconds(server) - cpu
        await rest.client.aclose()
    what = "export to a socket nobody reads" if sink is not None else "no export"
    print(f"ingest, {what}: {seconds:.2f} s (worst ack {worst * 1000:.0f} ms), "
          f"floe serve CPU {cpu:.2f} s")
    return seconds, cpu


async def end_to_end(flows: list[Any]) -> bool:
    """nfcapd with a 4 MiB receive buffer: on this shared 2-core machine nfcapd is sometimes
    descheduled for longer than its default buffer (~90 datagrams) lasts."""
    port = free_udp_port()
    collector = Nfcapd.start(port, buffer_bytes=BIG_BUFFER)
    try:
        env = {**BASE_ENV, "FLOE_IPFIX_COLLECTORS": f"127.0.0.1:{port}"}
        with FloeServer.start(env=env, timeout=60) as server:
            started = time.perf_counter()
            rest, ingest, worst = await feed(server, flows, "bench-e2e")
            label = f"127.0.0.1:{port}"
            counts = await rest.wait_ipfix("bench-e2e", label, records=len(flows),
                                           timeout=120.0)
            exported_at = time.perf_counter() - started
            await rest.client.aclose()
        collector.stop()
        rows = collector.records()
        summary = collector.summary()
        exact = (Counter(rows) == Counter(expected_row(f) for f in flows)
                 and (summary["Flows"], summary["Packets"], summary["Bytes"]) == totals(flows))
        print(f"end to end: ingest with export {ingest:.2f} s (worst ack "
              f"{worst * 1000:.0f} ms); all {len(flows)} exported "
              f"{exported_at:.2f} s after the first batch ({len(flows) / exported_at:,.0f} "
              f"records/s); /nodes {counts}; nfdump: {summary['Flows']} flows, "
              f"{summary['Packets']} packets, {summary['Bytes']} bytes, sequence failures "
              f"{summary.get('Sequence failures')}: "
              f"{'exact match' if exact else 'MISMATCH'}")
        return exact
    finally:
        collector.cleanup()


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flows", type=int, default=100_000)
    parser.add_argument("--rates", default="2000,5000,10000,0",
                        help="messages/s per collector for the nfcapd runs (0: unpaced)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="end-to-end rounds: no export, export to a socket, export to nfcapd")
    parser.add_argument("--no-e2e", action="store_true")
    args = parser.parse_args()
    print(f"### {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} ipfix_bench "
          f"{platform.python_implementation()} {platform.python_version()} "
          f"({sys.executable}), load {open('/proc/loadavg').read().split()[:3]}")
    flows = ended_flows(args.flows, seed=11)
    exporter_alone(flows)
    ok = True
    for rate in (int(r) for r in args.rates.split(",")):
        await to_nfcapd(flows, rate)  # a loss here is nfcapd's buffer: reported, not failed
    ok = await to_nfcapd(flows, 0, buffer_bytes=BIG_BUFFER)
    if not args.no_e2e:
        speed: list[float] = []
        cost: list[float] = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
            sink.bind(("127.0.0.1", 0))
            for _ in range(args.rounds):
                plain, plain_cpu = await ingest_only(flows, None)
                exporting, exporting_cpu = await ingest_only(flows, sink)
                speed.append(plain / exporting)
                cost.append((exporting_cpu - plain_cpu) / len(flows) * 1e6)
                ok = await end_to_end(flows) and ok
        speed.sort()
        cost.sort()
        print(f"ingest speed exporting / not, {len(speed)} rounds: "
              f"{', '.join(f'{r:.2f}x' for r in speed)} (median {speed[len(speed) // 2]:.2f}x); "
              f"floe serve CPU added by export: "
              f"{', '.join(f'{c:.1f}' for c in cost)} µs/record "
              f"(median {cost[len(cost) // 2]:.1f})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
