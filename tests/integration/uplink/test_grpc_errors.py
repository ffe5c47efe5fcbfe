"""gRPC failures answer statuses and messages of our own, never the exception's text.

Garbage bytes go to a real `floe serve` through a real channel with identity serializers, as
an attacker would send them: to the uplink (before and after Hello), to health and to
reflection. Unexpected exceptions are raised by handlers of a test service on a real
grpc.aio server carrying Floe's interceptor.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
import pytest_asyncio

from app.grpc.errors import MALFORMED, internal_message
from app.grpc.interceptors import REQUEST_ID_KEY, CorrelationIdInterceptor
from floe.dataplane.v1 import uplink_pb2 as pb
from tests.integration.uplink.real import mint_key, open_stream, target, wait
from tests.support.server import FloeServer

pytestmark = pytest.mark.asyncio(loop_scope="module")

GARBAGE = b"\xff\xff\xff\xff\x0f"  # not a protobuf message of any type


def same(raw: bytes) -> bytes:
    return raw


@pytest.fixture(scope="module")
def server() -> Iterator[FloeServer]:
    with FloeServer.start(env={"HTTP3_ENABLED": "false", "FLOE_ARGON2_PROFILE": "fast"}) as srv:
        yield srv


def log_lines(server: FloeServer) -> list[dict[str, Any]]:
    lines = []
    for line in server.output().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


async def send_garbage(channel: grpc.aio.Channel, method: str, kind: str,
                       metadata: tuple[tuple[str, str], ...]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        if kind == "unary_unary":
            await channel.unary_unary(method, request_serializer=same,
                                      response_deserializer=same)(GARBAGE, metadata=metadata)
        elif kind == "unary_stream":
            call = channel.unary_stream(method, request_serializer=same,
                                        response_deserializer=same)(GARBAGE, metadata=metadata)
            async for _ in call:
                pass
        else:
            call = channel.stream_stream(method, request_serializer=same,
                                         response_deserializer=same)(metadata=metadata)
            await call.write(GARBAGE)
            await call.done_writing()
            async for _ in call:
                pass
    return caught.value


@pytest.mark.parametrize(("method", "kind"), [
    ("/floe.dataplane.v1.Uplink/Connect", "stream_stream"),
    ("/grpc.health.v1.Health/Check", "unary_unary"),
    ("/grpc.health.v1.Health/Watch", "unary_stream"),
    ("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", "stream_stream"),
])
async def test_malformed_messages_are_invalid_argument(server: FloeServer, method: str,
                                                       kind: str) -> None:
    key = mint_key(server, ["dataplane:write"])
    rid = uuid.uuid4().hex[:16]
    metadata = (("authorization", f"Bearer {key}"), (REQUEST_ID_KEY, rid))
    async with grpc.aio.insecure_channel(target(server)) as channel:
        error = await send_garbage(channel, method, kind, metadata)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == MALFORMED  # not the parser's words
    logged = wait(lambda: [r for r in log_lines(server) if r.get("correlation_id") == rid])
    assert [r["level"] for r in logged] == ["warning"]
    assert "Unexpected" not in server.output()  # grpc's own UNKNOWN path never ran


async def test_a_malformed_message_after_hello_is_invalid_argument(server: FloeServer) -> None:
    """The uplink reads with `context.read()` after Hello: same answer there."""
    key = mint_key(server, ["dataplane:write"])
    hello = pb.Hello(node_id="garbage-after-hello", instance_id=uuid.uuid4().hex)
    async with grpc.aio.insecure_channel(target(server)) as channel:
        call = channel.stream_stream("/floe.dataplane.v1.Uplink/Connect",
                                     request_serializer=same, response_deserializer=same)(
            metadata=(("authorization", f"Bearer {key}"),))
        await call.write(pb.UplinkMessage(hello=hello).SerializeToString())
        welcome = pb.DownlinkMessage.FromString(await call.read())
        assert welcome.WhichOneof("body") == "welcome"
        await call.write(GARBAGE)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            while True:
                await call.read()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == MALFORMED


async def test_the_server_still_answers_well_formed_calls(server: FloeServer) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    key = mint_key(server, ["dataplane:write"])
    async with grpc.aio.insecure_channel(target(server)) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        call = await open_stream(channel, key, pb.Hello(node_id="after-garbage",
                                                        instance_id=uuid.uuid4().hex))
        await call.done_writing()


# -- unexpected exceptions: a test service on a real grpc.aio server with the interceptor --

SECRET = "password=hunter2 at /srv/floe/secret.db"


async def boom_unary(request: bytes, context: Any) -> bytes:
    raise RuntimeError(SECRET)


async def boom_generator(request: bytes, context: Any) -> AsyncIterator[bytes]:
    yield b"first"
    raise KeyError(SECRET)


async def boom_reader(request_iterator: Any, context: Any) -> None:
    await context.read()
    await context.write(b"ok")
    raise ValueError(SECRET)


async def deny(request: bytes, context: Any) -> bytes:
    await context.abort(grpc.StatusCode.PERMISSION_DENIED, "not for you")
    raise AssertionError("unreachable")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def test_service() -> AsyncIterator[str]:
    server = grpc.aio.server(interceptors=[CorrelationIdInterceptor()])
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(boom_unary),
        "Generator": grpc.unary_stream_rpc_method_handler(boom_generator),
        "Reader": grpc.stream_stream_rpc_method_handler(boom_reader),
        "Deny": grpc.unary_unary_rpc_method_handler(deny),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Boom",
                                                                          handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


async def call_kind(channel: grpc.aio.Channel, name: str, rid: str) -> grpc.aio.AioRpcError:
    metadata = ((REQUEST_ID_KEY, rid),)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        if name in ("Unary", "Deny"):
            await channel.unary_unary(f"/test.Boom/{name}")(b"x", metadata=metadata)
        elif name == "Generator":
            async for _ in channel.unary_stream("/test.Boom/Generator")(b"x", metadata=metadata):
                pass
        else:
            call = channel.stream_stream("/test.Boom/Reader")(metadata=metadata)
            await call.write(b"x")
            async for _ in call:
                pass
    return caught.value


@pytest.mark.parametrize("name", ["Unary", "Generator", "Reader"])
async def test_unexpected_exceptions_are_internal_with_the_request_id(
        test_service: str, name: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    rid = uuid.uuid4().hex[:16]
    async with grpc.aio.insecure_channel(test_service) as channel:
        error = await call_kind(channel, name, rid)
    assert error.code() == grpc.StatusCode.INTERNAL
    assert error.details() == internal_message(rid)
    assert SECRET not in (error.details() or "")
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(failures) == 1, [r.getMessage() for r in failures]  # logged once, by us
    assert failures[0].name == "app.grpc.errors" and failures[0].exc_info is not None
    assert SECRET in str(failures[0].exc_info[1])


async def test_intentional_aborts_pass_unchanged(test_service: str) -> None:
    async with grpc.aio.insecure_channel(test_service) as channel:
        error = await call_kind(channel, "Deny", "deny-1")
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == "not for you"
