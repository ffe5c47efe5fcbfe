"""What the ingest hands the observer, turned into event batches (see ring.py).

Flow records arrive as the uplink's `FlowRecord` messages, cumulative per flow. The tracker
tells a flow's first event (NEW) from the next ones (UPDATE) and computes each event's deltas;
a record that carries an end reason is the flow's END. Each event is encoded once, here.
The event semantics are the ones `proto/floe/observer/v1/observer.proto` documents
(`FlowEvent`) and docs/adr/0007-observer-events-and-cursors.md explains.
"""

from __future__ import annotations

import functools
import struct
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from google.protobuf.timestamp_pb2 import Timestamp

from app.ingest.state import address_text
from app.observer.ring import EVENT_DTYPE, TYPE_FLOW, TYPE_LOST, TYPE_NODE, EventBatch, EventRing
from app.protowire import Rows, varint_bytes
from floe.observer.v1 import observer_pb2 as pb

__all__ = ["FlowTracker", "append_flows", "append_lost", "append_node", "entry"]

_NEW, _UPDATE, _END = pb.EVENT_KIND_NEW, pb.EVENT_KIND_UPDATE, pb.EVENT_KIND_END
_EVENTS_FIELD = 0x0A  # GetFlowsResponse.events: field 1, length-delimited
# node, ifindex, vlan, proto, port a, port b, first seen, verdict, rule (a flow's identity)
_KEY = struct.Struct("<IIHBHHQBI")
_ZERO_ADDR = bytes(16)
_V4_MAPPED = np.uint64(0xFFFF)
U64 = npt.NDArray[np.uint64]


@functools.lru_cache(maxsize=1 << 16)
def address_bytes(raw: bytes) -> bytes:
    """An address's text, encoded (cached: hosts repeat across flows)."""
    return address_text(raw).encode()


def entry(event: Any) -> bytes:
    """`event` (an `Event`) as one `GetFlowsResponse.events` entry: joined entries of any
    events make a valid `GetFlowsResponse`."""
    body: bytes = event.SerializeToString()
    return bytes((_EVENTS_FIELD,)) + varint_bytes(len(body)) + body


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


_EV = {name: f.number for name, f in pb.Event.DESCRIPTOR.fields_by_name.items()}
_FE = {name: f.number for name, f in pb.FlowEvent.DESCRIPTOR.fields_by_name.items()}
_FL = {name: f.number for name, f in pb.Flow.DESCRIPTOR.fields_by_name.items()}
_TS = {name: f.number for name, f in Timestamp.DESCRIPTOR.fields_by_name.items()}
_ENTRY = pb.GetFlowsResponse.DESCRIPTOR.fields_by_name["events"].number
_NS = np.uint64(1_000_000_000)


