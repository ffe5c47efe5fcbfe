"""What the ingest hands the observer, turned into event batches (see ring.py).

Flow records arrive as the uplink's `FlowRecord` messages, cumulative per flow. The tracker
tells a flow's first event (NEW) from the next ones (UPDATE) and computes each event's deltas;
a record that carries an end reason is the flow's END. Each event is encoded once, here.
The event semantics are the ones `proto/floe/observer/v1/observer.proto` documents
(`FlowEvent`) and docs/adr/0007-observer-events-and-cursors.md explains.
"""

from __future__ import annotations

import struct
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
from google.protobuf.timestamp_pb2 import Timestamp

from app.ingest.state import address_text
from app.observer.ring import EVENT_DTYPE, TYPE_FLOW, TYPE_LOST, TYPE_NODE, EventBatch, EventRing
from floe.observer.v1 import observer_pb2 as pb

__all__ = ["FlowTracker", "append_flows", "append_lost", "append_node", "entry"]

_NEW, _UPDATE, _END = pb.EVENT_KIND_NEW, pb.EVENT_KIND_UPDATE, pb.EVENT_KIND_END
_EVENTS_FIELD = 0x0A  # GetFlowsResponse.events: field 1, length-delimited
_KEY = struct.Struct("<IIHBHHQ")  # node, ifindex, vlan, proto, port a, port b, first seen
_ZERO_ADDR = bytes(16)
_V4_MAPPED = np.uint64(0xFFFF)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def entry(event: Any) -> bytes:
    """`event` (an `Event`) as one `GetFlowsResponse.events` entry: joined entries of any
    events make a valid `GetFlowsResponse`."""
    body: bytes = event.SerializeToString()
    return bytes((_EVENTS_FIELD,)) + _varint(len(body)) + body


