"""The exporter as the observer's consumer: real event batches from the observer's own code
(`append_flows`), the real fanout, real loopback sockets."""

from __future__ import annotations

import asyncio
import itertools
import socket
import struct
import time
import zlib
from collections.abc import Iterator
from typing import Any

import pytest

from app.export.exporter import STEP_RECORDS, Exporter, ExportQueue, domain_id
from app.export.ipfix import IPV4, IPV6
from app.export.sender import CollectorLink, LinkLimits
from app.observer.events import FlowTracker, append_flows, append_lost, append_node
from app.observer.fanout import Fanout
from app.observer.ring import EventRing
from floe.dataplane.v1 import uplink_pb2 as pb
from floe.observer.v1 import observer_pb2 as obs


def record(i: int, *, ended: bool = True, v6: bool = False, ifindex: int = 3) -> Any:
    a = (bytes.fromhex("20010db8") + bytes(11) + bytes([i % 256])) if v6 else \
        bytes(10) + b"\xff\xff" + bytes([10, 0, i // 256 % 256, i % 256])
    return pb.FlowRecord(addr_a=a, addr_b=a[:-1] + b"\x63", port_a=1000 + i, port_b=80,
                         proto=6, ifindex=ifindex, interface="eth0", packets_ab=i + 1,
                         bytes_ab=100 * (i + 1), packets_ba=i, bytes_ba=50 * i,
                         first_seen_unix_ns=10**18 + i, last_seen_unix_ns=10**18 + 10**9 + i,
                         end_reason=pb.END_REASON_IDLE_TIMEOUT if ended else 0)


@pytest.fixture
def receiver() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.setblocking(False)
    yield sock
    sock.close()


def drain(sock: socket.socket) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(sock.recv(65535))
        except BlockingIOError:
            return out


def data_records(datagrams: list[bytes]) -> dict[int, int]:
    """Data records per observation domain, from the framing."""
    out: dict[int, int] = {}
    for d in datagrams:
        domain = struct.unpack("!I", d[12:16])[0]
        offset = 16
        while offset < len(d):
            set_id, length = struct.unpack("!HH", d[offset:offset + 4])
            size = {256: IPV4.record_size, 257: IPV6.record_size}.get(set_id)
            if size:
                out[domain] = out.get(domain, 0) + (length - 4) // size
            offset += length
    return out


class Rig:
    """Observer ring + fanout + an exporter towards `port`."""

    def __init__(self, port: int, capacity: int = 4096, rate: int = 0) -> None:
        self.ring = EventRing(65_536)
        self.tracker = FlowTracker(65_536)
        self.fanout = Fanout()
        self.queue = ExportQueue(capacity)
        self.fanout.add(self.queue)
        link = CollectorLink.open(f"127.0.0.1:{port}", (socket.AF_INET, ("127.0.0.1", port)),
                                  LinkLimits(1400, 60, 1000))
        self.exporter = Exporter(self.ring, self.queue, [link], messages_per_second=rate)

    def flows(self, node: str, records: list[Any]) -> None:
        batch = append_flows(self.ring, self.tracker, node, records)
        assert batch is not None
        self.fanout.publish(batch, self.ring)


def test_only_end_events_are_queued(receiver: socket.socket) -> None:
    rig = Rig(receiver.getsockname()[1])
    rig.flows("n1", [record(i, ended=False) for i in range(10)])  # NEW
    rig.flows("n1", [record(i, ended=False) for i in range(10)])  # UPDATE
    assert rig.queue.held == 0
    rig.fanout.publish(append_lost(rig.ring, "n1", 5, source=obs.LOST_EVENT_SOURCE_DATAPLANE),
                       rig.ring)
    rig.fanout.publish(append_node(rig.ring, "n1", True), rig.ring)
    assert rig.queue.held == 0
    rig.flows("n1", [record(i, ended=i % 2 == 0) for i in range(10)])
    assert rig.queue.held == 5
    assert rig.fanout.lost_total == 0


def test_only_nodes_this_instance_exports_are_queued(receiver: socket.socket) -> None:
    """With the cluster relay, a node whose stream is on another instance is exported there:
    its records are not queued here, and not counted as loss."""
    rig = Rig(receiver.getsockname()[1])
    rig.queue.exports = lambda node: node != "remote"
    rig.flows("remote", [record(i) for i in range(10)])
    rig.flows("local", [record(i) for i in range(100, 104)])
    assert rig.queue.held == 4 and rig.queue.dropped == {}
    assert rig.exporter.step() > 0
    assert data_records(drain(receiver)) == {zlib.crc32(b"local"): 4}


def test_a_step_sends_each_nodes_records_in_its_domain(receiver: socket.socket) -> None:
    rig = Rig(receiver.getsockname()[1])
    rig.flows("n1", [record(i, v6=i % 2 == 1) for i in range(30)])
    rig.flows("n2", [record(i) for i in range(100, 107)])
    assert rig.exporter.step() > 0
    assert data_records(drain(receiver)) == {zlib.crc32(b"n1"): 30, zlib.crc32(b"n2"): 7}
    assert rig.exporter.describe_node("n1") == {
        "observation_domain_id": zlib.crc32(b"n1"), "records": 30,
        "collectors": {rig.exporter.links[0].label: {"exported": 0, "lost": 0, "pending": 30}}}
    rig.exporter.settle()
    counts = rig.exporter.describe_node("n2")["collectors"]
    assert counts == {rig.exporter.links[0].label: {"exported": 7, "lost": 0, "pending": 0}}
    # a reader limited to some nodes sees the collectors numbered, not their addresses
    unnamed = rig.exporter.describe_node("n2", name_collectors=False)["collectors"]
    assert unnamed == {"collector-1": {"exported": 7, "lost": 0, "pending": 0}}


def test_a_step_takes_at_most_step_records(receiver: socket.socket) -> None:
    rig = Rig(receiver.getsockname()[1])
    rig.flows("n1", [record(i) for i in range(STEP_RECORDS * 2 + 3)])
    for left in (STEP_RECORDS + 3, 3, 0):
        rig.exporter.step()
        assert rig.queue.held == left
    assert sum(data_records(drain(receiver)).values()) == STEP_RECORDS * 2 + 3


def test_a_full_queue_refuses_the_newest_and_counts_them_per_node(
    receiver: socket.socket,
) -> None:
    """The ingest never waits on the exporter: past the bound, records are counted lost."""
    rig = Rig(receiver.getsockname()[1], capacity=1024)
    rig.flows("n1", [record(i) for i in range(1000)])
    rig.flows("n2", [record(i) for i in range(2000, 2100)])
    assert rig.queue.held == 1024
    while rig.exporter.step():
        pass
    rig.exporter.settle()
    label = rig.exporter.links[0].label
    n1 = rig.exporter.describe_node("n1")
    n2 = rig.exporter.describe_node("n2")
    assert (n1["records"], n1["collectors"][label]) == (
        1000, {"exported": 1000, "lost": 0, "pending": 0})
    assert (n2["records"], n2["collectors"][label]) == (
        100, {"exported": 24, "lost": 76, "pending": 0})
    assert rig.exporter.links[0].lost["queue_full"] == 76
    assert data_records(drain(receiver)) == {domain_id("n1"): 1000, domain_id("n2"): 24}


def test_domain_ids_are_stable_and_never_zero() -> None:
    assert domain_id("edge-1") == zlib.crc32(b"edge-1")
    assert zlib.crc32(b"node-59-WopI") == 0 and domain_id("node-59-WopI") == 1


async def test_run_sends_paced_and_stop_settles_everything(receiver: socket.socket) -> None:
    """At 200 messages a second, ~110 messages take at least (110 - burst 32) / 200 s; the
    loop stays free meanwhile (a ticker keeps its cadence). Stopping settles every record."""
    rig = Rig(receiver.getsockname()[1], capacity=4096, rate=200)
    task = asyncio.create_task(rig.exporter.run())
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    beat = asyncio.create_task(ticker())
    started = time.monotonic()
    rig.flows("n1", [record(i) for i in range(2000)])
    deadline = started + 10
    while rig.queue.held and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    elapsed = time.monotonic() - started
    messages = rig.exporter.links[0].messages
    assert rig.queue.held == 0 and messages >= 2000 // 19
    assert elapsed >= (messages - 32) / 200 * 0.9
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert max(gaps) < 0.25  # a loop held by the export would show one gap of ~elapsed
    beat.cancel()
    rig.fanout.remove(rig.queue)
    await rig.exporter.stop(task)
    assert rig.exporter.describe_node("n1")["collectors"][rig.exporter.links[0].label] == {
        "exported": 2000, "lost": 0, "pending": 0}
    assert sum(data_records(drain(receiver)).values()) == 2000


async def test_what_stop_cannot_send_is_counted_as_stopped(receiver: socket.socket) -> None:
    rig = Rig(receiver.getsockname()[1], capacity=65_536, rate=1)
    task = asyncio.create_task(rig.exporter.run())
    rig.flows("n1", [record(i) for i in range(5000)])
    await asyncio.sleep(0)
    rig.fanout.remove(rig.queue)
    await rig.exporter.stop(task)
    link = rig.exporter.links[0]
    counts = rig.exporter.describe_node("n1")["collectors"][link.label]
    assert counts["pending"] == 0 and counts["exported"] + counts["lost"] == 5000
    assert link.lost["stopped"] > 0 and counts["lost"] == link.lost["stopped"]


def test_records_that_cannot_be_encoded_are_counted_and_export_goes_on(
    receiver: socket.socket,
) -> None:
    """A queued entry that does not decode (a bug upstream) loses its step's records as
    `error`, per node; the next step exports normally."""
    rig = Rig(receiver.getsockname()[1])
    rig.flows("n1", [record(i) for i in range(3)])
    head = rig.queue.chunks[0]
    head.entries = [b"\x0a\x05" + b"\xff" * 5] * 3  # a field 1 entry whose body is garbage
    rig.flows("n1", [record(i) for i in range(10, 14)])
    assert rig.exporter.step(limit=3) == 0
    assert rig.exporter.step() > 0
    rig.exporter.settle()
    link = rig.exporter.links[0]
    assert link.lost["error"] == 3
    assert rig.exporter.describe_node("n1")["collectors"][link.label] == {
        "exported": 4, "lost": 3, "pending": 0}
