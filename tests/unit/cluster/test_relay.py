"""The relay without Redis: entry wire form, gap and loss accounting, bounds, presence."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from app.cluster.relay import Relay, RelayLimits
from app.cluster.wire import Entry, WireError, decode, encode
from app.ingest.service import Session, UplinkService
from app.ingest.state import IngestState
from floe.dataplane.v1 import uplink_pb2 as pb


def relay(**limits: Any) -> Relay:
    return Relay("redis://unused", "s", UplinkService(IngestState(), lambda: None),
                 lambda: None, RelayLimits(**limits))


def hello(node: str = "n1", instance: str = "i1") -> Any:
    return pb.Hello(node_id=node, instance_id=instance,
                    interfaces=[pb.InterfaceInfo(name="eth0", mode=pb.MODE_TAP)])


def batch(seq: int, packets: int, flows: int = 0) -> bytes:
    records = [pb.FlowRecord(addr_a=bytes(16), addr_b=bytes(15) + b"\x01", port_a=n,
                             interface="eth0", first_seen_unix_ns=n + 1) for n in range(flows)]
    return pb.UplinkMessage(batch=pb.Batch(seq=seq, flows=records, counters=[pb.CounterSnapshot(
        interface="eth0", counter_epoch="e", values={"packets": packets})])).SerializeToString()


class Origin:
    """Another instance writing entries, numbered as the real publisher numbers them."""

    def __init__(self) -> None:
        self.name = uuid.uuid4().hex[:16]
        self.seq = 0
        self.flows = 0

    def entry(self, kind: str, flows: int = 0, **fields: Any) -> dict[bytes, bytes]:
        self.seq += 1
        self.flows += flows
        return encode(Entry(origin=self.name, seq=self.seq, flows=self.flows, kind=kind,
                            flow_count=flows, **fields))

    def batch(self, seq: int, packets: int, flows: int = 0) -> dict[bytes, bytes]:
        return self.entry("batch", flows, node="n1", instance="i1",
                          data=batch(seq, packets, flows))


def packets(r: Relay) -> int:
    return r._service.state.interfaces[("n1", "eth0")].totals()["packets"]


def test_wire_round_trip_and_refusals() -> None:
    entry = Entry(origin="o", seq=3, flows=7, kind="batch", node="n", instance="i",
                  data=b"\x00\x01", meta={"a": 1}, flow_count=2)
    assert decode(encode(entry)) == entry
    fields = encode(entry)
    for key, value in ((b"k", b"nope"), (b"s", b"x"), (b"s", b"0"), (b"n", b""),
                       (b"m", b"{"), (b"m", b"[1]"), (b"o", b"o" * 65), (b"n", b"a*b")):
        with pytest.raises(WireError):
            decode({**fields, key: value})


async def test_batches_apply_and_gaps_are_counted_in_entries_and_flows() -> None:
    r, origin = relay(), Origin()
    told: list[tuple[int, str]] = []
    r.on_lost = lambda count, source: told.append((count, source))
    await r._receive(b"1-0", origin.entry("open", node="n1", instance="i1",
                                          data=hello().SerializeToString(),
                                          meta={"p": "peer", "u": "key", "t": time.time()}))
    node = r._service.state.nodes["n1"]
    assert node.connected and node.control_plane == origin.name
    await r._receive(b"2-0", origin.batch(1, 100, flows=2))
    lost = [origin.batch(seq, 100 * seq, flows=3) for seq in (2, 3)]  # trimmed, say
    last = origin.batch(4, 400, flows=1)
    await r._receive(b"5-0", last)
    assert packets(r) == 400  # healed by the next batch
    assert (r.stats.lost_entries, r.stats.lost_flow_records) == (2, 6)
    assert told == [(6, origin.name)]  # the observer's LostEvent (source RELAY)
    assert r.stats.applied == 2 and node.last_seen > 0
    # read again after a reset: entries already had are skipped, not applied or counted
    for fields in (*lost, last):
        await r._receive(b"1-0", fields)
    assert r.stats.applied == 2 and r.stats.lost_entries == 2
    assert r.status()["lost"] == {"entries": 2, "flow_records": 6}


async def test_own_malformed_and_oversize_entries() -> None:
    r, origin = relay(max_entry_bytes=1 << 16), Origin()
    own = encode(Entry(origin=r.instance, seq=1, flows=0, kind="batch", node="n1",
                       instance="i1", data=batch(1, 5)))
    await r._receive(b"1-0", own)
    assert r.stats.received == 0 and "n1" not in r._service.state.nodes
    await r._receive(b"2-0", {b"k": b"batch"})
    await r._receive(b"3-0", origin.entry("batch", node="n1", instance="i1", data=b"\xff"))
    await r._receive(b"4-0", origin.entry("batch", node="n1", instance="i1",
                                          data=b"x" * (1 << 16)))
    assert (r.stats.malformed, r.stats.oversize) == (2, 1)


async def test_close_and_silence_show_the_node_disconnected(monkeypatch: Any) -> None:
    r, origin = relay(node_ttl_seconds=2.0), Origin()
    opened = {"data": hello().SerializeToString(), "meta": {"t": time.time()}}
    await r._receive(b"1-0", origin.entry("open", node="n1", instance="i1", **opened))
    await r._receive(b"2-0", origin.entry("close", node="n1", instance="i1"))
    assert not r._service.state.nodes["n1"].connected
    await r._receive(b"3-0", origin.entry("open", node="n1", instance="i1", **opened))
    await r._receive(b"4-0", origin.batch(1, 1))
    r._expire()
    assert r._service.state.nodes["n1"].connected
    later = time.monotonic() + 3
    monkeypatch.setattr(time, "monotonic", lambda: later)
    r._expire()
    assert not r._service.state.nodes["n1"].connected and r.peer_count == 0


def test_publisher_queue_is_bounded_and_drops_counted() -> None:
    r = relay(queue_bytes=1 << 20, max_entry_bytes=1 << 20)
    r.batch("n1", "i1", pb.Batch(seq=1, flows=[pb.FlowRecord(interface="x" * (1 << 20))]), b"")
    assert r.stats.unpublished["oversize"] == 1 and r.queued_count == 0
    assert (r.stats.unpublished_batches, r.stats.unpublished_flow_records) == (1, 1)
    for seq in range(1, 40):
        r.applied("n1", pb.Applied(generation=seq, error="e" * 100_000))
    assert r.stats.unpublished["queue_full"] > 0
    assert r._queued_bytes <= 1 << 20
    numbers = [int(fields[b"s"]) for fields, _ in r._queue]
    assert numbers == sorted(numbers) and numbers[-1] == 40  # the newest kept; gaps numbered


def test_a_node_of_an_instance_and_a_stale_announcement() -> None:
    service = UplinkService(IngestState(), lambda: None)
    now = time.time()
    assert service.relayed_open(hello(), "k", "p", now, "B")
    assert not service.relayed_open(hello(instance="old"), "k", "p", now - 10, "A")
    assert service.state.nodes["n1"].control_plane == "B"
    # the same dataplane's local stream, older than its announcement elsewhere, is ended
    local = Session(node_id="n2", instance_id="i9", since=now - 5)
    service.sessions["n2"] = local
    assert not service.relayed_open(hello("n2", "i9"), "k", "p", now, "B")
    assert local.replaced.is_set() and "reconnected" in local.replaced_why


class FakeStore:
    """The rule store as the relay sees it: a current generation, and refresh()."""

    def __init__(self, generation: int, stored: int) -> None:
        self.generation, self.stored, self.refreshed = generation, stored, 0

    def current(self) -> Any:
        return self

    async def refresh(self, generation: int) -> bool:
        self.refreshed += 1
        if self.stored > self.generation:
            self.generation = self.stored
            return True
        return False


async def test_rule_generations_seen_elsewhere_are_loaded_once() -> None:
    store = FakeStore(generation=3, stored=5)
    r = Relay("redis://unused", "s", UplinkService(IngestState(), lambda: None),
              lambda: store, RelayLimits())  # type: ignore[arg-type, return-value]
    origin = Origin()
    await r._receive(b"1-0", origin.entry("alive", meta={"rg": 3, "nodes": []}))
    assert r._rules_task is None  # nothing newer
    await r._receive(b"2-0", origin.entry("rules", meta={"g": 5}))  # the notification
    await r._receive(b"3-0", origin.entry("alive", meta={"rg": 5, "nodes": []}))
    assert r._rules_task is not None
    await r._rules_task
    assert store.generation == 5 and store.refreshed == 1
    # a notification lost: the next heartbeat carries the generation
    store.stored = 6
    await r._receive(b"4-0", origin.entry("alive", meta={"rg": 6, "nodes": []}))
    assert r._rules_task is not None
    await r._rules_task
    assert store.generation == 6 and store.refreshed == 2
