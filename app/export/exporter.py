"""The IPFIX exporter: an internal consumer of the observer that sends every ended flow
record to each configured collector.

Stages: the observer's fanout offers each new event batch to `ExportQueue` (a `Follower`):
one numpy mask keeps the END flow events (active-timeout ends included), and their rows and
encoded entries are queued — bounded in records; past the bound the newest are refused and
counted per node as export loss (`queue_full`), so the ingest never waits. `Exporter.run`, a
task on the event loop, takes up to `STEP_RECORDS` records at a time: one
`GetFlowsResponse.FromString` parse for their counters, one numpy array per (node, IP
version) in the template's layout, then messages to every collector (`sender.py`). It yields
the loop between steps and paces each collector at `messages_per_second`, so a burst of
ended flows neither holds the loop nor floods a collector's receive buffer.

Observation domains: one per node, `domain_id(node_id)` (CRC-32 of the node id, 0 → 1),
stable across restarts so a collector keeps telling nodes apart. ingressInterface is the
dataplane's ifindex on that node (0 for a pcap replay).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from app.export.ipfix import COUNTER_DTYPE, IPV4, IPV6, build_records
from app.export.sender import CollectorLink
from app.observer.fanout import Follower
from app.observer.filters import compile_selection
from app.observer.ring import TYPE_FLOW, Columns, EventBatch, EventRing
from floe.observer.v1 import observer_pb2 as pb

__all__ = ["STEP_RECORDS", "ExportQueue", "Exporter", "NodeExport", "domain_id"]

log = logging.getLogger(__name__)

STEP_RECORDS = 512  # records per step: ~30 messages per collector, ~1-2 ms of the loop
SETTLE_SECONDS = 1.0
STOP_GRACE = 0.5  # seconds a stopping exporter keeps sending what is queued


def domain_id(node_id: str) -> int:
    """The node's IPFIX observation domain id: CRC-32 of its id (0 is taken to mean "no
    domain" by RFC 7011, so it becomes 1)."""
    return zlib.crc32(node_id.encode()) or 1


def _end_selection() -> Any:
    request = pb.GetFlowsRequest(allow=[pb.FlowFilter(event_kind=[pb.EVENT_KIND_END])])
    return compile_selection(request, None)


@dataclass(slots=True)
class _Chunk:
    columns: Columns
    entries: list[bytes]


