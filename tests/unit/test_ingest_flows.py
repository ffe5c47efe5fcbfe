"""Applying a batch's flow records: the window ends up as if every record were applied one by
one, the loop gets turns in between, and the text of addresses is right."""

from __future__ import annotations

import asyncio
import ipaddress

import numpy as np

from app.ingest.service import _FLOW_SLICE, UplinkService
from app.ingest.state import IngestState, _addr
from dataplane.flowtable import FLOW_RECORD_DTYPE
from dataplane.flowwire import encode_flows
from floe.dataplane.v1 import uplink_pb2 as pb


def batch(n: int, seq: int = 1) -> pb.Batch:
    rng = np.random.default_rng(seq)
    records = np.zeros(n, FLOW_RECORD_DTYPE)
    for column in ("src_addr", "dst_addr"):
        records[column][:, 10:12] = 0xFF
        records[column][:, 12] = 10
        records[column][:, 13:16] = rng.integers(0, 8, (n, 3))  # hosts repeat
    records["src_port"] = rng.integers(1, 200, n)  # keys repeat within the batch too
    records["dst_port"] = 53
    records["proto"] = 17
    records["packets_fwd"] = np.arange(n) + 1
    records["first_seen_ns"] = 1
    records["last_seen_ns"] = np.arange(n) + 10
    message = pb.Batch(seq=seq)
    message.MergeFromString(encode_flows(records, "eth0").wire)
    return message


def one_by_one(message: pb.Batch, max_flows: int) -> IngestState:
    state = IngestState(max_flows=max_flows)
    for flow in message.flows:
        state.apply_flow("n", flow, flow.interface, "new", "none")
    return state


async def test_window_equals_applying_each_record() -> None:
    message = batch(5 * 1000 + 7)
    state = IngestState(max_flows=1000)
    service = UplinkService(state, lambda: None)
    await service._apply("n", "i", message)
    expected = one_by_one(message, 1000)
    assert list(state.flows.items()) == list(expected.flows.items())
    assert state.flows_evicted == expected.flows_evicted


async def test_the_loop_runs_between_slices() -> None:
    message = batch(4 * _FLOW_SLICE)
    service = UplinkService(IngestState(max_flows=10 * _FLOW_SLICE), lambda: None)
    turns = 0

    async def other_task() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(other_task())
    await asyncio.sleep(0)
    before = turns
    await service._apply("n", "i", message)
    task.cancel()
    assert turns - before >= 3  # the other task ran while the batch was applied


async def test_same_seq_on_two_streams_is_applied_once() -> None:
    message = batch(3 * _FLOW_SLICE)
    message.aggregates.add(interface="eth0", start_unix_ns=1, end_unix_ns=2)
    state = IngestState()
    service = UplinkService(state, lambda: None)
    await asyncio.gather(service._apply("n", "i", message), service._apply("n", "i", message))
    assert state.batches_applied == 1 and state.batches_duplicate == 1
    assert len(state.interface("n", "eth0").traffic.ticks) == 1


async def test_an_apply_cut_short_is_completed_by_the_resend() -> None:
    message = batch(4 * _FLOW_SLICE)
    message.aggregates.add(interface="eth0", start_unix_ns=1, end_unix_ns=2)
    state = IngestState()
    service = UplinkService(state, lambda: None)
    first = asyncio.create_task(service._apply("n", "i", message))
    await asyncio.sleep(0)  # the first slice is in
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    assert state.batches_applied == 0 and not state.interface("n", "eth0").traffic.ticks
    assert 0 < len(state.flows) < len(one_by_one(message, state.max_flows).flows)  # part way
    await service._apply("n", "i", message)
    assert state.batches_applied == 1
    assert len(state.interface("n", "eth0").traffic.ticks) == 1
    assert list(state.flows.items()) == list(one_by_one(message, state.max_flows).flows.items())


def test_address_text() -> None:
    for text in ("10.1.2.3", "0.0.0.0", "255.255.255.255", "2001:db8::1", "::1", "::",
                 "::102:304", "fe80::1:0:0:1", "::ffff:0:1.2.3.4"):
        packed = ipaddress.ip_address(text).packed
        if len(packed) == 4:
            packed = bytes(10) + b"\xff\xff" + packed
        assert _addr(packed) == str(ipaddress.ip_address(text)), text
    assert _addr(b"\x01\x02") == "0102"


def test_rule_hits_add_up_over_counter_epochs() -> None:
    """Like counters: the pins of an interface created again are a new epoch, not a reset."""
    state = IngestState()
    state.set_rule_ids([7])  # the control plane pushed rule 7
    state.apply_rule_hits("n", "eth0", "epoch-1", 7, 10, 600)
    state.apply_rule_hits("n", "eth0", "epoch-2", 7, 3, 180)
    state.apply_rule_hits("n", "eth0", "epoch-2", 7, 2, 120)  # an older snapshot: ignored
    hits = state.interface("n", "eth0").summary()["rule_hits"]
    assert hits == {"7": {"packets": 13, "bytes": 780}}


def test_forwarded_and_dropped_of_one_tuple_are_two_flows_with_their_rule() -> None:
    """The verdict and the rule are part of a flow's identity; /flows names the verdict."""
    records = np.zeros(3, FLOW_RECORD_DTYPE)
    for column in ("src_addr", "dst_addr"):
        records[column][:, 10:12] = 0xFF
    records["src_addr"][:, 12:] = (10, 0, 0, 1)
    records["dst_addr"][:, 12:] = (10, 0, 0, 2)
    records["src_port"], records["dst_port"], records["proto"] = 1000, 80, 6
    records["first_seen_ns"] = records["last_seen_ns"] = 5
    records["packets_fwd"] = (3, 40, 2)
    records["verdict"] = (1, 2, 2)
    records["rule_id"] = (0, 7, 9)
    records["sample_weight"] = (1, 1, 64)
    message = pb.Batch(seq=1)
    message.MergeFromString(encode_flows(records, "eth0").wire)
    state = one_by_one(message, 100)
    flows = sorted(state.recent_flows(10), key=lambda f: f["rule_id"])
    assert [(f["verdict"], f["rule_id"], f["sample_weight"], f["packets"]) for f in flows] == [
        ("forwarded", 0, 1, 3), ("dropped", 7, 1, 40), ("dropped", 9, 64, 2)]
