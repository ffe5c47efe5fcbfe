"""WebSocket text frames written straight to hypercorn's stream, for the hub's broadcasts.

A message sent through Quart and ASGI costs, per subscriber: Quart's send (a dict, a signal),
hypercorn's `WSStream.app_send` (the ASGI state machine) and wsproto's framing (a frame
protocol object per message) before the bytes reach the connection's writer. For a
heartbeat to 1,000 subscribers that path, not the socket write, was most of the server's
time (py-spy, `docs/benchmarks.md`). A server-to-client frame is unmasked, and Floe declines
permessage-deflate (`app/serving/websocket.py`), so a text frame is a 2-10 byte header and
the UTF-8 payload: `FrameSender` builds it and hands it to the stream's own `send` as a
`Data` event — the same event hypercorn sends after wsproto's framing, so the connection's
write lock, flow control (HTTP/2, HTTP/3) and drain still apply.

`attach()` is called by the admission middleware for each WebSocket scope; it puts a
`FrameSender` at `scope[WS_FRAMES]` when the ASGI `send` is hypercorn's `WSStream.app_send`
(other servers, and Quart's test client, get none and the stream keeps Quart's send). The
middleware removes it when the app returns: the stream holds the scope, so the entry would
otherwise leave a reference cycle that only a full collection frees
(tests/integration/serving/test_stream_limits.py measures the RSS).
tests/integration/serving/test_ws_frames.py checks against the real server that it is
attached, and that what it sends arrives intact over HTTP/1.1 and h2.
"""

from __future__ import annotations

import struct
from typing import Any

from hypercorn.protocol.events import Data
from hypercorn.protocol.ws_stream import ASGIWebsocketState, WSStream
from quart.wrappers.base import ClientDisconnectedError
from wsproto.connection import ConnectionState

from app.types import WS_FRAMES

__all__ = ["FrameSender", "attach", "text_frame"]

_FIN_TEXT = 0x81  # FIN + opcode 1 (text); RSV bits clear: not compressed
_SHORT = struct.Struct("!BB")
_MEDIUM = struct.Struct("!BBH")
_LONG = struct.Struct("!BBQ")


def text_frame(payload: bytes) -> bytes:
    """One unfragmented, unmasked text frame (RFC 6455 §5.2) carrying `payload` (UTF-8)."""
    size = len(payload)
    if size < 126:
        return _SHORT.pack(_FIN_TEXT, size) + payload
    if size < 65536:
        return _MEDIUM.pack(_FIN_TEXT, 126, size) + payload
    return _LONG.pack(_FIN_TEXT, 127, size) + payload


class FrameSender:
    """Sends text messages on one accepted WebSocket as pre-built frames."""

    __slots__ = ("_stream",)

    def __init__(self, stream: WSStream) -> None:
        self._stream = stream

    async def send_text(self, text: str) -> None:
        """Send `text` as one frame; ClientDisconnectedError once the socket is closed."""
        stream = self._stream
        # wsproto's state too: after a Close frame (hypercorn's 1009 for a message too big,
        # or while it answers the client's Close) no data frame may follow (RFC 6455 §5.5.1)
        if (stream.closed or stream.state != ASGIWebsocketState.CONNECTED
                or stream.connection.state is not ConnectionState.OPEN):
            raise ClientDisconnectedError()
        try:
            await stream.send(Data(stream_id=stream.stream_id, data=text_frame(text.encode())))
        except OSError:
            raise ClientDisconnectedError() from None


def attach(scope: dict[str, Any], send: Any) -> None:
    """Give a WebSocket scope served by hypercorn its `FrameSender` (see the module text)."""
    stream = getattr(send, "__self__", None)
    if type(stream) is WSStream and getattr(send, "__func__", None) is WSStream.app_send:
        scope[WS_FRAMES] = FrameSender(stream)
