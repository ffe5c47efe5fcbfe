"""Serving fixtures: an app with a test authenticator, and a real `floe serve` subprocess."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from pydantic import BaseModel
from quart import Quart, Response
from quart_schema import validate_request

from app.api.access import public
from app.api.envelope import ok
from app.config import Settings
from app.factory import create_app
from app.runtime import get_runtime
from app.types import Principal
from tests.support.server import FloeServer

READER_TOKEN = "reader-token"
NOSCOPE_TOKEN = "noscope-token"


class StaticAuthenticator:
    """Two fixed bearer tokens; identity is not what these tests exercise."""

    async def authenticate(self, credential: str) -> Principal | None:
        if credential == READER_TOKEN:
            return Principal("api_key", "reader", frozenset({"stats:read"}))
        if credential == NOSCOPE_TOKEN:
            return Principal("api_key", "noscope", frozenset({"users:read"}))
        return None


class EchoBody(BaseModel):
    name: str


def add_echo_route(app: Quart) -> None:
    """A JSON route with validation, to check 413/415/422 envelopes."""

    @app.post("/api/v2/_echo")
    @public
    @validate_request(EchoBody)
    async def echo(data: EchoBody) -> Response:
        return ok({"name": data.name})


@pytest.fixture
async def serving_app(make_settings: Callable[..., Settings]) -> AsyncIterator[Quart]:
    application = create_app(
        make_settings(MAX_BODY_BYTES="2048", WS_HEARTBEAT_INTERVAL="0.05", METRICS_ENABLED="true")
    )
    add_echo_route(application)
    async with application.test_app():
        get_runtime(application).authenticator = StaticAuthenticator()
        yield application


@pytest.fixture(scope="module")
def floe_server() -> Iterator[FloeServer]:
    """One full server (HTTP/1.1, h2c, TLS h2, HTTP/3, gRPC, metrics) shared by a module."""
    with FloeServer.start(env={"WS_HEARTBEAT_INTERVAL": "0.1"}) as server:
        yield server
