"""The ring (cursors, eviction), the flow tracker (event kinds, deltas) and the fan-out
(bounded queues whose drops are counted exactly)."""

from __future__ import annotations

import asyncio

import numpy as np

from app.observer.events import FlowTracker, append_flows, append_lost
from app.observer.fanout import Fanout, Follower
from app.observer.filters import compile_selection
from app.observer.ring import EventRing
from floe.dataplane.v1 import uplink_pb2 as up
from floe.observer.v1 import observer_pb2 as pb
from tests.unit.observer.conftest import record


def decode(entries: list[bytes]) -> list[pb.Event]:
    return list(pb.GetFlowsResponse.FromString(b"".join(entries)).events)


def test_cursors_are_consecutive_and_the_ring_keeps_at_least_its_capacity() -> None:
    ring = EventRing(1000)
    tracker = FlowTracker(10_000)
    start = ring.next_cursor
    for i in range(30):
        append_flows(ring, tracker, "n", [record(sport=i * 100 + j) for j in range(100)])
    assert ring.newest == start + 2999
    assert 1000 <= ring.held < 1100
    assert ring.oldest == ring.newest - ring.held + 1
    events = [e for b in ring.batches_from(ring.oldest) for e in decode(b.entries)]
    assert [e.cursor for e in events] == list(range(ring.oldest, ring.newest + 1))
    # a cursor in the middle of a batch: its batch comes first
    middle = ring.oldest + 150
    first = next(iter(ring.batches_from(middle)))
    assert first.first <= middle < first.end


def test_entries_join_into_one_valid_message() -> None:
    ring = EventRing(100)
    batch = append_flows(ring, FlowTracker(100), "n", [record(), record("2001:db8::1", "::1")])
    assert batch is not None
    lost = append_lost(ring, "n", 7, source=pb.LOST_EVENT_SOURCE_DATAPLANE, detail="x")
    events = decode(batch.entries + lost.entries)
    assert [e.WhichOneof("event") for e in events] == ["flow", "flow", "lost_events"]
    assert events[0].flow.flow.source_ip == "10.0.0.1"
    assert events[0].flow.flow.ip_version == pb.IP_VERSION_IPV4
    assert events[1].flow.flow.source_ip == "2001:db8::1"
    assert events[1].flow.flow.ip_version == pb.IP_VERSION_IPV6
    assert events[2].lost_events.num_events_lost == 7
    assert events[0].time.ToNanoseconds() == 2_000_000_000  # the flow's last_seen


def test_new_update_end_and_deltas_rebuild_the_totals() -> None:
    ring, tracker = EventRing(100), FlowTracker(100)
    reports = [record(packets=3, octets=300), record(packets=5, octets=520, reply_packets=2),
               record(packets=9, octets=900, reply_packets=4, end=up.END_REASON_IDLE_TIMEOUT)]
    events = []
    for report in reports:
        batch = append_flows(ring, tracker, "n", [report])
        assert batch is not None
        events += decode(batch.entries)
    kinds = [e.flow.kind for e in events]
    assert kinds == [pb.EVENT_KIND_NEW, pb.EVENT_KIND_UPDATE, pb.EVENT_KIND_END]
    deltas = [(e.flow.flow.delta_packets, e.flow.flow.delta_reply_packets) for e in events]
    assert deltas == [(3, 0), (2, 2), (4, 2)]
    assert sum(d[0] for d in deltas) == events[-1].flow.flow.packets == 9
    assert len(tracker) == 0  # an ended flow is forgotten
    # the same 5-tuple with a new first_seen is another flow: NEW again
    batch = append_flows(ring, tracker, "n", [record(first_ns=99)])
    assert batch is not None
    assert decode(batch.entries)[0].flow.kind == pb.EVENT_KIND_NEW


def test_the_tracker_is_bounded_and_counts_what_it_forgets() -> None:
    tracker = FlowTracker(1024)
    ring = EventRing(100_000)
    append_flows(ring, tracker, "n", [record(sport=i) for i in range(1500)])
    assert (len(tracker), tracker.forgotten) == (1024, 476)


async def test_a_full_queue_drops_the_oldest_and_counts_each() -> None:
    ring = EventRing(100_000)
    tracker = FlowTracker(100_000)
    fanout = Fanout()
    everything = compile_selection(pb.GetFlowsRequest(), None)
    port_80 = compile_selection(pb.GetFlowsRequest(allow=[pb.FlowFilter(port=[80])]), None)
    slow = Follower(everything, queue_size=100, subject="slow")
    picky = Follower(port_80, queue_size=100, subject="picky")
    fanout.add(slow)
    fanout.add(picky)
    for i in range(10):
        batch = append_flows(ring, tracker, "n", [record(sport=1000 + i * 30 + j,
                                                         dport=80 if j == 0 else 81)
                                                  for j in range(30)])
        assert batch is not None
        fanout.publish(batch, ring)
    chunks = await asyncio.wait_for(slow.next_chunks(), 1)
    delivered = [e.cursor for c in chunks for e in decode(c.entries)]
    assert len(delivered) == 100 and slow.take_lost() == 200
    assert delivered == list(range(ring.newest - 99, ring.newest + 1))  # the newest kept
    assert fanout.lost_total == 200
    chunks = await asyncio.wait_for(picky.next_chunks(), 1)
    assert [e.flow.flow.destination_port for c in chunks for e in decode(c.entries)] == [80] * 10
    assert picky.take_lost() == 0


async def test_a_closed_follower_wakes_and_ends() -> None:
    follower = Follower(compile_selection(pb.GetFlowsRequest(), None), 10, "x")
    waiter = asyncio.create_task(follower.next_chunks())
    await asyncio.sleep(0)
    follower.close()
    assert await asyncio.wait_for(waiter, 1) == []


def test_flow_columns_hold_what_filters_need() -> None:
    ring = EventRing(100)
    batch = append_flows(ring, FlowTracker(10), "n", [record(vlan=7, flags=0x12)])
    assert batch is not None
    row = batch.columns[0]
    assert (int(row["sport"]), int(row["dport"]), int(row["proto"]), int(row["vlan"]),
            int(row["flags"]), int(row["ipv"])) == (40000, 80, 6, 7, 0x12, 4)
    assert int(row["src_lo"]) == (0xFFFF << 32) | 0x0A000001
    assert np.uint64(row["src_hi"]) == 0


def test_interface_names_are_bounded() -> None:
    """Security review: a dataplane naming every flow's interface differently (or with 1 KB
    names) must not grow the observer's name table without bound."""
    from app.observer.ring import OVERFLOW_ID, Interner

    names = Interner(max_names=100, max_length=16)
    assert [names.id(f"if{i}") for i in range(100)] == list(range(100))
    assert names.id("one-too-many") == OVERFLOW_ID and names.id("if7") == 7
    assert names.id("x" * 17) == OVERFLOW_ID
    assert (len(names.names), names.overflowed) == (100, 2)
