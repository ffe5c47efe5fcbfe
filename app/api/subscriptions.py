"""What a WebSocket `/stream` client may ask for: flow and stats subscriptions.

Client messages (JSON text, at most MAX_MESSAGE_BYTES, MAX_DEPTH levels):

    {"type": "subscribe", "id": "f1", "topic": "flows",
     "filter": {"allow": [{"destination_port": [53]}], "deny": [...], "number": 100,
                "after": 1796…, "since": "2026-12-07T10:00:00Z"}}
    {"type": "subscribe", "id": "s1", "topic": "stats", "interval_ms": 500, "node": ["edge-1"]}
    {"type": "unsubscribe", "id": "f1"}

`filter` takes the fields of `floe.observer.v1.GetFlowsRequest` in its JSON form (the filters,
`number`, `first`, `after`, `since`, `until`); the subscription always follows. Answers:
`{"type": "subscribed" | "unsubscribed", "id"}`, data as `{"type": "flows", "id", "events":
[…], "lost"?: N}` (events as `app/observer/jsonview.py` writes them; `lost` counts what this
subscription's queue dropped) and `{"type": "stats", "id", "ts", "data", "top_talkers"}`.
A bad message gets `{"type": "error", "id"?, "error": {"code", "message", "field"?}}` and
changes nothing else: other subscriptions go on, and the socket stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from google.protobuf import json_format
from quart.wrappers.base import ClientDisconnectedError

from app.api.jsonbody import json_depth_exceeds
from app.ingest import get_state
from app.observer import get_observer
from app.observer.fanout import Chunk, Follower
from app.observer.filters import FilterError, compile_selection
from app.observer.history import open_flows
from app.observer.jsonview import batch_json, event_json
from app.types import Principal
from floe.observer.v1 import observer_pb2 as pb

__all__ = ["MAX_DEPTH", "MAX_EVENTS", "MAX_MESSAGE_BYTES", "MAX_SUBSCRIPTIONS", "StreamSession"]

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 16_384
MAX_DEPTH = 16
MAX_SUBSCRIPTIONS = 8  # per connection
MAX_ID = 64
MAX_EVENTS = 1000  # flow events a message (~0.5 MB of JSON at most)
_FILTER_FIELDS = frozenset({"allow", "deny", "number", "first", "after", "since", "until"})

Send = Callable[[str], Awaitable[None]]


class BadMessage(ValueError):
    def __init__(self, code: str, message: str, field_name: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.field = field_name


def _parse(raw: str | bytes) -> dict[str, Any]:
    data = raw.encode() if isinstance(raw, str) else raw
    if len(data) > MAX_MESSAGE_BYTES:
        raise BadMessage("message_too_large", f"messages are at most {MAX_MESSAGE_BYTES} bytes")
    try:
        message = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise BadMessage("invalid_json", "the message is not valid JSON (UTF-8)") from None
    if isinstance(message, dict | list) and json_depth_exceeds(message, MAX_DEPTH):
        raise BadMessage("too_deep", f"JSON nests at most {MAX_DEPTH} levels")
    if not isinstance(message, dict):
        raise BadMessage("invalid_message", "a message is a JSON object")
    return message


@dataclass(slots=True)
class StreamSession:
    """One socket's subscriptions; `send` writes one text frame."""

    principal: Principal
    send: Send
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    async def handle(self, raw: str | bytes) -> None:
        """One client message: act on it, or answer why not."""
        ident: str | None = None
        try:
            message = _parse(raw)
            ident = message.get("id") if isinstance(message.get("id"), str) else None
            kind = message.get("type")
            if kind == "subscribe":
                await self._subscribe(message)
            elif kind == "unsubscribe":
                await self._unsubscribe(self._id(message))
            else:
                raise BadMessage("invalid_message", "type must be subscribe or unsubscribe",
                                 "type")
        except BadMessage as bad:
            error: dict[str, Any] = {"code": bad.code, "message": str(bad)}
            if bad.field:
                error["field"] = bad.field
            await self._reply({"type": "error", "id": ident, "error": error})

    async def _reply(self, payload: dict[str, Any]) -> None:
        await self.send(orjson.dumps(payload).decode())

    @staticmethod
    def _id(message: dict[str, Any]) -> str:
        ident = message.get("id")
        if not isinstance(ident, str) or not 0 < len(ident) <= MAX_ID or not ident.isprintable():
            raise BadMessage("invalid_id", f"id is 1-{MAX_ID} printable characters", "id")
        return ident

    async def _subscribe(self, message: dict[str, Any]) -> None:
        ident = self._id(message)
        if ident in self.tasks:
            raise BadMessage("duplicate_id", f"subscription {ident!r} exists; unsubscribe first",
                             "id")
        if len(self.tasks) >= MAX_SUBSCRIPTIONS:
            raise BadMessage("too_many_subscriptions",
                             f"at most {MAX_SUBSCRIPTIONS} subscriptions per connection")
        topic = message.get("topic")
        cleanup: Callable[[], None] | None = None
        if topic == "flows":
            run, cleanup = self._flows(ident, message)
        elif topic == "stats":
            run = self._stats(ident, message)
        else:
            raise BadMessage("invalid_topic", "topic must be flows or stats", "topic")
        try:
            await self._reply({"type": "subscribed", "id": ident, "topic": topic})
        except BaseException:
            run.close()  # never started: release what opening it took
            if cleanup is not None:
                cleanup()
            raise
        task = asyncio.create_task(self._guarded(ident, run), name=f"ws-subscription-{ident}")
        self.tasks[ident] = task

        def forget(done: asyncio.Task[None]) -> None:
            if self.tasks.get(ident) is done:
                del self.tasks[ident]
            if cleanup is not None:  # whether the task ran or was cancelled before it began
                cleanup()

        task.add_done_callback(forget)

    async def _guarded(self, ident: str, run: Any) -> None:
        """A subscription ends quietly with its socket; a failure is logged once and told to
        the client as an error of that subscription, never ending the others."""
        try:
            await run
        except ClientDisconnectedError:
            return
        except Exception:
            log.exception("WebSocket subscription %s failed", ident)
            with contextlib.suppress(Exception):
                await self._reply({"type": "error", "id": ident, "error": {
                    "code": "internal_error", "message": "the subscription failed; subscribe "
                    "again"}})

    async def _unsubscribe(self, ident: str) -> None:
        task = self.tasks.pop(ident, None)
        if task is None:
            raise BadMessage("unknown_id", f"no subscription {ident!r}", "id")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await self._reply({"type": "unsubscribed", "id": ident})

    def _nodes(self, scope: str) -> frozenset[str] | None:
        nodes = self.principal.nodes_for(scope)
        if nodes is not None and not nodes:
            raise BadMessage("insufficient_scope", f"the credential lacks the {scope} scope")
        return nodes

    # -- flows ---------------------------------------------------------------------------
    def _flows(self, ident: str, message: dict[str, Any]) -> tuple[Any, Callable[[], None]]:
        """Validate and open now (errors answer the subscribe): the coroutine that streams,
        and what gives back what opening took (the follower, the observer's stream slot)."""
        nodes = self._nodes("flows:read")
        raw = message.get("filter", {})
        if not isinstance(raw, dict):
            raise BadMessage("invalid_filter", "filter is a JSON object", "filter")
        unknown = sorted(set(raw) - _FILTER_FIELDS)
        if unknown:
            raise BadMessage("invalid_filter", "unknown filter fields: " + ", ".join(unknown),
                             "filter." + unknown[0])
        request = pb.GetFlowsRequest()
        try:
            json_format.ParseDict(raw, request)
        except json_format.ParseError as error:
            raise BadMessage("invalid_filter", str(error), "filter") from None
        request.follow = True
        observer = get_observer()
        subject = self.principal.subject
        try:
            selection = compile_selection(request, nodes)
        except FilterError as error:
            raise BadMessage("invalid_filter", str(error), "filter." + error.field) from None
        if not observer.take_slot(subject):
            raise BadMessage("too_many_streams", observer.slots_message())
        try:
            opening = open_flows(observer.ring, observer.fanout, request, selection,
                                 queue_size=observer.limits.queue_events, subject=subject)
        except FilterError as error:
            observer.give_slot(subject)
            raise BadMessage("invalid_filter", str(error), "filter." + error.field) from None
        follower = opening.follower
        assert follower is not None  # a subscription always follows

        def cleanup() -> None:
            observer.fanout.remove(follower)
            observer.give_slot(subject)

        run = self._stream_flows(ident, opening.gap, opening.history, follower,
                                 selection.until_ns)
        return run, cleanup

    async def _stream_flows(self, ident: str, gap: Any, history: list[Chunk],
                            follower: Follower, until_ns: int) -> None:
        """History, then live batches, until the subscription ends (or the clock passes
        `until`, when given)."""
        prefix = '{"type":"flows","id":' + orjson.dumps(ident).decode()
        if gap is not None:
            await self.send(prefix + ',"events":[' + orjson.dumps(event_json(gap)).decode()
                            + "]}")
        chunks = history
        while True:
            if chunks:
                await self._send_flows(prefix, chunks, follower.take_lost())
            left = (until_ns - time.time_ns()) / 1e9 if until_ns else None
            if left is not None and left <= 0:
                return
            chunks = []
            with contextlib.suppress(TimeoutError):
                chunks = await asyncio.wait_for(follower.next_chunks(), left)
            if follower.closed:
                return

    async def _send_flows(self, prefix: str, chunks: list[Chunk], lost: int) -> None:
        """At most MAX_EVENTS events a message (a resumed history can hold the whole ring: one
        message of it would be one long task in a browser, and past common clients' 1 MiB)."""
        parts: list[bytes] = []
        for chunk in chunks:
            json = batch_json(chunk.batch)
            parts.extend(json[i] for i in chunk.rows.tolist())
        for start in range(0, max(len(parts), 1), MAX_EVENTS):
            head = prefix + (f',"lost":{lost}' if lost and start == 0 else "")
            body = b",".join(parts[start:start + MAX_EVENTS]).decode()
            await self.send(head + ',"events":[' + body + "]}")

    # -- stats ---------------------------------------------------------------------------
    def _stats(self, ident: str, message: dict[str, Any]) -> Any:
        visible = self._nodes("stats:read")
        interval = message.get("interval_ms", 1000)
        if not isinstance(interval, int) or isinstance(interval, bool) or \
                not 100 <= interval <= 3_600_000:
            raise BadMessage("invalid_interval", "interval_ms is an integer, 100-3600000",
                             "interval_ms")
        wanted = message.get("node", [])
        if not isinstance(wanted, list) or len(wanted) > 256 or \
                not all(isinstance(n, str) and 0 < len(n) <= 128 for n in wanted):
            raise BadMessage("invalid_node", "node is a list of at most 256 node ids", "node")
        nodes = visible
        if wanted:
            nodes = frozenset(wanted) if visible is None else visible & frozenset(wanted)
        return self._stream_stats(ident, interval / 1000, nodes)

    async def _stream_stats(self, ident: str, seconds: float,
                            nodes: frozenset[str] | None) -> None:
        prefix = '{"type":"stats","id":' + orjson.dumps(ident).decode() + ","
        while True:
            view = dict(get_state().view(nodes))  # computed once per change, shared
            talkers = view.pop("top_talkers")
            body = orjson.dumps({"ts": time.time(), "data": view,
                                 "top_talkers": talkers}).decode()
            await self.send(prefix + body[1:])
            await asyncio.sleep(seconds)

    async def close(self) -> None:
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.tasks.clear()
