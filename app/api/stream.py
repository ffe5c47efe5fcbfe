"""WebSocket `/stream`: live messages from the hub, and the subscriptions a client asks for.

Without asking, a client gets heartbeats and each second's stats; client messages subscribe
to flows (the observer's events, filtered) and to stats at an interval of its own
(`app/api/subscriptions.py`).

The stream subscribes to the hub with a bounded queue of WS_QUEUE_SIZE before the socket is
accepted (Quart accepts lazily otherwise), and forwards each message's pre-serialised
text. A client that reads too slowly loses its oldest messages; the count travels in
every heartbeat's `"dropped"`. Server shutdown closes the socket with 1001.

Open streams are bounded: WS_MAX_CONNECTIONS in all and WS_MAX_PER_PRINCIPAL per caller.
Past either, the handshake is refused before it is accepted — 503 (all slots taken) or
429 (this caller's), with `Retry-After` and the error envelope — and counted in
`floe_ws_refused_total{bound}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import cast

from quart import Blueprint, g, websocket
from quart.wrappers.base import ClientDisconnectedError

from app.api.access import current_principal, require_principal, require_scope, visible_nodes
from app.api.envelope import ApiError
from app.api.subscriptions import StreamSession
from app.hub import HEARTBEAT_TOPIC, Hub, HubFull, Subscription
from app.identity.policy import REAUTH_SECONDS  # a revoked credential ends the stream (1008)
from app.ingest import stats_topic
from app.runtime import get_runtime
from app.types import WS_FRAMES, Principal, TextSender

__all__ = ["bp"]

bp = Blueprint("stream", __name__)
log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5  # suggested to a client refused at a connection bound


def _refused(full: HubFull) -> ApiError:
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if full.bound == "owner":
        return ApiError(429, "too_many_streams", f"This credential already has {full.limit} "
                        "live streams open (WS_MAX_PER_PRINCIPAL); close one or retry later",
                        headers=headers)
    return ApiError(503, "streams_full", f"The server holds its maximum of {full.limit} live "
                    "streams (WS_MAX_CONNECTIONS); retry later", headers=headers)


@bp.websocket("/stream")
@require_scope("stats:read", "flows:read", per_node=True)
async def stream() -> None:
    """Heartbeats, and each second `{"type": "stats", ...}` of the nodes the caller may see
    (all of them with a global stats:read; else those its node grants name)."""
    hub: Hub = get_runtime().components["hub"]
    principal = await require_principal()
    nodes = await visible_nodes("stats:read")
    try:
        subscription = hub.subscribe((HEARTBEAT_TOPIC, stats_topic(nodes)),
                                     owner=principal.subject)
    except HubFull as full:
        raise _refused(full) from None
    reader: asyncio.Task[None] | None = None
    watcher: asyncio.Task[None] | None = None
    session = StreamSession(principal, websocket.send)
    try:
        await websocket.accept()
        send = socket_send()
        reader = asyncio.create_task(_read_client(subscription, session))
        watcher = asyncio.create_task(_watch_access(subscription, _access(principal)))
        while (text := await subscription.next_text()) is not None:
            await send(text)
        if not reader.done():  # server side close (shutdown: 1001)
            await websocket.close(subscription.close_code or 1000)
    except ClientDisconnectedError:
        pass
    finally:
        subscription.close()
        await session.close()
        for task in (reader, watcher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


def socket_send() -> Callable[[str], Awaitable[None]]:
    """The cheapest send the transport offers, for the hub's messages.

    Under hypercorn the transport puts a frame sender in the scope (`WS_FRAMES`,
    app/serving/wsframes.py): each message goes to the connection as one pre-built frame, past
    Quart, the ASGI state machine and wsproto's per-message framing (server CPU per heartbeat
    in `docs/benchmarks.md`). Elsewhere (Quart's test client) Quart's own send.
    tests/integration/serving/test_ws_frames.py checks that Floe's stack attaches the sender.
    """
    frames = cast("TextSender | None", websocket.scope.get(WS_FRAMES))
    return frames.send_text if frames is not None else websocket.send


async def _read_client(subscription: Subscription, session: StreamSession) -> None:
    """Client messages, one at a time (subscribe / unsubscribe); a disconnect ends it all."""
    try:
        while True:
            await session.handle(await websocket.receive())
    except ClientDisconnectedError:
        subscription.close(1000)


Access = tuple[frozenset[str] | None, frozenset[str] | None]


def _access(principal: Principal) -> Access:
    """What the stream shows depends on: the nodes stats:read covers (the stats messages) and
    those flows:read covers (flow subscriptions)."""
    return principal.nodes_for("stats:read"), principal.nodes_for("flows:read")


async def _watch_access(subscription: Subscription, access: Access) -> None:
    """Authenticate again every REAUTH_SECONDS (a cache hit, normally): a credential that no
    longer works, or whose stats:read or flows:read now covers other nodes, ends the stream
    (and its subscriptions) with 1008."""
    while True:
        await asyncio.sleep(REAUTH_SECONDS)
        g.pop("principal", None)
        try:
            principal = await current_principal()
        except ApiError as error:
            if error.status >= 500:  # the database is needed and unavailable: ask again
                continue
            principal = None  # 401: revoked, expired or otherwise invalid
        except Exception:  # never let the watcher die and the stream go unchecked
            log.exception("re-authenticating a live stream failed; asking again")
            continue
        if principal is None or _access(principal) != access:
            subscription.close(1008)
            return
