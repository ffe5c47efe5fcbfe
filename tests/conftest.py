"""Fixtures shared by every suite. Area-specific fixtures live in each folder's conftest."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from quart import Quart

from app.config import Settings, load_settings
from app.factory import create_app
from app.grpc.lifetime import pin_grpc_aio

IS_ROOT = os.geteuid() == 0

pin_grpc_aio()  # see app/grpc/lifetime.py: avoids a gc-time deadlock at teardown


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if IS_ROOT:
        return
    skip = pytest.mark.skip(reason="needs root (XDP, namespaces)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


FD_LOG = os.environ.get("FLOE_TEST_FD_LOG")  # a path: each module's open-fd growth goes there


@pytest.fixture(scope="module", autouse=True)
def _fd_growth(request: pytest.FixtureRequest) -> Iterator[None]:
    """Find fd leaks across the suite: `FLOE_TEST_FD_LOG=PATH make test` logs per-module growth."""
    if not FD_LOG:
        yield
        return
    before = len(os.listdir("/proc/self/fd"))
    yield
    after = len(os.listdir("/proc/self/fd"))
    with open(FD_LOG, "a", encoding="utf-8") as log:
        log.write(f"{after - before:+d} {after} {request.node.nodeid}\n")


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings from a clean environment (never the developer's), plus overrides."""

    def factory(**env: str) -> Settings:
        base = {
            "FLOE_DATA_DIR": str(tmp_path / "data"),
            "SECRET_KEY": "test-secret-key-not-for-production-0123456789",
            "HTTP3_ENABLED": "false",
            "GRPC_ENABLED": "false",
            "METRICS_ENABLED": "false",
            "FLOE_ENV": "development",
        }
        base.update(env)
        return load_settings(base)

    return factory


@pytest.fixture
async def app(make_settings: Callable[..., Settings]) -> AsyncIterator[Quart]:
    """The app with its lifecycle run (before/after serving), SQLite in tmp_path."""
    application = create_app(make_settings())
    async with application.test_app():
        yield application