def _timestamp(ns: int) -> Timestamp:
    return Timestamp(seconds=ns // 1_000_000_000, nanos=ns % 1_000_000_000)


class FlowTracker:
    """The last cumulative counters of each live flow (node, interface, 5-tuple, VLAN, first
    seen), so events can say NEW or UPDATE and carry deltas. Bounded at `max_flows`: past it
    the least recently reported flow is forgotten (counted in `forgotten`); its next event is
    NEW again with deltas from zero — the cumulative counters stay exact either way."""

    def __init__(self, max_flows: int) -> None:
        self.max_flows = max_flows
        self._last: OrderedDict[bytes, tuple[int, int, int, int]] = OrderedDict()
        self.forgotten = 0

    def __len__(self) -> int:
        return len(self._last)

    def observe(self, key: bytes, counters: tuple[int, int, int, int],
                ended: bool) -> tuple[int, tuple[int, int, int, int]]:
        """(event kind, deltas) for this report of the flow."""
        last = self._last.pop(key, None) if ended else self._last.get(key)
        if last is None:
            kind, deltas = _NEW, counters
        else:
            kind = _UPDATE
            deltas = (max(0, counters[0] - last[0]), max(0, counters[1] - last[1]),
                      max(0, counters[2] - last[2]), max(0, counters[3] - last[3]))
        if ended:
            return _END, deltas
        self._last[key] = counters
        self._last.move_to_end(key)
        if len(self._last) > self.max_flows:
            self._last.popitem(last=False)
            self.forgotten += 1
        return kind, deltas


def append_flows(ring: EventRing, tracker: FlowTracker, node_id: str,
                 records: Sequence[Any]) -> EventBatch | None:
    """One slice of a batch's flow records (uplink `FlowRecord`s) as an event batch."""
    n = len(records)
    if n == 0:
        return None
    node = ring.nodes.id(node_id)
    columns = np.zeros(n, EVENT_DTYPE)
    addresses = [(r.addr_a if len(r.addr_a) == 16 else _ZERO_ADDR,
                  r.addr_b if len(r.addr_b) == 16 else _ZERO_ADDR) for r in records]
    halves = np.frombuffer(b"".join(a + b for a, b in addresses), dtype=">u8").reshape(n, 4)
    columns["src_hi"], columns["src_lo"] = halves[:, 0], halves[:, 1]
    columns["dst_hi"], columns["dst_lo"] = halves[:, 2], halves[:, 3]
    v4 = (halves[:, 0] == 0) & ((halves[:, 1] >> np.uint64(32)) == _V4_MAPPED)
    columns["ipv"] = np.where(v4, 4, 6)
    columns["type"] = TYPE_FLOW
    columns["node"] = node
    columns["iface"] = [ring.interfaces.id(r.interface) for r in records]
    columns["ifindex"] = [r.ifindex & 0xFFFFFFFF for r in records]
    columns["sport"] = [r.port_a & 0xFFFF for r in records]
    columns["dport"] = [r.port_b & 0xFFFF for r in records]
    columns["proto"] = [r.proto & 0xFF for r in records]
    columns["vlan"] = [r.vlan & 0xFFFF for r in records]
    columns["flags"] = [r.tcp_flags & 0xFF for r in records]
    columns["state"] = [r.state & 0xFF for r in records]
    columns["end"] = [r.end_reason & 0xFF for r in records]
    columns["time"] = [r.last_seen_unix_ns for r in records]

    entries: list[bytes] = []
    kinds: list[int] = []
    cursor = ring.next_cursor
    ip_version = (pb.IP_VERSION_IPV6, pb.IP_VERSION_IPV4)
    for i, record in enumerate(records):
        addr_a, addr_b = addresses[i]
        counters = (record.packets_ab, record.bytes_ab, record.packets_ba, record.bytes_ba)
        key = _KEY.pack(node, record.ifindex & 0xFFFFFFFF, record.vlan & 0xFFFF,
                        record.proto & 0xFF, record.port_a & 0xFFFF, record.port_b & 0xFFFF,
                        record.first_seen_unix_ns) + addr_a + addr_b
        kind, deltas = tracker.observe(key, counters, record.end_reason != 0)
        kinds.append(kind)
        flow = pb.Flow(
            source_ip=address_text(addr_a), destination_ip=address_text(addr_b),
            source_port=record.port_a, destination_port=record.port_b, protocol=record.proto,
            ip_version=ip_version[bool(v4[i])], vlan=record.vlan, interface=record.interface,
            packets=counters[0], bytes=counters[1], reply_packets=counters[2],
            reply_bytes=counters[3], delta_packets=deltas[0], delta_bytes=deltas[1],
            delta_reply_packets=deltas[2], delta_reply_bytes=deltas[3],
            first_seen=_timestamp(record.first_seen_unix_ns),
            last_seen=_timestamp(record.last_seen_unix_ns),
            tcp_flags=record.tcp_flags, state=record.state, end_reason=record.end_reason,
        )
        event = pb.Event(cursor=cursor + i, time=_timestamp(record.last_seen_unix_ns),
                         node_id=node_id,
                         flow=pb.FlowEvent(kind=kind, flow=flow))  # type: ignore[arg-type]
        entries.append(entry(event))
    columns["kind"] = kinds
    return ring.append(columns, entries, flows=n)


def _single(ring: EventRing, node_id: str, event_type: int, event: Any) -> EventBatch:
    now = time.time_ns()
    columns = np.zeros(1, EVENT_DTYPE)
    columns["type"] = event_type
    columns["node"] = ring.nodes.id(node_id)
    columns["time"] = now
    event.cursor = ring.next_cursor
    event.node_id = node_id
    event.time.CopyFrom(_timestamp(now))
    return ring.append(columns, [entry(event)])


def append_lost(ring: EventRing, node_id: str, count: int, *, source: int,
                interface: str = "", detail: str = "") -> EventBatch:
    """A LostEvent every follower of the node gets (dataplane-side loss)."""
    lost = pb.LostEvent(source=source, num_events_lost=count,  # type: ignore[arg-type]
                        interface=interface, detail=detail)
    return _single(ring, node_id, TYPE_LOST, pb.Event(lost_events=lost))


def append_node(ring: EventRing, node_id: str, connected: bool, *, version: str = "",
                peer: str = "") -> EventBatch:
    state = pb.NODE_STATE_CONNECTED if connected else pb.NODE_STATE_DISCONNECTED
    node = pb.NodeEvent(state=state, version=version, peer=peer)
    return _single(ring, node_id, TYPE_NODE, pb.Event(node_status=node))
