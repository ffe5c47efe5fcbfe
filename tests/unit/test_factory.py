"""FloeQuart remembers which plain functions are coroutine functions; sync ones still run."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from app import factory
from app.config import Settings
from app.factory import FloeQuart, create_app


async def test_ensure_async_is_remembered_and_still_correct(
        make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(make_settings())
    assert isinstance(app, FloeQuart)

    async def coro(x: int) -> int:
        return x + 1

    def sync(x: int) -> int:
        return x * 2

    asked: list[object] = []
    real = factory.inspect.iscoroutinefunction

    def counted(func: object) -> bool:
        asked.append(func)
        return real(func)

    monkeypatch.setattr(factory.inspect, "iscoroutinefunction", counted)
    assert app.ensure_async(coro) is coro
    assert app.ensure_async(coro) is coro  # remembered: inspect is asked once
    assert asked.count(coro) == 1
    monkeypatch.undo()
    assert await app.ensure_async(sync)(21) == 42  # sync functions still run (in a thread)
    class Hooks:
        async def hook(self) -> None:
            return None

    hooks = Hooks()
    assert app.ensure_async(hooks.hook) == hooks.hook  # bound methods: new objects per access
    assert set(app._coroutine_functions) == {coro}  # only plain coroutine functions are kept
