"""hypercorn's HTTP/1.1 protocol with stricter framing and error answers in the envelope.

* A request with both `Content-Length` and `Transfer-Encoding` is how requests are smuggled
  past a front end that frames by the other header. h11 frames it by Transfer-Encoding and
  carries on, keeping the connection open. RFC 9112 §6.3 lets a server reject it and says it
  MUST close the connection after responding: `StrictH11Connection` turns it into the same
  protocol error h11 raises for other bad framing, so hypercorn answers 400 and closes.
* hypercorn answers protocol errors (bad request line, bad headers, unsupported
  Transfer-Encoding, oversized head) with an empty body; `FloeH11Protocol` sends the error
  envelope instead, with `Connection: close` as before, the security headers, and counts it
  (`floe_http1_protocol_errors_total`).

`install()` makes hypercorn's protocol wrapper construct `FloeH11Protocol` (it looks the
name up in `hypercorn.protocol` per connection); it is called by `app.serving.run` only.
"""

from __future__ import annotations

from typing import Any

import h11
import hypercorn.protocol as hypercorn_protocol
import orjson
from hypercorn.protocol.h11 import H11Protocol

from app.api.envelope import error_body
from app.logging import correlation_id, new_correlation_id
from app.serving.headers import SecurityHeaders
from app.serving.metrics import ServingCounters

__all__ = ["FloeH11Protocol", "StrictH11Connection", "install"]

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "Malformed HTTP/1.1 request; the connection is closed"),
    431: ("request_header_fields_too_large", "Request head too large; the connection is closed"),
    501: ("not_implemented", "Only Transfer-Encoding: chunked is supported"),
}


class StrictH11Connection(h11.Connection):
    """An h11 server connection that refuses Content-Length together with Transfer-Encoding."""

    def next_event(self) -> Any:
        event = super().next_event()
        if type(event) is h11.Request:
            framing = 0
            for name, _ in event.headers:  # h11 lower-cases names
                if name == b"content-length":
                    framing |= 1
                elif name == b"transfer-encoding":
                    framing |= 2
            if framing == 3:
                raise h11.RemoteProtocolError(
                    "Content-Length together with Transfer-Encoding", error_status_hint=400
                )
        return event


class FloeH11Protocol(H11Protocol):
    """`H11Protocol` over `StrictH11Connection`, answering protocol errors in the envelope."""

    security: SecurityHeaders | None = None  # set by install()
    counters: ServingCounters | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connection = StrictH11Connection(
            h11.SERVER, max_incomplete_event_size=self.config.h11_max_incomplete_size
        )

    async def _send_error_response(self, status_code: int) -> None:
        if self.counters is not None:
            self.counters.http1_protocol_errors += 1
        code, message = _ERRORS.get(status_code, ("bad_request", _ERRORS[400][1]))
        request_id = new_correlation_id()
        token = correlation_id.set(request_id)  # error_body puts it in meta.request_id
        try:
            body = orjson.dumps(error_body(code, message))
        finally:
            correlation_id.reset(token)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            (b"x-request-id", request_id.encode()),
            # a JSON error envelope, whatever the (unparsed) path: the API's headers
            *(self.security.for_request("/api/", self.ssl) if self.security is not None
              else ()),
            *self.config.response_headers("h11"),
        ]
        await self._send_h11_event(h11.Response(status_code=status_code, headers=headers))
        await self._send_h11_event(h11.Data(data=body))
        await self._send_h11_event(h11.EndOfMessage())


def install(security: SecurityHeaders, counters: ServingCounters) -> None:
    """Make hypercorn construct `FloeH11Protocol` for every HTTP/1.1 connection."""
    FloeH11Protocol.security = security
    FloeH11Protocol.counters = counters
    hypercorn_protocol.H11Protocol = FloeH11Protocol  # type: ignore[misc,attr-defined]
