"""Runner.table_flows: a tick's flow work comes in bounded slices with the ring read between
them, never more than MAX_FLOWS_PER_TICK records, and every change is delivered exactly once."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from dataplane.config import DataplaneConfig
from dataplane.flowwire import EncodedFlows
from dataplane.packets import FrameBatch
from dataplane.parse import ParsedBatch
from dataplane.runner import MAX_BATCH_BYTES, MAX_FLOWS_PER_TICK, SLICE_FLOWS, Runner
from floe.dataplane.v1 import uplink_pb2 as pb
from tests.unit.dataplane.frames import frame

NOW = 10**18


def parsed_udp(flow_ids: np.ndarray, ts: int) -> ParsedBatch:
    """Parsed UDP/IPv4 packets, flow i = 10.x.y.z:(i % 60000 + 1) -> 11.0.0.1:53."""
    n = flow_ids.size
    src = np.zeros((n, 16), np.uint8)
    src[:, 10:12] = 0xFF
    src[:, 12] = 10
    src[:, 13:16] = np.stack([(flow_ids >> 16) & 255, (flow_ids >> 8) & 255, flow_ids & 255], 1)
    dst = np.zeros((n, 16), np.uint8)
    dst[:, 10:16] = (0xFF, 0xFF, 11, 0, 0, 1)
    return ParsedBatch(
        ts_ns=np.full(n, ts, np.int64), ifindex=np.ones(n, np.uint32),
        wire_len=np.full(n, 60, np.uint32), ethertype=np.full(n, 0x0800, np.uint16),
        vlan=np.zeros(n, np.uint16), vlan_inner=np.zeros(n, np.uint16),
        ip_version=np.full(n, 4, np.uint8), proto=np.full(n, 17, np.uint8), src=src, dst=dst,
        sport=(flow_ids % 60000 + 1).astype(np.uint16), dport=np.full(n, 53, np.uint16),
        tcp_flags=np.zeros(n, np.uint8), fragment=np.zeros(n, np.bool_),
        malformed=np.zeros(n, np.uint8),
    )


class RingStandIn:
    """Records when the runner reads between slices; hands out one real frame per read."""

    def __init__(self) -> None:
        self.reads = 0
        self.raw = frame("192.0.2.1", "192.0.2.2", "udp", 4000, 53)

    def read_batch(self, max_frames: int, timeout: float) -> FrameBatch | None:
        assert timeout == 0.0  # between slices the runner must not wait
        self.reads += 1
        if self.reads % 2 == 0:
            return FrameBatch(np.zeros(0, np.uint8), np.zeros(0, np.int64), np.zeros(0, np.uint32),
                              np.zeros(0, np.uint32), np.zeros(0, np.int64), np.zeros(0, np.uint32))
        data = np.frombuffer(self.raw, np.uint8).copy()
        one = np.array([len(self.raw)], np.uint32)
        return FrameBatch(data, np.zeros(1, np.int64), one, one.copy(),
                          np.full(1, NOW, np.int64), np.ones(1, np.uint32))


def make_runner(tmp_path: Path) -> tuple[Runner, RingStandIn]:
    config = DataplaneConfig(target="127.0.0.1:1", api_key="", node_id="n", instance_id="i",
                             state_dir=tmp_path)
    runner = Runner(config, "afpacket", "veth-test")
    ring = RingStandIn()
    runner.source = ring  # type: ignore[assignment]
    return runner, ring


def flows_of(encoded: EncodedFlows) -> list[pb.FlowRecord]:
    flows = list(pb.Batch.FromString(encoded.wire).flows)
    assert len(flows) == encoded.count
    return flows


def test_changes_arrive_in_slices_bounded_per_tick_exactly_once(tmp_path: Path) -> None:
    runner, ring = make_runner(tmp_path)
    assert runner.table is not None
    total = MAX_FLOWS_PER_TICK + 3 * SLICE_FLOWS + 17
    runner.table.update(parsed_udp(np.arange(total), NOW), NOW)

    first = flows_of(runner.table_flows(NOW))
    assert len(first) == MAX_FLOWS_PER_TICK
    slices = MAX_FLOWS_PER_TICK // SLICE_FLOWS
    assert ring.reads >= slices - 1  # the ring was read between slices
    second = flows_of(runner.table_flows(NOW))
    third = flows_of(runner.table_flows(NOW))
    # the frames read between slices made one more flow (192.0.2.1 -> 192.0.2.2)
    ports = sorted(f.port_a for f in first + second + third if f.addr_a[12] == 10)
    assert ports == sorted(int(i % 60000 + 1) for i in range(total))
    assert sum(1 for f in first + second + third if f.addr_a[12] == 192) == 1
    assert runner.table_flows(NOW).count == 0
    assert all(f.interface == "veth-test" for f in first)


def test_mass_timeout_ends_more_than_one_slice_per_tick(tmp_path: Path) -> None:
    runner, _ = make_runner(tmp_path)
    assert runner.table is not None
    n = 3 * SLICE_FLOWS + 5
    runner.table.update(parsed_udp(np.arange(n), NOW), NOW)
    runner.table.drain_updates()
    later = NOW + 10**13  # well past the idle timeout
    ended = [f for f in flows_of(runner.table_flows(later)) if f.addr_a[12] == 10]
    assert len(ended) == n  # all in one tick although one expire call ends one slice
    assert {f.end_reason for f in ended} == {pb.END_REASON_IDLE_TIMEOUT}


def test_batches_stay_under_the_grpc_message_limit_with_long_names(tmp_path: Path) -> None:
    config = DataplaneConfig(target="127.0.0.1:1", api_key="", node_id="n", instance_id="i",
                             state_dir=tmp_path)
    runner = Runner(config, "pcap", None, pcap_path=tmp_path / ("capture-" + "x" * 240 + ".pcap"))
    assert runner.table is not None and len(runner.interface) > 240
    runner.table.update(parsed_udp(np.arange(MAX_FLOWS_PER_TICK + 100), NOW), NOW)
    encoded = runner.table_flows(NOW)
    assert 0 < encoded.count < MAX_FLOWS_PER_TICK  # the byte bound stopped it first
    assert len(encoded.wire) <= MAX_BATCH_BYTES
    flushed = runner_flush(runner)
    assert sum(e.count for e in flushed) == MAX_FLOWS_PER_TICK + 100  # every flow ends
    assert all(len(e.wire) <= MAX_BATCH_BYTES for e in flushed)


def runner_flush(runner: Runner) -> list[EncodedFlows]:
    """The exhausted (end of pcap) path of Runner.tick, without a source."""

    class Done:
        def read_batch(self, max_frames: int, timeout: float) -> None:
            return None

        def loss(self) -> dict[str, int]:
            return {}

    runner.source = Done()  # type: ignore[assignment]
    out = runner.tick(deadline=time.monotonic() + 5)
    assert out.exhausted
    return out.flows
