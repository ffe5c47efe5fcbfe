"""encode_flows: the bytes protobuf itself writes for the same records, at any value size."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from dataplane.flowtable import FLOW_RECORD_DTYPE, FlowRecords
from dataplane.flowwire import encode_flows
from floe.dataplane.v1 import uplink_pb2 as pb

STATES = [pb.FLOW_STATE_NEW, pb.FLOW_STATE_ESTABLISHED, pb.FLOW_STATE_CLOSING,
          pb.FLOW_STATE_CLOSED]
ENDS = [pb.END_REASON_NONE, pb.END_REASON_IDLE_TIMEOUT, pb.END_REASON_ACTIVE_TIMEOUT,
        pb.END_REASON_TCP_FIN, pb.END_REASON_EVICTED, pb.END_REASON_SHUTDOWN]
EDGES = np.array([0, 1, 127, 128, 16383, 16384, 2**21 - 1, 2**21, 2**35, 2**49 - 1, 2**56,
                  2**63 - 1, 2**63, 2**64 - 1], dtype=np.uint64)


def end_reason(reason: int, tcp_flags: int) -> int:
    if reason == 3 and tcp_flags & 0x04:  # closed, and a RST was seen: reset, not FIN
        return int(pb.END_REASON_TCP_RST)
    return int(ENDS[min(reason, 5)])


def reference(records: FlowRecords, interface: str) -> bytes:
    """One message per record, the slow way (what the runner did before encode_flows)."""
    out = []
    for r in records:
        out.append(pb.FlowRecord(
            addr_a=r["src_addr"].tobytes(), addr_b=r["dst_addr"].tobytes(),
            port_a=int(r["src_port"]), port_b=int(r["dst_port"]), proto=int(r["proto"]),
            vlan=int(r["vlan"]), ifindex=int(r["ifindex"]), interface=interface,
            packets_ab=int(r["packets_fwd"]), bytes_ab=int(r["bytes_fwd"]),
            packets_ba=int(r["packets_rev"]), bytes_ba=int(r["bytes_rev"]),
            first_seen_unix_ns=int(r["first_seen_ns"]), last_seen_unix_ns=int(r["last_seen_ns"]),
            tcp_flags=int(r["tcp_flags"]), state=STATES[min(int(r["state"]), 3)],
            end_reason=end_reason(int(r["end_reason"]), int(r["tcp_flags"])),
            verdict=int(r["verdict"]), rule_id=int(r["rule_id"]),  # type: ignore[arg-type]
            sample_weight=int(r["sample_weight"]),
        ))
    return bytes(pb.Batch(flows=out).SerializeToString())


def random_records(n: int, seed: int) -> FlowRecords:
    rng = np.random.default_rng(seed)
    r = np.zeros(n, FLOW_RECORD_DTYPE)
    r["src_addr"] = rng.integers(0, 256, (n, 16))
    r["dst_addr"] = rng.integers(0, 256, (n, 16))
    r["dst_addr"][::7] = 0  # all-zero address: still present (bytes field, 16 bytes)
    limits: dict[str, Any] = {"src_port": 2**16, "dst_port": 2**16, "proto": 256,
                              "vlan": 4096, "ifindex": 2**32, "tcp_flags": 256, "state": 4,
                              "end_reason": 6, "verdict": 3, "rule_id": 2**32,
                              "sample_weight": 2**32}
    for column, high in limits.items():
        r[column] = rng.integers(0, high, n) * (rng.random(n) < 0.8)  # zeros are omitted
    for column in ("packets_fwd", "bytes_fwd", "packets_rev", "bytes_rev", "first_seen_ns",
                   "last_seen_ns"):
        r[column] = rng.choice(EDGES, n) * (rng.random(n) < 0.9)
    return r


@pytest.mark.parametrize("interface", ["veth-floe0", "", "x" * 200])
def test_bytes_equal_protobuf_serialisation(interface: str) -> None:
    records = random_records(3000, seed=len(interface))
    assert encode_flows(records, interface).wire == reference(records, interface)


def test_every_varint_length_and_a_record_over_127_bytes() -> None:
    records = np.zeros(len(EDGES), FLOW_RECORD_DTYPE)
    for column in ("packets_fwd", "bytes_fwd", "packets_rev", "bytes_rev", "first_seen_ns",
                   "last_seen_ns"):
        records[column] = EDGES  # the all-max row is > 127 bytes: a 2-byte length prefix
    encoded = encode_flows(records, "eth0")
    assert encoded.count == len(EDGES)
    assert encoded.wire == reference(records, "eth0")
    parsed = pb.Batch.FromString(encoded.wire).flows
    assert [f.packets_ab for f in parsed] == [int(v) for v in EDGES]


def test_round_trip_values_and_empty() -> None:
    records = random_records(50, seed=9)
    flows = pb.Batch.FromString(encode_flows(records, "eth1").wire).flows
    assert len(flows) == 50
    for f, r in zip(flows, records, strict=True):
        assert f.addr_a == r["src_addr"].tobytes() and f.addr_b == r["dst_addr"].tobytes()
        assert (f.port_a, f.port_b, f.ifindex) == (r["src_port"], r["dst_port"], r["ifindex"])
        assert (f.bytes_ab, f.last_seen_unix_ns) == (r["bytes_fwd"], r["last_seen_ns"])
        assert f.interface == "eth1"
    empty = encode_flows(np.zeros(0, FLOW_RECORD_DTYPE), "eth1")
    assert (empty.wire, empty.count) == (b"", 0)


def test_a_closed_flow_that_saw_a_reset_ends_by_reset() -> None:
    records = np.zeros(3, FLOW_RECORD_DTYPE)
    records["end_reason"] = 3  # EndReason.CLOSED
    records["tcp_flags"] = [0x11, 0x14, 0x04]  # FIN+ACK; RST+ACK; RST
    flows = pb.Batch.FromString(encode_flows(records, "eth0").wire).flows
    assert [f.end_reason for f in flows] == [pb.END_REASON_TCP_FIN, pb.END_REASON_TCP_RST,
                                             pb.END_REASON_TCP_RST]


def test_merges_into_a_batch_next_to_other_fields() -> None:
    records = random_records(10, seed=3)
    batch = pb.Batch(seq=7, counters=[pb.CounterSnapshot(interface="eth0")])
    batch.MergeFromString(encode_flows(records, "eth0").wire)
    again = pb.Batch.FromString(batch.SerializeToString())
    assert again.seq == 7 and len(again.counters) == 1 and len(again.flows) == 10
