"""The dataplane's pipeline loop: source → parse → flow table → uplink.

One asyncio loop owns the uplink; every tick the blocking stages (ring reads, numpy parsing,
flow-table work, map reads) run in one worker thread call, so the loop stays free for gRPC
and the stages never race each other. What a tick produces — absolute counter snapshots,
flow updates and ends, cumulative loss and rule hits — becomes one numbered uplink batch.

In tap, pass-through, afpacket and pcap modes every batch is also folded into
`dataplane.aggregate` (per flow, from the table's deltas), and each tick's snapshot — top hosts
and ports by bytes and packets, protocols, port bands — rides on the batch as a
`TrafficAggregate`. Inline mode has no frames in user space, so no aggregate.

Modes: tap (XDP redirects into AF_XDP; flows built here), pass-through (XDP passes every frame
to the host stack and copies its headers into a ring buffer; flows built here), inline (XDP
filters and keeps an LRU flow map; flows read from it each tick), afpacket (TPACKET_V3, no XDP)
and pcap (replay; the run ends when the file does, after the last batch is acknowledged).

Dropped frames: in every XDP mode the program records sampled dropped frames in the ring
buffer with their rule; they become flows with verdict DROPPED through the same table (in
inline mode a small table of their own, beside the kernel's flows).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from app import __version__
from dataplane.aggregate import AggregateSnapshot, Aggregator, Talker
from dataplane.bpf.layout import Verdict, XskMode
from dataplane.config import CaptureConfig, DataplaneConfig, boot_id, tls_material
from dataplane.flowtable import FlowRecords, FlowTable, records_from_kernel
from dataplane.flowwire import EncodedFlows, encode_flows
from dataplane.parse import parse_batch
from dataplane.sampling import SamplingController
from dataplane.sources.base import Source
from dataplane.sources.ringbuf import RingSource
from dataplane.uplink import UplinkClient
from floe.dataplane.v1 import uplink_pb2 as pb

__all__ = [
    "IDLE_SAMPLE_N", "Mode", "Runner", "TickOutput", "aggregate_message", "ruleset_from_proto",
]

log = logging.getLogger(__name__)

Mode = Literal["tap", "inline", "passthrough", "afpacket", "pcap"]
XDP_MODES = ("tap", "inline", "passthrough")

_MODE_PB = {"tap": pb.MODE_TAP, "inline": pb.MODE_INLINE, "passthrough": pb.MODE_PASSTHROUGH,
            "afpacket": pb.MODE_AFPACKET, "pcap": pb.MODE_PCAP}
_XSK_PB = {"copy": pb.XSK_MODE_COPY, "zerocopy": pb.XSK_MODE_ZEROCOPY}
_ATTACH_PB = {"native": pb.ATTACH_MODE_NATIVE, "generic": pb.ATTACH_MODE_GENERIC}
# Source.loss() keys → proto loss sources (anything else is OTHER with its name as detail).
_LOSS_PB = {
    "rx_ring_full": pb.LOSS_SOURCE_AFXDP_RING,
    "fill_ring_empty": pb.LOSS_SOURCE_FILL_RING,
    "invalid_descs": pb.LOSS_SOURCE_INVALID_DESCRIPTOR,
    "kernel_drops": pb.LOSS_SOURCE_KERNEL_DROP,
    "dropped_other": pb.LOSS_SOURCE_KERNEL_DROP,
}
MAX_FLOWS_PER_TICK = 16_384  # bounded batch size; the rest follows on the next ticks
SLICE_FLOWS = 2_048  # flow records per maintenance slice: the ring is drained between slices
MAX_BATCH_BYTES = 3 << 20  # flow records per batch stay under gRPC's 4 MiB message default
BATCH_FRAMES = 4096
DROP_TABLE_FLOWS = 1 << 16  # inline mode: flows of dropped frames (their own table)
IDLE_SAMPLE_N = 1 << 20  # pass-through with no dataplane reading: record 1 in this many


@dataclass(slots=True)
class TickOutput:
    counters: list[Any] = field(default_factory=list)
    flows: list[EncodedFlows] = field(default_factory=list)  # one uplink batch each
    losses: list[Any] = field(default_factory=list)
    rule_hits: list[Any] = field(default_factory=list)
    aggregates: list[Any] = field(default_factory=list)
    exhausted: bool = False  # pcap: the file has been replayed completely


def _talkers(items: list[Talker]) -> list[Any]:
    return [pb.Talker(key=t.key, packets=t.packets, bytes=t.bytes) for t in items]


def aggregate_message(snap: AggregateSnapshot, interface: str, top_n: int) -> Any:
    """One tick's AggregateSnapshot (of an Aggregator keeping `top_n`) as a TrafficAggregate."""
    return pb.TrafficAggregate(
        interface=interface, start_unix_ns=snap.start_ns, end_unix_ns=snap.end_ns, top_n=top_n,
        top_hosts_by_bytes=_talkers(snap.top_hosts_by_bytes),
        top_hosts_by_packets=_talkers(snap.top_hosts_by_packets),
        top_ports_by_bytes=_talkers(snap.top_ports_by_bytes),
        top_ports_by_packets=_talkers(snap.top_ports_by_packets),
        protocols=[pb.Talker(key=p.name, packets=p.packets, bytes=p.bytes)
                   for p in snap.protocols],
        port_packets_well_known=snap.port_bands.well_known,
        port_packets_registered=snap.port_bands.registered,
        port_packets_dynamic=snap.port_bands.dynamic,
        hosts_truncated=snap.hosts_truncated,
        packets=sum(i.packets for i in snap.interfaces),
        bytes=sum(i.bytes for i in snap.interfaces),
        malformed=sum(i.malformed for i in snap.interfaces),
    )


