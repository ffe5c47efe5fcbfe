"""gRPC failures answered with status codes and messages of our own.

Without this, grpc.aio answers any exception a handler did not turn into an abort with
UNKNOWN and the exception's text as details — a malformed message answered
"Unexpected <class 'DecodeError'>: Error parsing message with type …" to anyone, and any
bug would hand its message (paths, values, SQL) to the caller. Instead:

- a request message that does not parse is INVALID_ARGUMENT, `MALFORMED`: the request
  deserializer returns a `Malformed` marker instead of raising (grpc.aio parses unary
  requests before the handler runs, where nothing can choose the status), and the
  handler's wrapper aborts when it meets one — as the unary request, in the request
  stream, or from `context.read()`;
- any other exception is INTERNAL with `internal_message(request id)` and is logged here,
  once, with its traceback; the request id is the one the caller got as `x-request-id`.

An intentional abort (`context.abort`, grpc.aio's `AbortError`) and cancellation pass
through unchanged. `app.grpc.interceptors` applies this to every handler.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc

__all__ = [
    "MALFORMED",
    "GuardedContext",
    "Malformed",
    "abort_internal",
    "guarded_requests",
    "internal_message",
    "reject_malformed",
    "tolerant",
]

log = logging.getLogger(__name__)

MALFORMED = "malformed request message"


def internal_message(request_id: str) -> str:
    return f"internal error (request id {request_id})"


@dataclass(slots=True, frozen=True)
class Malformed:
    """Stands in for a request message that did not parse; `error` is for our log only."""

    error: str


def tolerant(deserialize: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """`deserialize`, answering `Malformed` instead of raising."""

    def parse(raw: bytes) -> Any:
        try:
            return deserialize(raw)
        except Exception as error:  # whatever the parser raises: the caller sent garbage
            return Malformed(f"{type(error).__name__}: {error}")

    return parse


async def reject_malformed(message: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
    """`message` itself, or an INVALID_ARGUMENT abort when it did not parse."""
    if isinstance(message, Malformed):
        log.warning("refused a malformed request message: %s", message.error)
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, MALFORMED)
    return message


async def guarded_requests(requests: AsyncIterator[Any],
                           context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
    """A request stream that aborts at the first message that did not parse."""
    async for message in requests:
        yield await reject_malformed(message, context)


class GuardedContext:
    """The servicer context with a `read()` that aborts on a malformed message; everything
    else is the real context's."""

    __slots__ = ("_context",)

    def __init__(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        self._context = context

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    async def read(self) -> Any:
        return await reject_malformed(await self._context.read(), self._context)


async def abort_internal(context: grpc.aio.ServicerContext[Any, Any], request_id: str,
                         method: str) -> None:
    """Log the exception being handled (once, here) and end the call with INTERNAL."""
    log.exception("gRPC %s failed", method)
    await context.abort(grpc.StatusCode.INTERNAL, internal_message(request_id))
