"""The `floe.observer.v1.Observer` servicer: GetFlows, WatchStats, GetNodes, ServerStatus.

GetFlows in stages: authenticate (flows:read, per node) → validate and compile the request →
read the ring's history as one snapshot and, with `follow`, register the live follower in the
same step (so nothing falls between history and live) → deliver, re-checking the credential
every few seconds. Responses leave as the encoded entries the ring holds, joined per message;
the method is registered with an identity serializer (see `handlers`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import grpc
from google.protobuf.field_mask_pb2 import FieldMask

from app.grpc.auth import REAUTH_SECONDS, AccessDenied, Grant, StreamAccess
from app.ingest.state import IngestState
from app.observer.events import entry
from app.observer.fanout import MAX_CHUNK_EVENTS, Fanout, Follower
from app.observer.filters import FLOW_FIELDS, FilterError, compile_selection
from app.observer.history import lost_event, open_flows
from app.observer.ring import EventRing
from app.types import Authenticator
from floe.observer.v1 import observer_pb2 as pb

__all__ = ["SERVICE_NAME", "ObserverLimits", "ObserverService"]

SERVICE_NAME = "floe.observer.v1.Observer"
COALESCE_SECONDS = 0.1  # a follower writes at most this often (what arrives meanwhile waits)

Context = Any  # grpc.aio.ServicerContext


def _version() -> str:
    try:
        return version("floe")
    except PackageNotFoundError:
        return "unknown"


class ObserverLimits:
    """Bounds an outsider can push against (documented in docs/observer.md)."""

    def __init__(self, streams: int, streams_per_principal: int, queue_events: int) -> None:
        self.streams = streams
        self.streams_per_principal = streams_per_principal
        self.queue_events = queue_events


def _masked(entries: Iterable[bytes], mask: FieldMask) -> list[bytes]:
    """Entries re-encoded with only the masked `Flow` fields (per consumer: masks are rare)."""
    out = []
    for raw in entries:
        event = pb.GetFlowsResponse.FromString(raw).events[0]
        if event.HasField("flow"):
            kept = pb.Flow()
            mask.MergeMessage(event.flow.flow, kept)
            event.flow.flow.CopyFrom(kept)
        out.append(entry(event))
    return out


def _chunks(entries: list[bytes]) -> Iterable[list[bytes]]:
    for start in range(0, len(entries), MAX_CHUNK_EVENTS):
        yield entries[start:start + MAX_CHUNK_EVENTS]


class ObserverService:
    def __init__(self, ring: EventRing, fanout: Fanout, state: IngestState,
                 authenticator: Callable[[], Authenticator | None],
                 limits: ObserverLimits) -> None:
        self.ring = ring
        self.fanout = fanout
        self.state = state
        self.access = StreamAccess(authenticator)
        self.limits = limits
        self.started = time.monotonic()
        self._streams: dict[str, int] = {}  # principal subject -> open streams
        self.refused_streams = 0

    # -- stream slots: GetFlows, WatchStats and WebSocket flow subscriptions alike ----------
    def take_slot(self, subject: str) -> bool:
        """One more live stream for `subject`, if the bounds allow (False: refuse it)."""
        if (sum(self._streams.values()) >= self.limits.streams
                or self._streams.get(subject, 0) >= self.limits.streams_per_principal):
            self.refused_streams += 1
            return False
        self._streams[subject] = self._streams.get(subject, 0) + 1
        return True

    def give_slot(self, subject: str) -> None:
        left = self._streams.get(subject, 1) - 1
        if left:
            self._streams[subject] = left
        else:
            self._streams.pop(subject, None)

    def slots_message(self) -> str:
        return (f"too many live streams (at most {self.limits.streams}, "
                f"{self.limits.streams_per_principal} per credential: GetFlows, WatchStats and "
                "WebSocket flow subscriptions together)")

    # -- registration --------------------------------------------------------------------
    def handlers(self) -> grpc.GenericRpcHandler:
        """GetFlows answers with pre-encoded bytes: its serializer passes them through."""

        def passthrough(data: bytes) -> bytes:
            return data

        methods = {
            "GetFlows": grpc.unary_stream_rpc_method_handler(
                self.GetFlows, pb.GetFlowsRequest.FromString, passthrough),
            "WatchStats": grpc.unary_stream_rpc_method_handler(
                self.WatchStats, pb.WatchStatsRequest.FromString,
                pb.WatchStatsResponse.SerializeToString),
            "GetNodes": grpc.unary_unary_rpc_method_handler(
                self.GetNodes, pb.GetNodesRequest.FromString,
                pb.GetNodesResponse.SerializeToString),
            "ServerStatus": grpc.unary_unary_rpc_method_handler(
                self.ServerStatus, pb.ServerStatusRequest.FromString,
                pb.ServerStatusResponse.SerializeToString),
        }
        return grpc.method_handlers_generic_handler(SERVICE_NAME, methods)

    async def _grant(self, context: Context, scope: str) -> Grant:
        try:
            return await self.access.grant(context, scope)
        except AccessDenied as denied:
            await context.abort(denied.code, denied.message)
            raise  # abort raises; for the type checker

    # -- GetFlows ------------------------------------------------------------------------
    async def GetFlows(self, request: Any, context: Context) -> AsyncIterator[bytes]:
        grant = await self._grant(context, "flows:read")
        try:
            selection = compile_selection(request, grant.nodes)
            mask = self._field_mask(request)
        except FilterError as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
            return
        subject = grant.principal.subject
        if not self.take_slot(subject):
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, self.slots_message())
            return
        try:
            opening = open_flows(self.ring, self.fanout, request, selection,
                                 queue_size=self.limits.queue_events, subject=subject)
        except FilterError as error:
            self.give_slot(subject)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
            return
        follower = opening.follower
        try:
            if opening.gap is not None:
                yield entry(opening.gap)
            history = [e for chunk in opening.history for e in chunk.entries]
            for part in _chunks(history):
                yield b"".join(_masked(part, mask) if mask else part)
            if follower is not None:
                async for message in self._follow(follower, grant, context, mask,
                                                  selection.until_ns):
                    yield message
        finally:
            if follower is not None:
                self.fanout.remove(follower)
            self.give_slot(subject)

    @staticmethod
    def _field_mask(request: Any) -> FieldMask | None:
        if not request.HasField("field_mask") or not request.field_mask.paths:
            return None
        unknown = sorted(set(request.field_mask.paths) - FLOW_FIELDS)
        if unknown:
            raise FilterError("field_mask", "unknown Flow fields: " + ", ".join(unknown))
        mask = FieldMask()
        mask.CopyFrom(request.field_mask)
        return mask

    async def _follow(self, follower: Follower, grant: Grant, context: Context,
                      mask: FieldMask | None, until_ns: int) -> AsyncIterator[bytes]:
        last_write = 0.0
        while True:
            if until_ns and time.time_ns() > until_ns:
                return
            try:
                await self.access.recheck(grant, "flows:read")
            except AccessDenied as denied:
                await context.abort(denied.code, denied.message)
            chunks = []
            with contextlib.suppress(TimeoutError):
                chunks = await asyncio.wait_for(follower.next_chunks(), REAUTH_SECONDS)
            # Batches arriving within COALESCE_SECONDS leave in one message: a write per
            # follower per batch made the writes, not the events, the cost under load
            # (docs/benchmarks.md, observer). A queue half full is written at once.
            pause = last_write + COALESCE_SECONDS - time.monotonic()
            if chunks and pause > 0:
                await follower.gather_more(pause)
                chunks += follower.take_queued()
            lost = follower.take_lost()
            entries = [e for chunk in chunks for e in chunk.entries]
            if mask:
                entries = _masked(entries, mask)
            if lost:
                entries.insert(0, entry(lost_event(pb.LOST_EVENT_SOURCE_CONSUMER_QUEUE, lost)))
            for part in _chunks(entries):
                yield b"".join(part)
            if entries:
                last_write = time.monotonic()
            if follower.closed:
                return

    # -- WatchStats, GetNodes, ServerStatus ---------------------------------------------
    async def WatchStats(self, request: Any, context: Context) -> AsyncIterator[Any]:
        grant = await self._grant(context, "stats:read")
        interval = request.interval_ms or 1000
        if not 100 <= interval <= 3_600_000:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                "interval_ms: 100-3600000 (0 means 1000)")
        wanted_nodes, wanted_ifaces = set(request.node), set(request.interface)
        subject = grant.principal.subject
        if not self.take_slot(subject):
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, self.slots_message())
        try:
            while True:
                try:
                    await self.access.recheck(grant, "stats:read")
                except AccessDenied as denied:
                    await context.abort(denied.code, denied.message)
                yield self._stats(grant.nodes, wanted_nodes, wanted_ifaces)
                await asyncio.sleep(interval / 1000)
        finally:
            self.give_slot(subject)

    def _stats(self, visible: frozenset[str] | None, nodes: set[str],
               interfaces: set[str]) -> Any:
        summary = self.state.view(visible)  # computed once per change, shared
        out = pb.WatchStatsResponse()
        out.time.FromNanoseconds(time.time_ns())
        totals = {"packets": 0, "bytes": 0, "dropped": 0, "malformed": 0, "pps": 0.0, "bps": 0.0}
        loss: dict[str, int] = {}
        for item in summary["interfaces"]:
            if (nodes and item["node_id"] not in nodes) or (
                    interfaces and item["interface"] not in interfaces):
                continue
            stats = out.interfaces.add(
                node_id=item["node_id"], interface=item["interface"], mode=item["mode"],
                attach_mode=item["attach_mode"], packets=item["packets"], bytes=item["bytes"],
                passed=item["passed"], dropped=item["dropped"], malformed=item["malformed"],
                pps=item["pps"], bps=item["bps"], drops_per_second=item["drops_per_second"],
                counters=item["counters"], loss=item["loss"])
            for rule_id, hits in item["rule_hits"].items():
                stats.rule_hits.add(rule_id=int(rule_id), packets=hits["packets"],
                                    bytes=hits["bytes"])
            if item["updated_unix_ns"]:
                stats.updated.FromNanoseconds(item["updated_unix_ns"])
            for name in totals:
                totals[name] += item[name]
            for source, count in item["loss"].items():
                loss[source] = loss.get(source, 0) + count
        out.totals.CopyFrom(pb.StatsTotals(**totals, loss=loss))  # type: ignore[arg-type]
        return out

    async def GetNodes(self, request: Any, context: Context) -> Any:
        grant = await self._grant(context, "dataplane:read")
        out = pb.GetNodesResponse()
        for node_id, node in sorted(self.state.nodes.items()):
            if grant.nodes is not None and node_id not in grant.nodes:
                continue
            described = node.describe(self.state.node_interfaces(node_id))
            item = out.nodes.add(
                node_id=node_id, connected=node.connected, version=node.version, peer=node.peer,
                rules_generation_applied=node.rules_generation, rules_error=node.rules_error,
                loss=described["loss"])
            if node.connected_since:
                item.connected_since.FromNanoseconds(int(node.connected_since * 1e9))
            if node.last_seen:
                item.last_seen.FromNanoseconds(int(node.last_seen * 1e9))
            for iface in described["interfaces"]:
                item.interfaces.add(name=iface["name"], mode=iface["mode"],
                                    attach_mode=iface["attach_mode"],
                                    xsk_mode=iface["xsk_mode"])
        return out

    async def ServerStatus(self, request: Any, context: Context) -> Any:
        grant = await self._grant(context, "stats:read")
        visible = [n for node_id, n in self.state.nodes.items()
                   if grant.nodes is None or node_id in grant.nodes]
        ring = self.ring
        status = pb.ServerStatusResponse(
            ring_capacity=ring.capacity,
            oldest_cursor=ring.oldest if ring.held else 0, newest_cursor=ring.newest,
            nodes_known=len(visible), nodes_connected=sum(1 for n in visible if n.connected),
            uptime_seconds=round(time.monotonic() - self.started, 3), version=_version(),
        )
        if grant.nodes is None:  # the totals describe every node's traffic and consumers
            status.num_flows_seen = ring.flows_seen
            status.ring_fill = ring.held
            status.consumers = len(self.fanout.followers)
            status.consumer_events_lost = self.fanout.lost_total
        return status