def ruleset_from_proto(message: Any) -> Any:
    """pb.RuleSet → dataplane.bpf.rules.RuleSet (the maps' own shape)."""
    from dataplane.bpf.rules import Rule, RuleSet

    rules = []
    for rule in message.rules:
        action: Literal["allow", "deny"] = "deny" if rule.action == pb.ACTION_DENY else "allow"
        kind = rule.WhichOneof("match")
        if kind == "cidr":
            if rule.cidr.direction == pb.DIRECTION_DST:
                rules.append(Rule(id=rule.id, action=action, dst=rule.cidr.cidr))
            else:
                rules.append(Rule(id=rule.id, action=action, src=rule.cidr.cidr))
        elif kind == "port":
            direction: Literal["dst", "src"] = (
                "dst" if rule.port.direction == pb.DIRECTION_DST else "src")
            rules.append(Rule(id=rule.id, action=action, port=rule.port.port,
                              proto=rule.port.protocol or None, direction=direction))
        elif kind == "protocol":
            rules.append(Rule(id=rule.id, action=action, proto=rule.protocol))
    return RuleSet(rules=rules)


class Runner:
    """Owns the program (XDP modes), the source, the flow table and the uplink for one run."""

    def __init__(
        self,
        config: DataplaneConfig,
        mode: Mode,
        interface: str | None,
        pcap_path: str | Path | None = None,
        speed: float | Literal["max"] = "max",
        capture: CaptureConfig | None = None,
        *,
        mirror: bool = False,
    ) -> None:
        self.config = config
        self.capture = capture or CaptureConfig()
        self.mode = mode
        self.mirror = mirror  # tap: the operator says the interface is a mirror/SPAN port
        self.interface = interface or (Path(str(pcap_path)).name if pcap_path else "pcap")
        self.pcap_path = pcap_path
        self.speed = speed
        self.program: Any = None
        self.source: Source | None = None
        self.ring: RingSource | None = None  # dropped-frame records (tap, inline)
        # inline mode reads flows from the kernel's LRU map: only a small table for the
        # dropped frames' records (its memory is committed up front) and no aggregate
        self.table = (FlowTable(capacity=DROP_TABLE_FLOWS) if mode == "inline"
                      else FlowTable(capacity=1 << 18, track_deltas=True))
        self.aggregator = Aggregator() if mode != "inline" else None
        self.xsk_mode = ""  # tap: "copy" or "zerocopy", as bound
        self.loss_base: dict[str, int] = {}  # kernel loss counters when this process started
        self.ifindex = 0
        self.epoch = config.instance_id  # user-space counters reset with the process
        self.user_counters: dict[str, int] = {"packets": 0, "bytes": 0, "malformed": 0}
        self.last_inline_ns = 0
        self.frame_clock_ns = 0
        self.sampling = SamplingController()
        self.last_kernel: dict[str, int] = {}
        self.last_tick_monotonic = 0.0  # when the loop last finished a tick (dataplane.health)
        self.last_losses: list[Any] = []  # that tick's LossReports, cumulative
        self.uplink = UplinkClient(
            config.targets, self._key, self._hello, on_rules=self._on_rules,
            on_config=self._on_config, max_buffered=config.max_buffered_batches,
            backoff_initial=config.backoff_initial, backoff_max=config.backoff_max,
            tls=functools.partial(tls_material, config) if config.tls else None,
        )

    # -- set-up ----------------------------------------------------------------------------
    def open(self) -> None:
        """Check the interface, attach (or re-attach to) the XDP program, open the source.

        Raises InterfaceError before anything is attached: NoSuchInterfaceError (the same
        words in every mode), HostInterfaceError for tap on an interface that carries the
        host's own traffic unless `mirror`."""
        from dataplane.interfaces import HostInterfaceError, interface_facts, tap_refusal
        from dataplane.sources.modes import open_source

        if self.mode != "pcap":
            facts = interface_facts(self.interface)
            self.ifindex = facts.ifindex
            refusal = tap_refusal(facts) if self.mode == "tap" and not self.mirror else ""
            if refusal:
                raise HostInterfaceError(refusal)
        if self.mode in XDP_MODES:
            from dataplane.bpf.loader import XdpProgram

            assert self.interface is not None
            self.program = XdpProgram.attach(self.interface, self.mode,  # type: ignore[arg-type]
                                             ring_bytes=self.capture.ring_bytes)
            self.ifindex = self.program.ifindex
            counters_pin = self.program.pin_dir / "floe_counters"
            try:
                stat = os.stat(counters_pin)
                self.epoch = f"{boot_id()}:{stat.st_ino}:{stat.st_ctime_ns}"
            except OSError:
                self.epoch = f"{boot_id()}:{self.program.pin_dir}"
            self._open_ring()
        if self.mode == "tap":
            source = open_source("tap", interface=self.interface, program=self.program,
                                 zero_copy=self.capture.zero_copy)  # type: ignore[arg-type]
            self.source = source
            self.xsk_mode = getattr(source, "bind_mode", "copy")
            self.program.set_config(xsk_mode=XskMode.ZEROCOPY if self.xsk_mode == "zerocopy"
                                    else XskMode.COPY)
        elif self.mode == "passthrough":
            self.source, self.ring = self.ring, None  # the ring is pass-through's source
            self.program.set_config(sample_n=1)
        elif self.mode == "afpacket":
            self.source = open_source("afpacket", interface=self.interface)
        elif self.mode == "pcap":
            self.source = open_source("pcap", pcap_path=self.pcap_path, speed=self.speed)

    def _open_ring(self) -> None:
        """The ring buffer's settings, a fresh sampling state, and its reader."""
        program, capture = self.program, self.capture
        program.set_config(snaplen=capture.snaplen, drop_sample_n=capture.drop_sample_n,
                           drop_rate_cap=capture.drop_rate_cap, xsk_mode=XskMode.NONE)
        program.reset_ring_state()
        kernel = program.counters()
        # kernel counters live as long as the pins: this process reports what it saw grow
        self.loss_base = {"ring_full": kernel.ring_full, "sampled_out": kernel.sampled_out}
        self.sampling.baseline(0, 0)
        self.ring = RingSource(program)

    def close(self) -> None:
        """Release our handles; the attached program and its pinned maps keep working."""
        for source in (self.source, self.ring):
            if source is not None:
                source.close()
        if self.program is not None:
            with contextlib.suppress(Exception):  # the program may be gone already
                if self.mode == "tap":
                    self.program.set_config(xsk_mode=XskMode.NONE)
                elif self.mode == "passthrough":  # nobody reads now: do not fill the ring
                    self.program.set_config(sample_n=IDLE_SAMPLE_N)
            self.program.close()

    # -- uplink callbacks ------------------------------------------------------------------
    def _key(self) -> str:
        if self.config.api_key:
            return self.config.api_key
        with contextlib.suppress(OSError):  # beside `floe serve`: the key may appear later
            return self.config.key_path.read_text().strip()
        return ""

    def _hello(self) -> Any:
        attach = pb.ATTACH_MODE_NONE
        if self.program is not None:
            attach = _ATTACH_PB.get(str(self.program.attach_mode), pb.ATTACH_MODE_UNSPECIFIED)
        caps = {"tap": ["xdp", "afxdp", "rules", "drop-records"],
                "inline": ["xdp", "inline-flows", "rules", "drop-records"],
                "passthrough": ["xdp", "ringbuf", "rules", "drop-records"],
                "afpacket": ["afpacket"], "pcap": ["pcap"]}[self.mode]
        xsk = _XSK_PB.get(self.xsk_mode, pb.XSK_MODE_NONE)
        return pb.Hello(
            node_id=self.config.node_id, instance_id=self.config.instance_id, boot_id=boot_id(),
            interfaces=[pb.InterfaceInfo(name=self.interface, ifindex=self.ifindex,
                                         mode=_MODE_PB[self.mode], attach_mode=attach,
                                         xsk_mode=xsk)],
            capabilities=caps, last_acked_seq=self.uplink.stats.acked_seq,
            version=__version__, started_unix_ns=time.time_ns(),
        )

    async def _on_rules(self, message: Any) -> None:
        if self.program is None:
            raise RuntimeError(f"{self.mode} mode has no XDP program to filter with")
        ruleset = ruleset_from_proto(message)
        default: Literal["allow", "deny"] = (
            "deny" if message.default_action == pb.ACTION_DENY else "allow")

        def apply() -> None:
            self.program.rules.apply(ruleset)
            self.program.set_config(default_action=default)

        await asyncio.to_thread(apply)
        log.info("rules generation %d applied (%d rules, default %s)",
                 message.generation, len(ruleset.rules), default)

    async def _on_config(self, message: Any) -> None:
        if self.program is None:
            return
        malformed: Literal["allow", "deny"] = (
            "deny" if message.malformed_action == pb.ACTION_DENY else "allow")
        await asyncio.to_thread(self.program.set_config, sample_n=message.sample_n,
                                malformed_action=malformed)

    # -- one tick (worker thread) ----------------------------------------------------------
    def _read_until(self, deadline: float) -> bool:
        """Drain the source (and the dropped-frame ring) until `deadline`; True when the
        source is exhausted."""
        main: Source | None = self.source if self.source is not None else self.ring
        if main is None:  # inline mode without drop records: nothing to read
            return False
        source: Source = main
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if source is not self.ring:
                self._read_ring()
            batch = source.read_batch(BATCH_FRAMES, min(remaining, 0.05))
            if batch is None:
                return True
            if len(batch):
                self._apply(batch, counted=source is self.source)

    def _read_ring(self, max_batches: int = 4) -> None:
        """Dropped-frame records waiting in the ring buffer (tap and inline modes)."""
        ring = self.ring
        for _ in range(max_batches if ring is not None else 0):
            batch = ring.read_batch(BATCH_FRAMES, 0.0)  # type: ignore[union-attr]
            if not batch:
                return
            self._apply(batch, counted=False)

    def _read_now(self, max_batches: int = 4) -> None:
        """What a live ring holds right now, without waiting: runs between maintenance slices
        so the ring never waits for more than one slice."""
        self._read_ring(max_batches)
        source = self.source
        if source is None or self.mode == "pcap":
            return
        for _ in range(max_batches):
            batch = source.read_batch(BATCH_FRAMES, 0.0)
            if not batch:  # None (closed) or empty
                return
            self._apply(batch)

    def _apply(self, batch: Any, counted: bool = True) -> None:
        """Fold one batch into the table and the aggregate; `counted`: a frame of the main
        source (the user-space counters and the sampling controller count those)."""
        parsed = parse_batch(batch)
        now = time.time_ns()
        if self.mode == "pcap":  # replay runs on the capture's clock
            now = self.frame_clock_ns = max(self.frame_clock_ns, int(batch.ts_ns.max()))
        self.table.update(parsed, now)
        if self.aggregator is not None:
            self.aggregator.add(parsed, self.table.last_deltas())
        if not counted:
            return
        malformed = int(np.count_nonzero(parsed.malformed))
        self.user_counters["packets"] += len(batch)
        self.user_counters["bytes"] += batch.total_bytes
        self.user_counters["malformed"] += malformed

    def table_flows(self, now: int) -> EncodedFlows:
        """Ended and changed flows of the table, at most MAX_FLOWS_PER_TICK, produced in slices
        of SLICE_FLOWS (expire, drain, encode) with the ring read between slices. One slice is
        the longest the ring waits (bench/flows measures it at 1M live flows)."""
        assert self.table is not None
        wire: list[bytes] = []
        count = 0
        expiring = True
        while count < MAX_FLOWS_PER_TICK:
            room = min(SLICE_FLOWS, MAX_FLOWS_PER_TICK - count)
            taken = 0
            if expiring:
                ended = self.table.expire(now, limit=room)
                expiring = ended.shape[0] >= room  # a mass timeout: more in the next slice
                taken += self._encode(ended, wire)
            if taken < room:
                taken += self._encode(self.table.drain_updates(limit=room - taken), wire)
            count += taken
            full = sum(map(len, wire)) >= MAX_BATCH_BYTES - SLICE_FLOWS * self._record_bytes()
            if taken < room or full:
                break  # nothing else pending, or the batch is full
            self._read_now()
        return EncodedFlows(b"".join(wire), count)

    def _record_bytes(self) -> int:
        """The most one record can take on the wire (long pcap file names count)."""
        return 160 + len(self.interface.encode())

    def _encode(self, records: FlowRecords, into: list[bytes]) -> int:
        if records.shape[0]:
            into.append(encode_flows(records, self.interface).wire)
        return int(records.shape[0])

    def tick(self, deadline: float) -> TickOutput:
        """Everything one batch needs, computed off the event loop."""
        out = TickOutput(exhausted=self._read_until(deadline))
        now_ns = time.time_ns()
        table_now = self.frame_clock_ns if self.mode == "pcap" else now_ns
        if self.mode == "inline":
            kernel = self.program.read_flows()
            recent = kernel[kernel["last_seen_ns"] >= self.last_inline_ns]
            self.last_inline_ns = now_ns - 1_000_000_000  # overlap: late writers are re-sent
            if recent.shape[0] > MAX_FLOWS_PER_TICK:  # the most recently active first: the
                newest = np.argsort(recent["last_seen_ns"])[::-1][:MAX_FLOWS_PER_TICK]
                recent = recent[newest]  # rest are cumulative records, sent when next active
            out.flows = [encode_flows(records_from_kernel(recent), self.interface)]
            dropped = self.table_flows(table_now)  # the dropped frames' flows: a batch apart
            if dropped.count:
                out.flows.append(dropped)
        elif out.exhausted:  # every flow ends now, in batches that fit a gRPC message
            ended = self.table.flush()
            step = max(1, min(MAX_FLOWS_PER_TICK,
                              MAX_BATCH_BYTES // self._record_bytes()))
            out.flows = [encode_flows(ended[i:i + step], self.interface)
                         for i in range(0, ended.shape[0], step)]
        else:
            out.flows = [self.table_flows(table_now)]
        if self.aggregator is not None:
            out.aggregates = [aggregate_message(self.aggregator.tick(table_now), self.interface,
                                                self.aggregator.top_n)]
        out.counters = [self._counters(now_ns)]
        source_loss = self.source.loss() if self.source is not None else {}
        out.losses = self._losses(source_loss)
        self._adapt_sampling(source_loss)
        if self.program is not None:
            out.rule_hits = [
                pb.RuleHits(rule_id=rule_id, packets=hit.packets, bytes=hit.bytes,
                            interface=self.interface, counter_epoch=self.epoch)
                for rule_id, hit in sorted(self.program.rule_hits().items())
            ]
        return out

    def _counters(self, now_ns: int) -> Any:
        if self.program is not None:
            snapshot = self.program.counters()
            values = {k: int(v) for k, v in _fields(snapshot).items() if k != "ifindex"}
            self.last_kernel = values
        else:
            values = dict(self.user_counters)
            values["passed"] = values["packets"]
        return pb.CounterSnapshot(interface=self.interface, counter_epoch=self.epoch,
                                  values=values, taken_unix_ns=now_ns)

    def _losses(self, source_loss: dict[str, int]) -> list[Any]:
        reports = []
        for name, count in sorted(source_loss.items()):
            source = _LOSS_PB.get(name, pb.LOSS_SOURCE_OTHER)
            reports.append(pb.LossReport(source=source, interface=self.interface,
                                         count=int(count), detail=name))
        grown = {name: max(0, self.last_kernel.get(name, 0) - base)
                 for name, base in self.loss_base.items()}
        if grown.get("sampled_out"):
            reports.append(pb.LossReport(source=pb.LOSS_SOURCE_SAMPLED_OUT,
                                         interface=self.interface, count=grown["sampled_out"],
                                         detail="sampled_out"))
        if self.program is not None:  # the ring buffer: reset when this process started
            reports.append(pb.LossReport(source=pb.LOSS_SOURCE_RING_BUFFER,
                                         interface=self.interface,
                                         count=grown.get("ring_full", 0), detail="ring_full"))
            for name, count in self._ring_sampled_out().items():
                if count:
                    reports.append(pb.LossReport(source=pb.LOSS_SOURCE_SAMPLED_OUT,
                                                 interface=self.interface, count=count,
                                                 detail=name))
        if self.mode != "inline":  # user-space parsing and flow table
            reports.append(pb.LossReport(source=pb.LOSS_SOURCE_FLOW_TABLE_EVICTION,
                                         interface=self.interface,
                                         count=self.table.stats().overflow, detail="overflow"))
            reports.append(pb.LossReport(source=pb.LOSS_SOURCE_FLOW_TABLE_EVICTION,
                                         interface=self.interface,
                                         count=self.table.ended_dropped,
                                         detail="ended_records_dropped"))
            reports.append(pb.LossReport(source=pb.LOSS_SOURCE_PARSE_MALFORMED,
                                         interface=self.interface,
                                         count=self.user_counters["malformed"],
                                         detail="malformed"))
        return reports

    def _ring_sampled_out(self) -> dict[str, int]:
        """Frames the ring's records stand for without being recorded (their weights less
        one), and those the kernel still carries for the next record, by kind."""
        ring = self.source if isinstance(self.source, RingSource) else self.ring
        if ring is None:
            return {}
        state = self.program.ring_state()
        rode = ring.sampled_out
        return {"pass_sampled_out": rode.get(Verdict.FORWARDED, 0) + state["pass_weight"],
                "drop_sampled_out": rode.get(Verdict.DROPPED, 0) + state["drop_weight"]}

    def _adapt_sampling(self, loss: dict[str, int]) -> None:
        """Tap mode: thin what XDP redirects while the AF_XDP rings overflow; pass-through:
        what it records while the ring buffer does (the weights keep the counts exact)."""
        if self.mode not in ("tap", "passthrough") or self.program is None:
            return
        if self.mode == "tap":
            ring_loss = loss.get("rx_ring_full", 0) + loss.get("fill_ring_empty", 0)
        else:
            ring_loss = self.last_kernel.get("ring_full", 0) - self.loss_base.get("ring_full", 0)
        new_n = self.sampling.update(ring_loss, self.user_counters["packets"])
        if new_n is not None:
            self.program.set_config(sample_n=new_n)
            what = "redirects" if self.mode == "tap" else "records"
            log.warning("%s loss: XDP now %s 1 in %d frames",
                        "AF_XDP ring" if self.mode == "tap" else "ring buffer", what, new_n)

    # -- the loop --------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> int:
        """Until `stop` (or the end of a pcap file): one batch per tick. Returns an exit code."""
        await asyncio.to_thread(self.open)
        uplink_task = asyncio.create_task(self.uplink.run(), name="uplink")
        exit_code = 0
        try:
            while not stop.is_set():
                deadline = time.monotonic() + self.config.tick_seconds
                out = await asyncio.to_thread(self.tick, deadline)
                self.last_tick_monotonic, self.last_losses = time.monotonic(), out.losses
                self.uplink.submit(out.counters, out.flows[0] if out.flows else (), out.losses,
                                   out.rule_hits, out.aggregates)
                for more in out.flows[1:]:  # a flush larger than one batch
                    self.uplink.submit(flows=more)
                if out.exhausted:
                    log.info("capture replayed; waiting for the control plane's acks")
                    if not await self.uplink.flush(30.0):
                        log.error("control plane did not acknowledge every batch")
                        exit_code = 1
                    break
                if self.mode == "inline" and self.ring is None:  # nothing paced the loop
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), max(0.0, deadline - time.monotonic()))
        finally:
            if not stop.is_set() or exit_code == 0:
                await self.uplink.flush(2.0)
            self.uplink.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await uplink_task
            await asyncio.to_thread(self.close)
        return exit_code


def _fields(snapshot: Any) -> dict[str, Any]:
    from dataclasses import asdict, is_dataclass

    if is_dataclass(snapshot) and not isinstance(snapshot, type):
        return asdict(snapshot)
    return dict(vars(snapshot))
