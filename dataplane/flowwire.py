"""FlowRecords (numpy) → the protobuf wire bytes of `Batch.flows`, encoded column by column.

Building one `pb.FlowRecord` per flow in Python costs ~5 µs a flow: 77-92 ms for a full
16k-flow tick, all of it time in which nobody drains the AF_XDP ring. This module writes the
same bytes with numpy (each field a block of columns, one boolean mask to pack them), and the
uplink merges them into its Batch with one upb parse (~0.15 µs a flow). The output is
byte-identical to `pb.Batch(flows=[...]).SerializeToString()` (`app/protowire.py` writes the
columns; `tests/unit/dataplane/test_flowwire.py` checks the bytes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.protowire import LEN, Rows, tag, varint_bytes
from dataplane.flowtable import TCP_RST, EndReason, FlowRecords
from floe.dataplane.v1 import uplink_pb2 as pb

__all__ = ["EncodedFlows", "encode_flows"]


# Flow table enums → proto enums (the proto reserves 0 for "unspecified"/"none").
_STATE_PB = np.array([pb.FLOW_STATE_NEW, pb.FLOW_STATE_ESTABLISHED, pb.FLOW_STATE_CLOSING,
                      pb.FLOW_STATE_CLOSED], dtype=np.uint64)
_END_PB = np.array([pb.END_REASON_NONE, pb.END_REASON_IDLE_TIMEOUT, pb.END_REASON_ACTIVE_TIMEOUT,
                    pb.END_REASON_TCP_FIN, pb.END_REASON_EVICTED, pb.END_REASON_SHUTDOWN],
                   dtype=np.uint64)

_BATCH_FLOWS = pb.Batch.DESCRIPTOR.fields_by_name["flows"].number
_F = {name: f.number for name, f in pb.FlowRecord.DESCRIPTOR.fields_by_name.items()}
# (FlowRecord field, FlowRecords column), in field-number order around `interface` (8).
_SCALARS_LOW = (("port_a", "src_port"), ("port_b", "dst_port"), ("proto", "proto"),
                ("vlan", "vlan"), ("ifindex", "ifindex"))
_SCALARS_HIGH = (("packets_ab", "packets_fwd"), ("bytes_ab", "bytes_fwd"),
                 ("packets_ba", "packets_rev"), ("bytes_ba", "bytes_rev"),
                 ("first_seen_unix_ns", "first_seen_ns"), ("last_seen_unix_ns", "last_seen_ns"),
                 ("tcp_flags", "tcp_flags"))


@dataclass(slots=True, frozen=True)
class EncodedFlows:
    """`count` flow records as `Batch.flows` entries on the wire (merge with MergeFromString)."""

    wire: bytes
    count: int


def _flow_states(state: npt.NDArray[np.integer]) -> npt.NDArray[np.uint64]:
    out: npt.NDArray[np.uint64] = _STATE_PB[np.minimum(state, len(_STATE_PB) - 1)]
    return out


def _end_reasons(reason: npt.NDArray[np.integer],
                 tcp_flags: npt.NDArray[np.integer]) -> npt.NDArray[np.uint64]:
    """EndReason per record; a closed TCP flow that saw a RST ended by reset, not FIN."""
    out: npt.NDArray[np.uint64] = _END_PB[np.minimum(reason, len(_END_PB) - 1)]
    reset = (reason == EndReason.CLOSED) & ((tcp_flags & TCP_RST) != 0)
    out[reset] = pb.END_REASON_TCP_RST
    return out


def encode_flows(records: FlowRecords, interface: str) -> EncodedFlows:
    """`records` as `Batch.flows` wire bytes, `interface` set on every record."""
    n = int(records.shape[0])
    if n == 0:
        return EncodedFlows(b"", 0)
    body = Rows(n)
    for field, column in (("addr_a", "src_addr"), ("addr_b", "dst_addr")):
        body.constant(tag(_F[field], LEN) + varint_bytes(16))  # 16 bytes, zeros included
        body.raw(np.ascontiguousarray(records[column]))
    for field, column in _SCALARS_LOW:
        body.varint(_F[field], records[column])
    body.same_string(_F["interface"], interface.encode())
    for field, column in _SCALARS_HIGH:
        body.varint(_F[field], records[column])
    body.varint(_F["state"], _flow_states(records["state"]))
    body.varint(_F["end_reason"], _end_reasons(records["end_reason"], records["tcp_flags"]))
    for field in ("verdict", "rule_id", "sample_weight"):  # FlowRecords use the proto numbers
        body.varint(_F[field], records[field])
    batch = Rows(n)  # Batch.flows entries: tag, record length, record
    batch.message(_BATCH_FLOWS, body)
    return EncodedFlows(batch.pack(), n)
