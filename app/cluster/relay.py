"""Shared live state: every instance applies every instance's dataplane input (ADR 0008).

The instance that holds a dataplane's stream accepts each batch as usual (authentication,
bounds, seq de-dup, applied to its own state) and then appends the batch's bytes to one
bounded Redis stream, with the stream's Hello, its end, and the dataplane's rule-set
acknowledgements. Every other instance reads the stream from where it left off and applies
the same input through the same `UplinkService` path, so all instances converge: counters
are cumulative snapshots kept as maxima (a missed batch is healed by the next), flow records
are upserts (only these can be lost, and are counted).

Nothing is lost silently:
- the publisher's queue is bounded in bytes; past it the oldest entry is dropped, and so is
  an entry over FLOE_RELAY_MAX_ENTRY_BYTES or one Redis refused (`unpublished`, by reason);
- each entry carries its origin's entry number and cumulative flow-record count, so a
  reader counts every entry (and flow record) it never got: trimmed by MAXLEN before it read
  them, lost in a Redis restart or flush, or never published (`lost`);
- a Redis restart (new run id) or a stream whose ids went backwards is counted (`resets`) and
  the reader starts over from the new stream's beginning (entries it already has are
  recognised by their numbers and skipped).

Every instance also announces its live streams and its rule-set generation each
FLOE_RELAY_HEARTBEAT_SECONDS: an instance that starts later learns the nodes, a node whose
instance went silent for FLOE_RELAY_NODE_TTL_SECONDS shows disconnected, and a rule set
committed elsewhere is loaded from the database even if its notification was lost.

Runs on the event loop; every Redis call is awaited (redis.asyncio), nothing blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from google.protobuf.message import DecodeError
from redis.exceptions import RedisError

from app.cluster.wire import Entry, WireError, decode, encode, entry_size
from app.ingest.rule_store import RuleStore
from app.ingest.service import Session, UplinkService
from app.nodeid import valid_node_id
from app.tasks import cancel_and_wait
from floe.dataplane.v1 import uplink_pb2 as pb

__all__ = ["Relay", "RelayLimits", "RelayStats"]

log = logging.getLogger(__name__)

_RETRY_MAX = 2.0  # s between attempts at most: resume soon once Redis is back
_READ_COUNT = 16  # entries per XREAD: at most 16 x FLOE_RELAY_MAX_ENTRY_BYTES held at once
_BLOCK_MS = 1000
_PIPELINE_BYTES = 8 << 20  # entries sent per round trip, at most
_MAX_ORIGINS = 256  # instances remembered for gap counting (oldest forgotten first)
_ALIVE_CHUNK = 1 << 20  # bytes of node announcements per heartbeat entry
_LAGS = 1024  # recent entry ages kept for the freshness figures


@dataclass(slots=True, frozen=True)
class RelayLimits:
    """The bounds and cadences of docs/configuration.md (FLOE_RELAY_*)."""

    stream_maxlen: int = 10_000
    max_entry_bytes: int = 4 << 20
    queue_bytes: int = 64 << 20
    heartbeat_seconds: float = 1.0
    node_ttl_seconds: float = 5.0


@dataclass(slots=True)
class RelayStats:
    """What the relay did and lost, shown in /stats/summary and /metrics."""

    published: int = 0
    unpublished: dict[str, int] = field(
        default_factory=lambda: {"queue_full": 0, "oversize": 0, "redis_error": 0})
    unpublished_batches: int = 0  # of those entries, dataplane batches
    unpublished_flow_records: int = 0  # and the flow records they carried
    received: int = 0  # entries of other instances read
    applied: int = 0  # of those, batches this instance applied (not duplicates)
    lost_entries: int = 0  # entries of other instances this one never got
    lost_flow_records: int = 0
    malformed: int = 0
    oversize: int = 0
    resets: dict[str, int] = field(
        default_factory=lambda: {"redis_restart": 0, "stream_reset": 0})
    lags_ms: deque[float] = field(default_factory=lambda: deque(maxlen=_LAGS))


def _id_tuple(entry_id: bytes | str) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class Relay:
    """Publisher, reader and heartbeat of one instance; the `UplinkRelay` of its ingest."""

    def __init__(self, url: str, stream: str, service: UplinkService,
                 rules: Callable[[], RuleStore | None], limits: RelayLimits) -> None:
        self._url = url
        self.stream = stream
        self._service = service
        self._rules = rules
        self.limits = limits
        # This control-plane process, as /nodes names it (control_plane): host + random.
        host = "".join(c for c in socket.gethostname() if c.isalnum() or c in ".-")[:40]
        self.instance = f"{host or 'floe'}-{secrets.token_hex(4)}"
        self.stats = RelayStats()
        self.connected = False  # the reader's view of Redis
        self._redis: aioredis.Redis | None = None
        self._seq = 0
        self._flows = 0
        self._queue: deque[tuple[dict[bytes, bytes], int]] = deque()
        self._queued_bytes = 0
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()  # the queue is empty and nothing is being sent
        self._last_id = "0-0"
        self._run_id: str | None = None
        self._origins: OrderedDict[str, tuple[int, int]] = OrderedDict()  # -> (seq, flows)
        self._peers: dict[str, float] = {}  # other instance -> monotonic time last heard
        self._remote: dict[str, tuple[str, float]] = {}  # node -> (instance, last heard)
        self._rules_wanted = 0
        self._rules_task: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        # Told (flow records, origin) for each gap that lost flow records: the observer turns
        # it into a LostEvent for the streams following flows here.
        self.on_lost: Callable[[int, str], None] | None = None
        # Seconds the stream outlives its last write (heartbeats renew it every second).
        self._expiry = max(60, int(10 * limits.node_ttl_seconds))

    # -- UplinkRelay: this instance's own streams -----------------------------------------
    def opened(self, session: Session) -> None:
        self._enqueue("open", node=session.node_id, instance=session.instance_id,
                      data=session.hello.SerializeToString(),
                      meta={"p": session.peer, "u": session.principal, "t": session.since})

    def closed(self, session: Session) -> None:
        self._enqueue("close", node=session.node_id, instance=session.instance_id)

    def batch(self, node_id: str, instance_id: str, batch: Any, raw: bytes) -> None:
        """`raw`: the UplinkMessage as the dataplane sent it, forwarded without re-encoding."""
        data = raw or pb.UplinkMessage(batch=batch).SerializeToString()
        self._enqueue("batch", node=node_id, instance=instance_id, data=data,
                      flows=len(batch.flows))

    def applied(self, node_id: str, applied: Any) -> None:
        self._enqueue("applied", node=node_id, data=applied.SerializeToString())

    def rules_replaced(self, generation: int) -> None:
        self._enqueue("rules", meta={"g": generation})

    # -- publishing ------------------------------------------------------------------------
    def _enqueue(self, kind: str, *, node: str = "", instance: str = "", data: bytes = b"",
                 meta: dict[str, Any] | None = None, flows: int = 0) -> None:
        """Number the entry and queue it; a drop from here on leaves a gap readers count."""
        self._seq += 1
        self._flows += flows
        fields = encode(Entry(origin=self.instance, seq=self._seq, flows=self._flows,
                              kind=kind, node=node, instance=instance, data=data,
                              meta=meta or {}, flow_count=flows))
        size = entry_size(fields)
        if size > self.limits.max_entry_bytes:
            self._unpublished(fields, "oversize")
            return
        self._queue.append((fields, size))
        self._drained.clear()
        self._queued_bytes += size
        while self._queued_bytes > self.limits.queue_bytes:  # the oldest go first
            dropped, dropped_size = self._queue.popleft()
            self._queued_bytes -= dropped_size
            self._unpublished(dropped, "queue_full")
        self._wake.set()

    def _unpublished(self, fields: dict[bytes, bytes], reason: str) -> None:
        stats = self.stats
        stats.unpublished[reason] += 1
        if fields.get(b"k") == b"batch":
            stats.unpublished_batches += 1
            stats.unpublished_flow_records += int(fields.get(b"c", b"0"))

    def _take(self) -> list[dict[bytes, bytes]]:
        out: list[dict[bytes, bytes]] = []
        taken = 0
        while self._queue and (not out or taken < _PIPELINE_BYTES):
            fields, size = self._queue.popleft()
            self._queued_bytes -= size
            taken += size
            out.append(fields)
        return out

    async def _publisher(self) -> None:
        delay = 0.2
        while True:
            if not self._queue:
                self._drained.set()
                self._wake.clear()
                await self._wake.wait()
            entries = self._take()
            try:
                assert self._redis is not None
                async with self._redis.pipeline(transaction=False) as pipe:
                    for fields in entries:
                        pipe.xadd(self.stream, fields,  # type: ignore[arg-type]
                                  maxlen=self.limits.stream_maxlen, approximate=True)
                    # A deployment whose instances are all gone leaves no stream behind.
                    pipe.expire(self.stream, self._expiry)
                    await pipe.execute()
                self.stats.published += len(entries)
                delay = 0.2
            except (RedisError, OSError) as error:
                # Counted: readers see the gap; counters heal with the next batch that gets
                # through, flow records of these entries are lost.
                for fields in entries:
                    self._unpublished(fields, "redis_error")
                log.warning("relay: %d entries not published (%s); retrying in %.1f s",
                            len(entries), error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX)

    # -- reading ---------------------------------------------------------------------------
    async def _sync(self) -> None:
        """Where to read from after (re)connecting: a new Redis (another run id) means the
        stream is new — read it from the start; a first start reads from the end."""
        assert self._redis is not None
        info = await self._redis.info("server")
        run_id = str(info.get("run_id", ""))
        if self._run_id is None:
            self._last_id = await self._stream_end()
        elif run_id != self._run_id:
            self.stats.resets["redis_restart"] += 1
            log.warning("relay: Redis restarted (run id changed); reading its new stream "
                        "from the start, gaps are counted")
            self._last_id = "0-0"
        else:
            await self._check_reset()
        self._run_id = run_id

    async def _stream_end(self) -> str:
        assert self._redis is not None
        last: Any = await self._redis.xrevrange(self.stream, count=1)
        return str(last[0][0].decode()) if last else "0-0"

    async def _check_reset(self) -> None:
        """A stream whose newest id is below the last one read was replaced (deleted,
        flushed, a clock set back): read the new one from the start."""
        if self._last_id == "0-0":
            return
        end = await self._stream_end()
        if _id_tuple(end) < _id_tuple(self._last_id):
            self.stats.resets["stream_reset"] += 1
            log.warning("relay: the stream was replaced; reading it from the start")
            self._last_id = "0-0"

    async def _reader(self) -> None:
        delay = 0.2
        while True:
            try:
                assert self._redis is not None
                await self._sync()
                self.connected = True
                delay = 0.2
                while True:
                    response: Any = await self._redis.xread({self.stream: self._last_id},
                                                       count=_READ_COUNT, block=_BLOCK_MS)
                    if not response:
                        await self._check_reset()
                        continue
                    for _, entries in response:
                        for entry_id, fields in entries:
                            self._last_id = entry_id.decode()
                            await self._receive(entry_id, fields)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as error:
                self.connected = False
                log.warning("relay: reading the stream failed (%s); retrying in %.1f s",
                            error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX)

    async def _receive(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        if entry_size(fields) > self.limits.max_entry_bytes:
            self.stats.oversize += 1
            return
        try:
            entry = decode(fields)
        except WireError as error:
            self.stats.malformed += 1
            log.debug("relay: malformed entry %s: %s", entry_id, error)
            return
        if entry.origin == self.instance or not self._new(entry):
            return
        self.stats.received += 1
        self.stats.lags_ms.append(max(0.0, time.time() * 1000 - _id_tuple(entry_id)[0]))
        self._peers[entry.origin] = time.monotonic()
        if len(self._peers) > _MAX_ORIGINS:  # forget the longest silent
            del self._peers[min(self._peers, key=self._peers.__getitem__)]
        try:
            await self._dispatch(entry)
        except (DecodeError, ValueError, TypeError, KeyError) as error:
            self.stats.malformed += 1
            log.debug("relay: unusable entry %s: %s", entry_id, error)

    def _new(self, entry: Entry) -> bool:
        """Count the gap before `entry` in its origin's numbering; False for one already
        seen (read again after a reset)."""
        known = self._origins.get(entry.origin)
        if known is not None:
            seq, flows = known
            if entry.seq <= seq:
                return False
            if entry.seq > seq + 1:
                lost_flows = max(0, entry.flows - entry.flow_count - flows)
                self.stats.lost_entries += entry.seq - seq - 1
                self.stats.lost_flow_records += lost_flows
                self._service.state.changed()
                if lost_flows and self.on_lost is not None:
                    self.on_lost(lost_flows, entry.origin)
        self._origins[entry.origin] = (entry.seq, entry.flows)
        self._origins.move_to_end(entry.origin)
        while len(self._origins) > _MAX_ORIGINS:
            self._origins.popitem(last=False)
        return True

    async def _dispatch(self, entry: Entry) -> None:
        service = self._service
        kind = entry.kind
        if kind == "batch":
            message = pb.UplinkMessage.FromString(entry.data)
            if message.WhichOneof("body") != "batch":
                raise ValueError("a batch entry without a batch")
            batch = message.batch
            if await service.apply_relayed(entry.node, entry.instance, batch):
                self.stats.applied += 1
            self._heard(entry.node, entry.origin)
        elif kind == "open":
            self._announce(entry.origin, entry.data, entry.meta)
        elif kind == "close":
            service.relayed_close(entry.node, entry.origin)
            self._remote.pop(entry.node, None)
        elif kind == "applied":
            node = service.state.nodes.get(entry.node)
            if node is not None and node.control_plane == entry.origin:  # not a stale one
                service.record_applied(entry.node, pb.Applied.FromString(entry.data))
        elif kind == "alive":
            for item in entry.meta.get("nodes", []):
                self._announce(entry.origin, bytes.fromhex(item["h"]), item)
                node = service.state.nodes.get(item["n"])
                if node is not None and node.control_plane == entry.origin:
                    node.rules_generation = int(item.get("rg", node.rules_generation))
                    node.rules_error = str(item.get("re", ""))[:1024]
                    node.config_generation = int(item.get("cg", node.config_generation))
            self._want_rules(int(entry.meta.get("rg", 0)))
        elif kind == "rules":
            self._want_rules(int(entry.meta.get("g", 0)))

    def _announce(self, origin: str, hello_bytes: bytes, meta: dict[str, Any]) -> None:
        hello = pb.Hello.FromString(hello_bytes)
        if not valid_node_id(hello.node_id):
            raise ValueError("no valid node id in the Hello")
        if self._service.relayed_open(hello, str(meta.get("u", "")), str(meta.get("p", "")),
                                      float(meta.get("t", 0.0)), origin):
            self._heard(hello.node_id, origin)

    def _heard(self, node_id: str, origin: str) -> None:
        """`origin` spoke for the node; tracked only while it holds the node's stream (so
        bounded by INGEST_MAX_NODES, and a stale instance cannot keep a node alive)."""
        node = self._service.state.nodes.get(node_id)
        if node is not None and node.control_plane == origin:
            self._remote[node_id] = (origin, time.monotonic())

    # -- rules -----------------------------------------------------------------------------
    def _want_rules(self, generation: int) -> None:
        """Another instance has rule-set `generation`: load it from the database (once)."""
        store = self._rules()
        if store is None or generation <= max(store.current().generation, self._rules_wanted):
            return
        self._rules_wanted = generation
        if self._rules_task is None or self._rules_task.done():
            self._rules_task = asyncio.create_task(self._load_rules(store), name="relay-rules")

    async def _load_rules(self, store: RuleStore) -> None:
        try:
            while store.current().generation < self._rules_wanted:
                if not await store.refresh(self._rules_wanted):
                    break  # not in the database (yet): the next heartbeat asks again
        except Exception:
            log.exception("relay: loading the rule set committed elsewhere failed")
        finally:
            self._rules_wanted = 0

    # -- heartbeat and liveness ------------------------------------------------------------
    def _alive(self) -> None:
        """Announce this instance's streams (with their Hellos, for instances that started
        later) and its rule generation, in entries of at most ~1 MiB."""
        store = self._rules()
        generation = store.current().generation if store is not None else 0
        chunk: list[dict[str, Any]] = []
        size = 0
        for session in list(self._service.sessions.values()):
            node = self._service.state.nodes.get(session.node_id)
            if node is None or session.hello is None:
                continue
            item = {"n": session.node_id, "h": session.hello.SerializeToString().hex(),
                    "p": session.peer, "u": session.principal, "t": session.since,
                    "rg": node.rules_generation, "re": node.rules_error,
                    "cg": node.config_generation}
            chunk.append(item)
            size += len(item["h"]) + 256
            if size >= _ALIVE_CHUNK:
                self._enqueue("alive", meta={"rg": generation, "nodes": chunk})
                chunk, size = [], 0
        self._enqueue("alive", meta={"rg": generation, "nodes": chunk})

    def _expire(self) -> None:
        """Nodes whose instance went silent show disconnected; silent peers are forgotten."""
        now = time.monotonic()
        ttl = self.limits.node_ttl_seconds
        for node_id, (origin, heard) in list(self._remote.items()):
            if now - heard > ttl:
                del self._remote[node_id]
                self._service.relayed_close(node_id, origin)
        for origin, heard in list(self._peers.items()):
            if now - heard > ttl:
                del self._peers[origin]

    async def _heartbeat(self) -> None:
        while True:
            try:
                self._alive()
                self._expire()
            except Exception:  # a failing listener must not stop the heartbeat
                log.exception("relay: heartbeat failed")
            await asyncio.sleep(self.limits.heartbeat_seconds)

    # -- figures ---------------------------------------------------------------------------
    @property
    def peer_count(self) -> int:
        return len(self._peers)

    @property
    def queued_count(self) -> int:
        return len(self._queue)

    def status(self) -> dict[str, Any]:
        stats = self.stats
        lags = list(stats.lags_ms)
        return {
            "instance": self.instance,
            "redis": "connected" if self.connected else "unreachable",
            "peers": len(self._peers),
            "stream_maxlen": self.limits.stream_maxlen,
            "published": stats.published,
            "unpublished": dict(stats.unpublished),  # entries, by reason
            "unpublished_batches": stats.unpublished_batches,
            "unpublished_flow_records": stats.unpublished_flow_records,
            "queued": len(self._queue),
            "received": stats.received,
            "batches_applied": stats.applied,
            "lost": {"entries": stats.lost_entries, "flow_records": stats.lost_flow_records},
            "malformed": stats.malformed,
            "oversize": stats.oversize,
            "resets": dict(stats.resets),
            "lag_ms": {"p50": round(_percentile(lags, 0.5), 1),
                       "p99": round(_percentile(lags, 0.99), 1)} if lags else None,
        }

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._redis = aioredis.from_url(self._url, socket_connect_timeout=2.0,
                                        socket_timeout=_BLOCK_MS / 1000 + 4.0)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._reader(), name="relay-reader"),
                       loop.create_task(self._publisher(), name="relay-publisher"),
                       loop.create_task(self._heartbeat(), name="relay-heartbeat")]

    async def stop(self) -> None:
        """Announce this instance's streams as ended, let the queue go for at most 1 s."""
        for session in list(self._service.sessions.values()):
            self.closed(session)
        if self._queue and self._tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), 1.0)
        await cancel_and_wait([*self._tasks, self._rules_task])
        self._tasks = []
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

