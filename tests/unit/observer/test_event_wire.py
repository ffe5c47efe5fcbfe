"""The observer's column-written events are the bytes protobuf itself writes for them."""

from __future__ import annotations

import ipaddress
from typing import Any

import numpy as np
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from app.ingest.state import address_text
from app.observer.events import _KEY, FlowTracker, append_flows, entry
from app.observer.ring import EventRing
from floe.dataplane.v1 import uplink_pb2 as up
from floe.observer.v1 import observer_pb2 as pb

EDGES = [0, 1, 127, 128, 16383, 16384, 2**21, 2**35, 2**56, 2**63, 2**64 - 1]


def stamp(ns: int) -> Timestamp:
    return Timestamp(seconds=ns // 10**9, nanos=ns % 10**9)


def reference(record: Any, cursor: int, node: str, kind: int, deltas: tuple[int, ...]) -> bytes:
    """One Event built field by field with protobuf (the slow, obviously right way)."""
    raw_a = record.addr_a if len(record.addr_a) == 16 else bytes(16)
    raw_b = record.addr_b if len(record.addr_b) == 16 else bytes(16)
    v4 = raw_a[:12] == bytes(10) + b"\xff\xff"
    flow = pb.Flow(
        source_ip=address_text(raw_a), destination_ip=address_text(raw_b),
        source_port=record.port_a, destination_port=record.port_b, protocol=record.proto,
        ip_version=pb.IP_VERSION_IPV4 if v4 else pb.IP_VERSION_IPV6, vlan=record.vlan,
        interface=record.interface, packets=record.packets_ab, bytes=record.bytes_ab,
        reply_packets=record.packets_ba, reply_bytes=record.bytes_ba,
        delta_packets=deltas[0], delta_bytes=deltas[1], delta_reply_packets=deltas[2],
        delta_reply_bytes=deltas[3], first_seen=stamp(record.first_seen_unix_ns),
        last_seen=stamp(record.last_seen_unix_ns), tcp_flags=record.tcp_flags,
        state=record.state, end_reason=record.end_reason, verdict=record.verdict,
        rule_id=record.rule_id, sample_weight=record.sample_weight)
    event = pb.Event(cursor=cursor, time=stamp(record.last_seen_unix_ns), node_id=node,
                     flow=pb.FlowEvent(kind=kind, flow=flow))  # type: ignore[arg-type]
    return entry(event)


def random_records(n: int, seed: int) -> list[Any]:
    rng = np.random.default_rng(seed)

    def edge() -> int:
        return EDGES[int(rng.integers(len(EDGES)))]

    out = []
    for i in range(n):
        pick = rng.integers(0, 4)
        if pick == 0:
            a = ipaddress.IPv6Address(f"::ffff:10.{i % 256}.{rng.integers(256)}.1").packed
        elif pick == 1:
            a = bytes(rng.integers(0, 256, 16, dtype=np.uint8))
        elif pick == 2:
            a = b""  # malformed: treated as the zero address
        else:
            a = bytes(16)
        out.append(up.FlowRecord(
            addr_a=a, addr_b=bytes(rng.integers(0, 256, 16, dtype=np.uint8)),
            port_a=int(rng.choice([0, 1, 80, 65535])), port_b=int(rng.integers(0, 65536)),
            proto=int(rng.choice([0, 6, 17, 255])), vlan=int(rng.choice([0, 4095])),
            ifindex=int(rng.integers(0, 2**32)),
            interface=str(rng.choice(["", "veth0", "éth-ünïcode", "x" * 40])),
            packets_ab=edge(), bytes_ab=edge(),
            packets_ba=edge(), bytes_ba=edge(),
            first_seen_unix_ns=edge(), last_seen_unix_ns=edge(),
            tcp_flags=int(rng.integers(0, 256)), state=int(rng.integers(0, 5)),
            end_reason=int(rng.choice([0, 0, 1, 3, 6])), verdict=int(rng.integers(0, 3)),
            rule_id=int(rng.choice([0, 7, 2**32 - 1])),
            sample_weight=int(rng.choice([0, 1, 64, 2**32 - 1]))))
    return out


@pytest.mark.parametrize("seed", range(8))
def test_entries_are_byte_identical_to_protobuf(seed: int) -> None:
    records = random_records(300, seed)
    ring = EventRing(10_000)
    mirror = FlowTracker(10_000)  # the same tracker decisions, replayed for the reference
    first = ring.next_cursor
    batch = append_flows(ring, FlowTracker(10_000), "node-ü", records)
    assert batch is not None
    for i, record in enumerate(records):
        raw_a = record.addr_a if len(record.addr_a) == 16 else bytes(16)
        key = _KEY.pack(ring.nodes.get("node-ü") or 0, record.ifindex, record.vlan,
                        record.proto, record.port_a, record.port_b,
                        record.first_seen_unix_ns, record.verdict,
                        record.rule_id) + raw_a + record.addr_b
        kind, deltas = mirror.observe(key, (record.packets_ab, record.bytes_ab,
                                            record.packets_ba, record.bytes_ba),
                                      record.end_reason != 0)
        assert batch.entries[i] == reference(record, first + i, "node-ü", kind, deltas), i


def test_one_row_and_a_repeat_update() -> None:
    ring = EventRing(100)
    tracker = FlowTracker(100)
    (record,) = random_records(1, 99)
    record.end_reason = 0
    batches = [append_flows(ring, tracker, "n", [record]) for _ in range(2)]
    events = [pb.GetFlowsResponse.FromString(b.entries[0]).events[0] for b in batches if b]
    assert [e.flow.kind for e in events] == [pb.EVENT_KIND_NEW, pb.EVENT_KIND_UPDATE]
    assert events[1].flow.flow.delta_packets == 0
