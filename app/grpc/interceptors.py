"""gRPC server interceptor carrying the correlation id, as `X-Request-ID` does for HTTP.

The id comes from the `x-request-id` metadata of the call (or a fresh one), is set in
`app.logging.correlation_id` for the handler (so every log line carries it) and is sent
back as initial metadata `x-request-id`. Handlers should therefore not send initial
metadata themselves.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from app.logging import correlation_id, new_correlation_id

__all__ = ["REQUEST_ID_KEY", "CorrelationIdInterceptor"]

REQUEST_ID_KEY = "x-request-id"


def _request_id(details: grpc.HandlerCallDetails) -> str:
    for key, value in details.invocation_metadata or ():  # type: ignore[attr-defined]
        if key == REQUEST_ID_KEY and isinstance(value, str) and value.isprintable() and value:
            return value[:64]
    return new_correlation_id()


def _wrap(behavior: Callable[..., Any], rid: str) -> Callable[..., Any]:
    if inspect.isasyncgenfunction(behavior):

        async def stream_behavior(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            correlation_id.set(rid)
            await context.send_initial_metadata(((REQUEST_ID_KEY, rid),))
            async for item in behavior(request, context):
                yield item

        return stream_behavior

    async def unary_behavior(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        correlation_id.set(rid)
        await context.send_initial_metadata(((REQUEST_ID_KEY, rid),))
        result = behavior(request, context)
        if inspect.isawaitable(result):
            return await result
        return result

    return unary_behavior


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
        h: Any = handler
        if h.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _wrap(h.unary_unary, rid), h.request_deserializer, h.response_serializer
            )
        if h.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _wrap(h.unary_stream, rid), h.request_deserializer, h.response_serializer
            )
        if h.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                _wrap(h.stream_unary, rid), h.request_deserializer, h.response_serializer
            )
        if h.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                _wrap(h.stream_stream, rid), h.request_deserializer, h.response_serializer
            )
        return handler
