"""The runner's XDP modes on a real veth, without a control plane: pass-through flows and
their loss reports, dropped flows beside the kernel's in inline mode, and AF_XDP zero-copy
asked for on veth (which has none): the fallback, and where it is reported."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from dataplane.bpf import BpfError, Rule, RuleSet, XdpProgram
from dataplane.config import CaptureConfig, DataplaneConfig
from dataplane.runner import IDLE_SAMPLE_N, Runner, TickOutput
from dataplane.sources.base import SourceError
from dataplane.status import format_status, interface_status
from dataplane.trafficgen import AfPacketSender, FrameSpec, build_frame
from floe.dataplane.v1 import uplink_pb2 as pb
from tests.support.topology import VethNs

pytestmark = pytest.mark.root

TCP = FrameSpec(src="10.9.0.1", dst="10.9.0.2", proto="tcp", sport=1000, dport=80)
UDP = FrameSpec(src="10.9.3.1", dst="10.9.3.2", proto="udp", sport=53, dport=5353)


@pytest.fixture
def make_runner(tmp_path: Path) -> Iterator[list[Runner]]:
    made: list[Runner] = []
    yield made
    for runner in made:
        runner.close()
        if runner.program is not None:
            with contextlib.suppress(BpfError):  # two runners of one test share the pins
                XdpProgram.open(runner.interface).detach()


def _runner(made: list[Runner], tmp: Path, mode: str, ifname: str,
            capture: CaptureConfig | None = None) -> Runner:
    config = DataplaneConfig(target="127.0.0.1:1", api_key="", node_id="t", instance_id="i",
                             state_dir=tmp)
    runner = Runner(config, mode, ifname, capture=capture)  # type: ignore[arg-type]
    made.append(runner)
    runner.open()
    return runner


def _send(veth: VethNs, frames: list[bytes]) -> None:
    with AfPacketSender(veth.pair.peer, veth.namespace) as sender:
        assert sender.send(frames) == len(frames)


def _tick(runner: Runner, seconds: float = 0.3) -> TickOutput:
    return runner.tick(time.monotonic() + seconds)


def _records(out: TickOutput) -> list[pb.FlowRecord]:
    return [r for flows in out.flows for r in pb.Batch.FromString(flows.wire).flows]


def _losses(out: TickOutput) -> dict[tuple[int, str], int]:
    return {(loss.source, loss.detail): loss.count for loss in out.losses}


def test_passthrough_flows_exact_and_a_full_ring_reported_by_source(
        veth_ns: VethNs, make_runner: list[Runner], tmp_path: Path) -> None:
    runner = _runner(make_runner, tmp_path, "passthrough", veth_ns.pair.host,
                     CaptureConfig(ring_bytes=16384))
    assert runner._hello().interfaces[0].mode == pb.MODE_PASSTHROUGH
    assert runner._hello().interfaces[0].xsk_mode == pb.XSK_MODE_NONE
    _send(veth_ns, [build_frame(TCP)] * 40 + [build_frame(UDP)] * 20)
    out = _tick(runner)
    records = {(r.port_a, r.port_b): r for r in _records(out)}
    assert records[(1000, 80)].packets_ab == 40 and records[(53, 5353)].packets_ab == 20
    for record in records.values():
        assert (record.verdict, record.rule_id, record.sample_weight) == (
            pb.VERDICT_FORWARDED, 0, 1)
    assert _losses(out)[(pb.LOSS_SOURCE_RING_BUFFER, "ring_full")] == 0
    assert out.aggregates and out.aggregates[0].packets == 60

    # nobody reads for a moment: 600 frames into a 16 KiB ring (97 records fit)
    _send(veth_ns, [build_frame(TCP)] * 600)
    kernel = runner.program.counters()
    out = _tick(runner)
    lost = _losses(out)[(pb.LOSS_SOURCE_RING_BUFFER, "ring_full")]
    assert lost == kernel.ring_full == 600 - 97
    record = next(r for r in _records(out) if r.port_a == 1000)
    assert record.packets_ab == 40 + 97  # cumulative; what did not fit is the loss above


def test_inline_mode_sends_dropped_flows_beside_the_kernel_ones(
        veth_ns: VethNs, make_runner: list[Runner], tmp_path: Path) -> None:
    runner = _runner(make_runner, tmp_path, "inline", veth_ns.pair.host)
    runner.program.rules.apply(RuleSet([Rule(id=7, action="deny", src="10.9.0.0/24")]))
    _send(veth_ns, [build_frame(TCP)] * 40 + [build_frame(UDP)] * 20)
    time.sleep(0.1)
    records = _records(_tick(runner))
    dropped = [r for r in records if r.verdict == pb.VERDICT_DROPPED]
    forwarded = [r for r in records if r.verdict == pb.VERDICT_FORWARDED]
    assert [(r.port_a, r.packets_ab, r.rule_id) for r in dropped] == [(1000, 40, 7)]
    assert [(r.port_a, r.packets_ab, r.rule_id) for r in forwarded] == [(53, 20, 0)]


def test_zero_copy_falls_back_on_veth_and_says_so(
        veth_ns: VethNs, make_runner: list[Runner], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        runner = _runner(make_runner, tmp_path, "tap", veth_ns.pair.host,
                         CaptureConfig(zero_copy="try"))
    assert runner.xsk_mode == "copy"
    assert any("zero-copy AF_XDP refused" in r.getMessage() for r in caplog.records)
    assert runner._hello().interfaces[0].xsk_mode == pb.XSK_MODE_COPY
    status = interface_status(veth_ns.pair.host)
    assert status["afxdp"] == "copy"
    assert "AF_XDP sockets in copy mode" in format_status(status)
    # frames still flow through the copy-mode sockets
    _send(veth_ns, [build_frame(UDP)] * 10)
    records = _records(_tick(runner))
    assert [(r.port_a, r.packets_ab) for r in records] == [(53, 10)]
    runner.close()
    status = interface_status(veth_ns.pair.host)  # sockets gone with the dataplane
    assert status["afxdp"] is None
    assert "no AF_XDP sockets (no dataplane running)" in format_status(status)


def test_zero_copy_required_on_veth_is_refused_naming_it(
        veth_ns: VethNs, make_runner: list[Runner], tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="zero-copy is required"):
        _runner(make_runner, tmp_path, "tap", veth_ns.pair.host,
                CaptureConfig(zero_copy="require"))


def test_tap_mode_flows_and_dropped_flows_share_the_table(
        veth_ns: VethNs, make_runner: list[Runner], tmp_path: Path) -> None:
    runner = _runner(make_runner, tmp_path, "tap", veth_ns.pair.host)
    runner.program.rules.apply(RuleSet([Rule(id=3, action="deny", dst="10.9.3.2/32")]))
    _send(veth_ns, [build_frame(TCP)] * 12 + [build_frame(UDP)] * 8)
    records = _records(_tick(runner))
    got = sorted((r.port_a, r.packets_ab, r.verdict, r.rule_id) for r in records)
    assert got == [(53, 8, pb.VERDICT_DROPPED, 3), (1000, 12, pb.VERDICT_UNKNOWN, 0)]
    assert int(np.uint64(runner.program.counters().redirected)) == 12


def test_passthrough_without_a_reader_stops_filling_the_ring(
        veth_ns: VethNs, make_runner: list[Runner], tmp_path: Path) -> None:
    """A stopped dataplane leaves the program passing and counting; its records would only
    fill the ring and cost a failed reservation a frame, so it records 1 in 2^20 until the
    next dataplane starts."""
    runner = _runner(make_runner, tmp_path, "passthrough", veth_ns.pair.host)
    assert runner.program.config().sample_n == 1
    runner.close()
    program = XdpProgram.open(veth_ns.pair.host)
    try:
        assert program.config().sample_n == IDLE_SAMPLE_N
        _send(veth_ns, [build_frame(TCP)] * 50)
        assert program.counters().passed == 50 and program.counters().ring_passed <= 1
    finally:
        program.close()
    again = _runner(make_runner, tmp_path, "passthrough", veth_ns.pair.host)
    assert again.program.config().sample_n == 1
