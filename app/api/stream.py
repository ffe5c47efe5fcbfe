"""WebSocket `/stream`: live messages from the hub (heartbeats now, telemetry later).

The socket is accepted explicitly (Quart accepts lazily otherwise), subscribes to the
hub with a bounded queue of WS_QUEUE_SIZE, and forwards each message's pre-serialised
text. A client that reads too slowly loses its oldest messages; the count travels in
every heartbeat's `"dropped"`. Server shutdown closes the socket with 1001.
"""

from __future__ import annotations

import asyncio
import contextlib

from quart import Blueprint, websocket
from quart.wrappers.base import ClientDisconnectedError

from app.api.access import require_scope, visible_nodes
from app.hub import HEARTBEAT_TOPIC, Hub, Subscription
from app.ingest import stats_topic
from app.runtime import get_runtime

__all__ = ["bp"]

bp = Blueprint("stream", __name__)


@bp.websocket("/stream")
@require_scope("stats:read", per_node=True)
async def stream() -> None:
    """Heartbeats, and each second `{"type": "stats", ...}` of the nodes the caller may see
    (all of them with a global stats:read; else those its node grants name)."""
    hub: Hub = get_runtime().components["hub"]
    topics = (HEARTBEAT_TOPIC, stats_topic(await visible_nodes("stats:read")))
    await websocket.accept()
    subscription = hub.subscribe(topics)
    reader = asyncio.create_task(_drain_client(subscription))
    try:
        while (text := await subscription.next_text()) is not None:
            await websocket.send(text)
        if not reader.done():  # server side close (shutdown: 1001)
            await websocket.close(subscription.close_code or 1000)
    except ClientDisconnectedError:
        pass
    finally:
        subscription.close()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


async def _drain_client(subscription: Subscription) -> None:
    """Read (and ignore) client frames; a disconnect ends the subscription."""
    try:
        while True:
            await websocket.receive()
    except ClientDisconnectedError:
        subscription.close(1000)
