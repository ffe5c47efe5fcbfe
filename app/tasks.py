"""Stopping background tasks: cancel each and wait until it has finished, so that nothing of a
stopped component still runs on the loop (and no "Task was destroyed" warning follows)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

__all__ = ["cancel_and_wait"]


async def cancel_and_wait(tasks: Iterable[asyncio.Future[Any] | None]) -> None:
    """Cancel every task or future (None entries skipped) and await each; their CancelledError is
    theirs, not the caller's."""
    for task in tasks:
        if task is None:
            continue
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
