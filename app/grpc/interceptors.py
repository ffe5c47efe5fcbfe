"""gRPC server interceptor: the correlation id, and failures mapped to our own statuses.

The id comes from the `x-request-id` metadata of the call (or a fresh one), is set in
`app.logging.correlation_id` for the handler (so every log line carries it) and is sent
back as initial metadata `x-request-id`. Handlers should therefore not send initial
metadata themselves.

The same wrapper maps failures (`app.grpc.errors`): a request message that does not parse
is INVALID_ARGUMENT with a fixed message, any exception that is not an intentional abort is
INTERNAL with the request id (logged once here), never the exception's own text.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from app.grpc.errors import (
    GuardedContext,
    abort_internal,
    guarded_requests,
    reject_malformed,
    tolerant,
)
from app.logging import correlation_id, new_correlation_id

__all__ = ["REQUEST_ID_KEY", "CorrelationIdInterceptor"]

REQUEST_ID_KEY = "x-request-id"


def _request_id(details: grpc.HandlerCallDetails) -> str:
    for key, value in details.invocation_metadata or ():  # type: ignore[attr-defined]
        if key == REQUEST_ID_KEY and isinstance(value, str) and value.isprintable() and value:
            return value[:64]
    return new_correlation_id()


_PASS = (grpc.aio.AbortError, asyncio.CancelledError)  # chosen ends of a call: untouched


def _wrap(behavior: Callable[..., Any], rid: str, method: str, streaming_request: bool,
          ) -> Callable[..., Any]:
    async def prepare(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        correlation_id.set(rid)
        await context.send_initial_metadata(((REQUEST_ID_KEY, rid),))
        if streaming_request:
            return guarded_requests(request, context)
        return await reject_malformed(request, context)

    if inspect.isasyncgenfunction(behavior):

        async def stream_behavior(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            try:
                request = await prepare(request, context)
                async for item in behavior(request, GuardedContext(context)):
                    yield item
            except _PASS:
                raise
            except Exception:
                await abort_internal(context, rid, method)

        return stream_behavior

    async def unary_behavior(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            request = await prepare(request, context)
            result = behavior(request, GuardedContext(context))
            if inspect.isawaitable(result):
                return await result
            return result
        except _PASS:
            raise
        except Exception:
            await abort_internal(context, rid, method)

    return unary_behavior


def _deserializer(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    return tolerant(deserialize) if deserialize is not None else None


class CorrelationIdInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        rid = _request_id(handler_call_details)
        method: str = handler_call_details.method  # type: ignore[attr-defined]
        h: Any = handler
        parse = _deserializer(h.request_deserializer)
        if h.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _wrap(h.unary_unary, rid, method, False), parse, h.response_serializer
            )
        if h.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _wrap(h.unary_stream, rid, method, False), parse, h.response_serializer
            )
        if h.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                _wrap(h.stream_unary, rid, method, True), parse, h.response_serializer
            )
        if h.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                _wrap(h.stream_stream, rid, method, True), parse, h.response_serializer
            )
        return handler