def _timestamps(ns: U64) -> Rows:
    stamp = Rows(len(ns))
    stamp.varint(_TS["seconds"], ns // _NS)
    stamp.varint(_TS["nanos"], ns % _NS)
    return stamp


def append_flows(ring: EventRing, tracker: FlowTracker, node_id: str,
                 records: Sequence[Any]) -> EventBatch | None:
    """One slice of a batch's flow records (uplink `FlowRecord`s) as an event batch: one
    Python pass for what needs a dictionary (the tracker, address text), numpy for the rest
    (columns, and the wire bytes through `app.protowire` — byte-identical to protobuf's)."""
    n = len(records)
    if n == 0:
        return None
    node = ring.nodes.id(node_id)
    addresses: list[bytes] = []
    src_text: list[bytes] = []
    dst_text: list[bytes] = []
    interfaces: list[str] = []
    scalars: list[tuple[int, ...]] = []  # _SCALARS, in order: one attribute read each
    kinds = np.empty(n, np.uint64)
    deltas = np.empty((n, 4), np.uint64)
    for i, r in enumerate(records):
        addr_a = r.addr_a if len(r.addr_a) == 16 else _ZERO_ADDR
        addr_b = r.addr_b if len(r.addr_b) == 16 else _ZERO_ADDR
        pair = addr_a + addr_b
        addresses.append(pair)
        src_text.append(address_bytes(addr_a))
        dst_text.append(address_bytes(addr_b))
        interfaces.append(r.interface)
        row = (r.port_a, r.port_b, r.proto, r.vlan, r.tcp_flags, r.state, r.end_reason,
               r.first_seen_unix_ns, r.last_seen_unix_ns, r.packets_ab, r.bytes_ab,
               r.packets_ba, r.bytes_ba, r.ifindex, r.verdict, r.rule_id, r.sample_weight)
        scalars.append(row)
        key = _KEY.pack(node, row[13] & 0xFFFFFFFF, row[3] & 0xFFFF, row[2] & 0xFF,
                        row[0] & 0xFFFF, row[1] & 0xFFFF, row[7], row[14] & 0xFF,
                        row[15] & 0xFFFFFFFF) + pair
        kinds[i], deltas[i] = tracker.observe(key, row[9:13], row[6] != 0)
    (sport, dport, proto, vlan, flags, state, end, first_seen, last_seen, packets, octets,
     reply_packets, reply_octets, ifindex, verdict, rule_id, weight) = np.array(
         scalars, np.uint64).T

    columns = np.zeros(n, EVENT_DTYPE)
    halves = np.frombuffer(b"".join(addresses), dtype=">u8").reshape(n, 4)
    columns["src_hi"], columns["src_lo"] = halves[:, 0], halves[:, 1]
    columns["dst_hi"], columns["dst_lo"] = halves[:, 2], halves[:, 3]
    v4 = (halves[:, 0] == 0) & ((halves[:, 1] >> np.uint64(32)) == _V4_MAPPED)
    columns["ipv"] = np.where(v4, 4, 6)
    columns["type"] = TYPE_FLOW
    columns["kind"] = kinds
    columns["node"] = node
    columns["iface"] = [ring.interfaces.id(name) for name in interfaces]
    columns["ifindex"] = ifindex & 0xFFFFFFFF
    columns["sport"], columns["dport"] = sport & 0xFFFF, dport & 0xFFFF
    columns["proto"], columns["vlan"] = proto & 0xFF, vlan & 0xFFFF
    columns["flags"], columns["state"], columns["end"] = flags & 0xFF, state & 0xFF, end & 0xFF
    columns["verdict"] = verdict & 0xFF  # the uplink's Verdict numbers are the observer's
    columns["time"] = last_seen

    flow = Rows(n)
    flow.strings(_FL["source_ip"], src_text)
    flow.strings(_FL["destination_ip"], dst_text)
    flow.varint(_FL["source_port"], sport)
    flow.varint(_FL["destination_port"], dport)
    flow.varint(_FL["protocol"], proto)
    flow.varint(_FL["ip_version"], columns["ipv"])
    flow.varint(_FL["vlan"], vlan)
    flow.strings(_FL["interface"], [name.encode() for name in interfaces])
    for name, values in (("packets", packets), ("bytes", octets),
                         ("reply_packets", reply_packets), ("reply_bytes", reply_octets)):
        flow.varint(_FL[name], values)
    for column, name in enumerate(("delta_packets", "delta_bytes", "delta_reply_packets",
                                   "delta_reply_bytes")):
        flow.varint(_FL[name], deltas[:, column])
    flow.message(_FL["first_seen"], _timestamps(first_seen))
    flow.message(_FL["last_seen"], _timestamps(last_seen))
    flow.varint(_FL["tcp_flags"], flags)
    flow.varint(_FL["state"], state)
    flow.varint(_FL["end_reason"], end)
    flow.varint(_FL["verdict"], verdict)
    flow.varint(_FL["rule_id"], rule_id)
    flow.varint(_FL["sample_weight"], weight)

    flow_event = Rows(n)
    flow_event.varint(_FE["kind"], kinds)
    flow_event.message(_FE["flow"], flow)
    event = Rows(n)
    event.varint(_EV["cursor"], np.arange(ring.next_cursor, ring.next_cursor + n,
                                          dtype=np.uint64))
    event.message(_EV["time"], _timestamps(last_seen))
    event.same_string(_EV["node_id"], node_id.encode())
    event.message(_EV["flow"], flow_event)
    entries = Rows(n)
    entries.message(_ENTRY, event)
    return ring.append(columns, entries.pack_rows(), flows=n)


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
