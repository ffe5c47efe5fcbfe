"""FlowRecords (numpy) → the protobuf wire bytes of `Batch.flows`, encoded column by column.

Building one `pb.FlowRecord` per flow in Python costs ~5 µs a flow: 77-92 ms for a full
16k-flow tick, all of it time in which nobody drains the AF_XDP ring. This module writes the
same bytes with numpy (each field a block of columns, one boolean mask to pack them), and the
uplink merges them into its Batch with one upb parse (~0.15 µs a flow). The output is
byte-identical to `pb.Batch(flows=[...]).SerializeToString()`: fields in number order, zero
scalars omitted, as proto3 does — `tests/unit/dataplane/test_flowwire.py` checks it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from dataplane.flowtable import TCP_RST, EndReason, FlowRecords
from floe.dataplane.v1 import uplink_pb2 as pb

__all__ = ["EncodedFlows", "encode_flows"]

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]

# Flow table enums → proto enums (the proto reserves 0 for "unspecified"/"none").
_STATE_PB = np.array([pb.FLOW_STATE_NEW, pb.FLOW_STATE_ESTABLISHED, pb.FLOW_STATE_CLOSING,
                      pb.FLOW_STATE_CLOSED], dtype=np.uint64)
_END_PB = np.array([pb.END_REASON_NONE, pb.END_REASON_IDLE_TIMEOUT, pb.END_REASON_ACTIVE_TIMEOUT,
                    pb.END_REASON_TCP_FIN, pb.END_REASON_EVICTED, pb.END_REASON_SHUTDOWN],
                   dtype=np.uint64)

_BATCH_FLOWS = pb.Batch.DESCRIPTOR.fields_by_name["flows"].number
_F = pb.FlowRecord.DESCRIPTOR.fields_by_name
_VARINT, _LEN = 0, 2
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


def _varint_bytes(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _tag(field: str, wire_type: int) -> bytes:
    return _varint_bytes(_F[field].number << 3 | wire_type)


# Smallest value needing k + 1 varint bytes, k = 1..9.
_VARINT_STEPS = np.array([1 << (7 * k) for k in range(1, 10)], dtype=np.uint64)


def _varints(values: npt.NDArray[np.uint64]) -> tuple[U8, I64]:
    """Each value as a varint, in as many columns as the longest needs, and its length."""
    length = np.searchsorted(_VARINT_STEPS, values, side="right").astype(np.int64) + 1
    width = int(length.max()) if length.size else 1
    shifted = values[:, None] >> np.arange(0, 7 * width, 7, dtype=np.uint64)
    data = (shifted & np.uint64(0x7F)).astype(np.uint8)
    data[np.arange(width) < (length - 1)[:, None]] |= 0x80
    return data, length


class _Blocks:
    """Column blocks of one encoding: bytes (n, width) and how many of them each row uses."""

    __slots__ = ("data", "lengths", "n")

    def __init__(self, n: int) -> None:
        self.n = n
        self.data: list[U8] = []
        self.lengths: list[I64] = []

    def constant(self, raw: bytes) -> None:
        self.data.append(np.broadcast_to(np.frombuffer(raw, np.uint8), (self.n, len(raw))))
        self.lengths.append(np.full(self.n, len(raw), np.int64))

    def scalar(self, field: str, values: npt.NDArray[np.uint64]) -> None:
        """A varint field; omitted where the value is 0 (proto3 implicit presence)."""
        tag = _tag(field, _VARINT)
        data, length = _varints(values)
        self.constant(tag)
        present = values != 0
        self.lengths[-1] = np.where(present, len(tag), 0)
        self.data.append(data)
        self.lengths.append(np.where(present, length, 0))

    def raw(self, data: U8) -> None:
        self.data.append(data)
        self.lengths.append(np.full(self.n, data.shape[1], np.int64))

    def total(self) -> I64:
        return np.sum(self.lengths, axis=0) if self.lengths else np.zeros(self.n, np.int64)

    def pack(self) -> bytes:
        data = np.concatenate(self.data, axis=1)
        used = np.concatenate([np.arange(d.shape[1]) < length[:, None]
                               for d, length in zip(self.data, self.lengths, strict=True)],
                              axis=1)
        return bytes(data[used].tobytes())


def encode_flows(records: FlowRecords, interface: str) -> EncodedFlows:
    """`records` as `Batch.flows` wire bytes, `interface` set on every record."""
    n = int(records.shape[0])
    if n == 0:
        return EncodedFlows(b"", 0)
    body = _Blocks(n)
    for field, column in (("addr_a", "src_addr"), ("addr_b", "dst_addr")):
        body.constant(_tag(field, _LEN) + _varint_bytes(16))
        body.raw(np.ascontiguousarray(records[column]))
    for field, column in _SCALARS_LOW:
        body.scalar(field, records[column].astype(np.uint64))
    name = interface.encode()
    if name:
        body.constant(_tag("interface", _LEN) + _varint_bytes(len(name)) + name)
    for field, column in _SCALARS_HIGH:
        body.scalar(field, records[column].astype(np.uint64))
    body.scalar("state", _flow_states(records["state"]))
    body.scalar("end_reason", _end_reasons(records["end_reason"], records["tcp_flags"]))

    head = _Blocks(n)  # Batch.flows entry: tag, record length
    head.constant(_varint_bytes(_BATCH_FLOWS << 3 | _LEN))
    data, length = _varints(body.total().astype(np.uint64))
    head.data.append(data)
    head.lengths.append(length)
    head.data.extend(body.data)
    head.lengths.extend(body.lengths)
    return EncodedFlows(head.pack(), n)
