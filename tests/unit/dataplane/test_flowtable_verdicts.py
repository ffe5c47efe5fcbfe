"""Ring buffer frames in the flow table: verdict and rule keep flows apart, and sampled
records count with their weight (frames and bytes they stand for)."""

from __future__ import annotations

import numpy as np

from dataplane.flowtable import FlowTable
from dataplane.flowwire import encode_flows
from dataplane.packets import FrameBatch
from dataplane.parse import parse_batch
from floe.dataplane.v1 import uplink_pb2 as pb
from tests.unit.dataplane.frames import frame

FORWARDED, DROPPED = 1, 2


def ring_batch(frames: list[bytes], verdict: list[int], rule: list[int],
               weight: list[int] | None = None,
               weight_bytes: list[int] | None = None) -> FrameBatch:
    batch = FrameBatch.from_frames(frames, ts_ns=1_000, ifindex=3)
    batch.verdict = np.asarray(verdict, np.uint8)
    batch.rule_id = np.asarray(rule, np.uint32)
    if weight is not None:
        batch.weight = np.asarray(weight, np.uint32)
        batch.weight_bytes = np.asarray(weight_bytes or [len(f) * w for f, w in
                                                         zip(frames, weight, strict=True)],
                                        np.uint64)
    return batch


def test_verdict_and_rule_are_part_of_the_key() -> None:
    table = FlowTable(capacity=64)
    f = frame("10.0.0.1", "10.0.0.2", "tcp", 1000, 80)
    table.update(parse_batch(ring_batch([f] * 5, [FORWARDED] * 2 + [DROPPED] * 3,
                                        [0, 0, 7, 7, 9])))
    records = table.drain_updates()
    got = sorted((int(r["verdict"]), int(r["rule_id"]), int(r["packets_fwd"])) for r in records)
    assert got == [(FORWARDED, 0, 2), (DROPPED, 7, 2), (DROPPED, 9, 1)]
    assert set(records["sample_weight"].tolist()) == {0}  # unweighted: exact


def test_weights_count_frames_and_bytes_and_mark_the_record() -> None:
    table = FlowTable(capacity=64)
    a = frame("10.0.0.1", "10.0.0.2", "udp", 5, 53)
    b = frame("10.0.0.2", "10.0.0.1", "udp", 53, 5)  # the reply: same flow, other way
    table.update(parse_batch(ring_batch([a, a, b], [FORWARDED] * 3, [0] * 3, weight=[1, 4, 3],
                                        weight_bytes=[len(a), 400, 300])))
    table.update(parse_batch(ring_batch([a], [FORWARDED], [0], weight=[2])))
    (record,) = table.drain_updates()
    assert (int(record["packets_fwd"]), int(record["packets_rev"])) == (1 + 4 + 2, 3)
    assert int(record["bytes_fwd"]) == len(a) + 400 + 2 * len(a)
    assert int(record["bytes_rev"]) == 300
    assert int(record["sample_weight"]) == 4  # the largest weight counted
    (wire,) = pb.Batch.FromString(encode_flows(table.flush(), "eth0").wire).flows
    assert (wire.verdict, wire.rule_id, wire.sample_weight) == (pb.VERDICT_FORWARDED, 0, 4)


def test_frames_without_ring_columns_keep_their_old_flows() -> None:
    """AF_XDP frames (no verdict) and a ring record of the same tuple are two flows; a
    batch mixing both (FrameBatch.concat) fills the missing columns with their meaning."""
    f = frame("10.0.0.1", "10.0.0.2", "tcp", 1000, 80)
    plain = FrameBatch.from_frames([f] * 2, ts_ns=1_000, ifindex=3)
    mixed = FrameBatch.concat([plain, ring_batch([f], [DROPPED], [7])])
    assert mixed.verdicts().tolist() == [0, 0, DROPPED]
    assert mixed.weights().tolist() == [1, 1, 1]
    table = FlowTable(capacity=64)
    table.update(parse_batch(mixed))
    got = sorted((int(r["verdict"]), int(r["rule_id"]), int(r["packets_fwd"]))
                 for r in table.drain_updates())
    assert got == [(0, 0, 2), (DROPPED, 7, 1)]
