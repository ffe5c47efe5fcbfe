"""hypercorn's WebSocket handshake without permessage-deflate.

hypercorn offers every WebSocket client permessage-deflate (RFC 7692), and browsers and the
`websockets` client always ask for it. wsproto then keeps one zlib compressor per connection
(window 2^15, memLevel 8: ~256 KiB) and compresses every message once per subscriber —
measured here: 76.8 MiB of zlib state for 300 `/api/v2/stream` clients, left behind in the
heap after they closed (RSS +71 MiB per 500 connections, rising round after round), and the
hub's one-serialisation-per-tick undone by one compression per client. The stream sends
small JSON messages each second; Floe declines the extension (the RFC lets a server decline),
so a connection costs what its queue and tasks cost.

`install()` makes hypercorn's `WSStream` build `NoDeflate` instead (it looks the name up in
`hypercorn.protocol.ws_stream` per handshake); it is called by `app.serving.run` only.
"""

from __future__ import annotations

import hypercorn.protocol.ws_stream as ws_stream
from wsproto.extensions import PerMessageDeflate

__all__ = ["NoDeflate", "install"]


class NoDeflate(PerMessageDeflate):
    """permessage-deflate that is never agreed: the answer carries no extension header."""

    def accept(self, offer: str) -> None:  # type: ignore[override]
        return None


def install() -> None:
    """Make hypercorn decline permessage-deflate on every WebSocket handshake."""
    ws_stream.PerMessageDeflate = NoDeflate  # type: ignore[misc,attr-defined]
