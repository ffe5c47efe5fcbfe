"""The loop-fairness gate: open while the streams are idle, strict from their first batch on,
waiters served in order, a cancelled waiter never keeps or loses a turn."""

from __future__ import annotations

import asyncio

import pytest

import app.serving.fairness as fairness
from app.serving.fairness import STREAM_FLOOR, STREAM_START, LoopFairness


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def holders(gate: LoopFairness, count: int) -> list[asyncio.Task[None]]:
    """`count` tasks that each take a turn (or queue for one) and keep it until cancelled."""

    async def hold() -> None:
        await gate.acquire()
        try:
            await asyncio.Event().wait()
        finally:
            gate.release()

    tasks = [asyncio.create_task(hold()) for _ in range(count)]
    await settle()
    return tasks


async def let_go(gate: LoopFairness, tasks: list[asyncio.Task[None]]) -> None:
    """Cancel the holders; every turn they took must come back."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert gate.active == 0


def strict_gate(ceiling: int = 32) -> LoopFairness:
    """A gate the streams have driven down to STREAM_FLOOR."""
    gate = LoopFairness(ceiling=ceiling)
    for _ in range(10):
        gate.adjust(lag=0.050, streaming=True)
    assert gate.limit == STREAM_FLOOR
    return gate


async def test_idle_streams_leave_the_gate_open_however_late_the_loop() -> None:
    gate = LoopFairness(ceiling=64)
    gate.adjust(lag=0.5, streaming=False)
    gate.adjust(lag=0.5, streaming=False)
    assert gate.limit == 64
    tasks = await holders(gate, 64)
    assert gate.active == 64 and gate.waited == 0
    await let_go(gate, tasks)


async def test_streams_waking_start_strict_then_adapt_to_lag() -> None:
    gate = LoopFairness(ceiling=2048)
    gate.adjust(lag=0.004, streaming=True)  # under the 5 ms target, not under half of it
    assert gate.limit == STREAM_START  # not the ceiling: strict from the first probe
    for _ in range(10):
        gate.adjust(lag=0.050, streaming=True)
    assert gate.limit == STREAM_FLOOR  # shrinks by a quarter, never under the floor
    gate.adjust(lag=0.0, streaming=True)
    assert gate.limit == STREAM_FLOOR + 1  # grows by one while the loop keeps up
    gate.adjust(lag=0.004, streaming=True)
    assert gate.limit == STREAM_FLOOR + 1


async def test_the_streams_going_quiet_reopen_the_gate_and_wake_every_waiter() -> None:
    gate = LoopFairness(ceiling=32)
    gate.adjust(lag=0.004, streaming=True)
    tasks = await holders(gate, 20)
    assert gate.active == STREAM_START and gate.waited == 20 - STREAM_START
    gate.adjust(lag=0.5, streaming=False)
    await settle()
    assert gate.limit == 32 and gate.active == 20
    await let_go(gate, tasks)


async def test_waiters_run_in_arrival_order() -> None:
    gate = strict_gate()
    blockers = await holders(gate, STREAM_FLOOR)
    order: list[int] = []

    async def take(index: int) -> None:
        await gate.acquire()
        order.append(index)
        gate.release()

    takers = [asyncio.create_task(take(index)) for index in range(5)]
    await settle()
    assert order == []
    blockers[0].cancel()
    await asyncio.gather(*takers)
    assert order == [0, 1, 2, 3, 4]
    await let_go(gate, blockers[1:])


async def test_a_cancelled_waiter_leaves_the_queue_and_a_woken_one_passes_its_turn_on() -> None:
    gate = strict_gate()
    blockers = await holders(gate, STREAM_FLOOR)
    waiting = await holders(gate, 2)
    waiting[0].cancel()  # still queued: it leaves without a turn
    await asyncio.gather(waiting[0], return_exceptions=True)
    assert gate.active == STREAM_FLOOR and len(gate._waiters) == 1

    blockers[0].cancel()  # frees a turn, which goes to waiting[1] ...
    await asyncio.sleep(0)
    waiting[1].cancel()  # ... cancelled in the same turn: it must hand the turn back
    await asyncio.gather(blockers[0], waiting[1], return_exceptions=True)
    await settle()
    assert gate.active == STREAM_FLOOR - 1 and not gate._waiters
    await let_go(gate, blockers[1:])


async def test_a_lag_target_while_idle_still_bounds_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """IDLE_LAG set (the bound before 2026-12-07, kept as a bench lever): adapts, floor 8."""
    monkeypatch.setattr(fairness, "IDLE_LAG", 0.020)
    gate = LoopFairness(ceiling=2048)
    for _ in range(40):
        gate.adjust(lag=0.5, streaming=False)
    assert gate.limit == fairness.IDLE_FLOOR
    gate.adjust(lag=0.0, streaming=False)
    assert gate.limit == fairness.IDLE_FLOOR + 1
