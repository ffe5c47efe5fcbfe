"""Fixtures for the identity suite: a started app on a fresh database, and helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from quart import Quart

from app.config import Settings
from app.factory import create_app
from tests.support.databases import db_env, sqlite_env

__all__ = ["db_env", "identity_app", "login", "sqlite_env"]

# argon2 at t=1, m=8 MiB in tests (FLOE_ARGON2_PROFILE, documented in docs/identity.md).
FAST = {"FLOE_ARGON2_PROFILE": "fast", "FLOE_SESSION_COOKIE_SECURE": "false"}
ADMIN = ("admin@localhost.local", "admin123")


@pytest.fixture
async def identity_app(
    make_settings: Callable[..., Settings], sqlite_env: dict[str, str]
) -> AsyncIterator[Quart]:
    application = create_app(make_settings(**sqlite_env, **FAST))
    async with application.test_app():
        yield application


async def login(
    app: Quart, email: str = ADMIN[0], password: str = ADMIN[1], **extra: Any
) -> dict[str, Any]:
    client = app.test_client()
    response = await client.post(
        "/api/v2/auth/login", json={"email": email, "password": password, **extra}
    )
    body = await response.get_json()
    assert response.status_code == 200, body
    data: dict[str, Any] = body["data"]
    return data


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