class ExportQueue(Follower):
    """The fanout's view of the exporter: keeps END flow events, bounded in records.

    It refuses the newest records when full (tail drop) rather than dropping the oldest like
    a GetFlows stream: the refused rows are at hand, so the loss is counted per node at no
    cost, and what reaches a collector stays in order.
    """

    __slots__ = ("chunks", "dropped", "exports", "held", "ready")

    def __init__(self, capacity: int) -> None:
        super().__init__(_end_selection(), capacity, "ipfix-exporter")
        self.chunks: deque[_Chunk] = deque()
        self.held = 0
        self.dropped: dict[int, int] = {}  # ring node index -> records refused, not yet taken
        self.ready = asyncio.Event()
        # Whether this instance exports a node's flows (None: all). With the cluster relay
        # every instance sees every node's flows; only the one holding its stream exports
        # them, so a collector gets each record once.
        self.exports: Callable[[str], bool] | None = None

    def offer(self, batch: EventBatch, ring: EventRing) -> None:
        if self.closed:
            return
        columns = batch.columns
        keep = self.selection.select(columns, ring) & (columns["type"] == TYPE_FLOW)
        if self.exports is not None:
            names = ring.nodes.names
            for node in np.unique(columns["node"][keep]).tolist():
                if node < len(names) and not self.exports(names[node]):
                    keep &= columns["node"] != node
        picked = np.flatnonzero(keep)
        if picked.size == 0:
            return
        room = self.queue_size - self.held
        if picked.size > room:
            refused = picked[max(room, 0):]
            nodes, counts = np.unique(columns["node"][refused], return_counts=True)
            for node, count in zip(nodes.tolist(), counts.tolist(), strict=True):
                self.dropped[node] = self.dropped.get(node, 0) + count
            picked = picked[:max(room, 0)]
            if picked.size == 0:
                return
        entries = batch.entries
        self.chunks.append(_Chunk(columns[picked], [entries[i] for i in picked.tolist()]))
        self.held += int(picked.size)
        self.ready.set()

    def take(self, limit: int) -> tuple[Columns, list[bytes]] | None:
        """Up to `limit` queued records, oldest first (None when empty)."""
        if not self.chunks:
            return None
        parts: list[Columns] = []
        entries: list[bytes] = []
        while self.chunks and len(entries) < limit:
            head = self.chunks[0]
            want = limit - len(entries)
            if len(head.entries) <= want:
                self.chunks.popleft()
                parts.append(head.columns)
                entries.extend(head.entries)
            else:
                parts.append(head.columns[:want])
                entries.extend(head.entries[:want])
                head.columns, head.entries = head.columns[want:], head.entries[want:]
        self.held -= len(entries)
        if not self.chunks:
            self.ready.clear()
        columns = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return columns, entries

    def take_dropped(self) -> dict[int, int]:
        dropped, self.dropped = self.dropped, {}
        return dropped

    def clear(self) -> dict[int, int]:
        """Forget what is queued; returns how many records that was, per ring node index."""
        left: dict[int, int] = {}
        for chunk in self.chunks:
            nodes, counts = np.unique(chunk.columns["node"], return_counts=True)
            for node, count in zip(nodes.tolist(), counts.tolist(), strict=True):
                left[node] = left.get(node, 0) + count
        self.chunks.clear()
        self.held = 0
        self.ready.clear()
        return left


@dataclass(slots=True)
class NodeExport:
    """Records of one node handed to the exporter (taken from the queue or refused by it)."""

    domain: int
    records: int = 0
    unsent: int = 0  # lost before any collector: the queue was full, or the exporter stopped


@dataclass(slots=True)
class Exporter:
    ring: EventRing
    queue: ExportQueue
    links: list[CollectorLink]
    messages_per_second: int = 0  # per collector; 0: unpaced
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    nodes: dict[str, NodeExport] = field(default_factory=dict)
    _tokens: float = 0.0
    _refilled: float = 0.0
    _settle_at: float = 0.0
    _stopping: bool = False

    def node(self, node_id: str) -> NodeExport:
        found = self.nodes.get(node_id)
        if found is None:
            found = self.nodes[node_id] = NodeExport(domain_id(node_id))
        return found

    # -- one step --------------------------------------------------------------------------
    def step(self, limit: int = STEP_RECORDS) -> int:
        """Send up to `limit` queued records to every collector; returns the most messages
        one collector was sent."""
        self._count_refused()
        taken = self.queue.take(limit)
        if taken is None:
            return 0
        columns, entries = taken
        try:
            parts = self._encode(columns, entries)
        except Exception:  # a bug: the records are counted lost, the task goes on
            log.exception("IPFIX export: encoding %d records failed; counted as lost",
                          len(entries))
            nodes, counts = np.unique(columns["node"], return_counts=True)
            self._unsent(dict(zip(nodes.tolist(), counts.tolist(), strict=True)), "error")
            return 0
        now, export_time = self.clock(), int(self.wall())
        sent = dict.fromkeys(range(len(self.links)), 0)
        for node_id, template, records in parts:
            export = self.node(node_id)
            export.records += len(records) // template.record_size
            for i, link in enumerate(self.links):
                sent[i] += link.send(export.domain, node_id, template, records, export_time,
                                     now)
        return max(sent.values(), default=0)

    def _encode(self, columns: Columns, entries: list[bytes]) -> list[tuple[str, Any, bytes]]:
        """(node id, template, data set body) per node and IP version present."""
        counters = self._counters(entries)
        if len(counters) != len(columns):
            raise ValueError(f"{len(entries)} entries decoded to {len(counters)} events")
        names = self.ring.nodes.names
        node_column = columns["node"]
        v4 = columns["ipv"] == 4
        parts = []
        for node_index in np.unique(node_column).tolist():
            rows = node_column == node_index
            for template, family in ((IPV4, rows & v4), (IPV6, rows & ~v4)):
                if family.any():
                    records = build_records(template, columns[family], counters[family])
                    parts.append((names[node_index], template, records.tobytes()))
        return parts

    @staticmethod
    def _counters(entries: list[bytes]) -> npt.NDArray[np.void]:
        """The END events' cumulative counters and first-seen times, one parse for all."""
        events = pb.GetFlowsResponse.FromString(b"".join(entries)).events
        rows = []
        for event in events:
            flow = event.flow.flow
            first = flow.first_seen
            rows.append((flow.packets, flow.bytes, flow.reply_packets, flow.reply_bytes,
                         first.seconds * 1_000_000_000 + first.nanos))
        return np.array(rows, COUNTER_DTYPE)

    def _count_refused(self) -> None:
        self._unsent(self.queue.take_dropped(), "queue_full")

    def _unsent(self, by_node: dict[int, int], reason: str) -> None:
        names = self.ring.nodes.names
        for node_index, count in by_node.items():
            export = self.node(names[node_index])
            export.records += count
            export.unsent += count
            for link in self.links:
                link.lost[reason] += count

    def settle(self) -> None:
        self._count_refused()
        for link in self.links:
            link.settle()

    # -- the task --------------------------------------------------------------------------
    async def run(self) -> None:
        """Send what the queue gets until stopped; settle each collector once a second."""
        self._settle_at = self.clock() + SETTLE_SECONDS
        self._refilled = self.clock()
        while not (self._stopping and self.queue.held == 0):
            if self.queue.held == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.queue.ready.wait(),
                                           max(0.0, self._settle_at - self.clock()))
            if self.clock() >= self._settle_at:
                self.settle()
                self._settle_at = self.clock() + SETTLE_SECONDS
            await self._pace(self.step())

    async def _pace(self, messages: int) -> None:
        """Token bucket per collector (all collectors get the same messages): a step's burst
        is paid for by sleeping; the bucket holds at most 10 ms of messages."""
        rate = self.messages_per_second
        if not rate:
            await asyncio.sleep(0)
            return
        now = self.clock()
        burst = max(32.0, rate / 100)
        self._tokens = min(burst, self._tokens + (now - self._refilled) * rate) - messages
        self._refilled = now
        await asyncio.sleep(-self._tokens / rate if self._tokens < 0 else 0)

    async def stop(self, task: asyncio.Task[None]) -> None:
        """Send what is queued (for up to STOP_GRACE seconds), count the rest as lost,
        settle, close the sockets. Take the queue out of the fanout first."""
        self._stopping = True
        self.queue.ready.set()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(task), STOP_GRACE)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self._count_refused()
        self._unsent(self.queue.clear(), "stopped")
        self.settle()
        for link in self.links:
            link.close()

    # -- views -----------------------------------------------------------------------------
    def describe_node(self, node_id: str, *, name_collectors: bool = True) -> dict[str, Any]:
        """What `/nodes` shows: the node's domain and, per collector, its records' fate.

        Without `name_collectors` (a reader limited to some nodes) collectors are numbered,
        not named: their addresses are the operator's, not every node reader's."""
        export = self.nodes.get(node_id) or NodeExport(domain_id(node_id))
        collectors = {}
        for number, link in enumerate(self.links, start=1):
            counts = link.nodes.get(node_id)
            label = link.label if name_collectors else f"collector-{number}"
            collectors[label] = {
                "exported": counts.exported if counts else 0,
                "lost": export.unsent + (counts.lost if counts else 0),
                "pending": counts.pending if counts else 0,
            }
        return {"observation_domain_id": export.domain, "records": export.records,
                "collectors": collectors}
