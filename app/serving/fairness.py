"""Loop fairness: REST requests run only as many at a time as keep the event loop's turns short.

One uvloop loop serves REST, WebSocket and gRPC (the dataplane uplink, the observer's
followers). Every turn of the loop runs every ready callback, so under a REST flood each turn
holds a step of every request in flight, and gRPC, which needs several turns per message, fell
to a few messages a second (measured: a dataplane feeding 20k flow events/s delivered 13 % of
them while wrk saturated GET /stats/summary). The gate below bounds how many admitted requests
run at once, and adapts that bound to the loop's lag: a probe sleeps PROBE_SECONDS and measures
how late it wakes; past TARGET_LAG the bound shrinks (by a quarter, never under FLOOR), under
half of it the bound grows by one. Requests past the bound wait in order, costing no loop time until
they run; the CPU stays busy with REST (its throughput does not change), but each turn is short
and the streams keep their cadence. Admission control's in-flight bound still caps how many may
wait (503 past it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

__all__ = ["FLOOR", "PROBE_SECONDS", "TARGET_LAG", "LoopFairness"]

PROBE_SECONDS = 0.005
TARGET_LAG = 0.010
FLOOR = 4


class LoopFairness:
    def __init__(self, ceiling: int) -> None:
        self.ceiling = max(FLOOR, ceiling)
        self.limit = self.ceiling
        self.active = 0
        self.waited = 0  # requests that had to wait for their turn (exported as a counter)
        self.lag = 0.0  # the latest probe's lag, seconds
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._probe: asyncio.Task[None] | None = None

    async def acquire(self) -> None:
        if self.active < self.limit and not self._waiters:
            self.active += 1
            return
        self.waited += 1
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # release() counted us in
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # woken and cancelled in the same turn: give the turn on
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        self.active -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.active < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.active += 1
                waiter.set_result(None)

    async def _measure(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(PROBE_SECONDS)
            self.lag = lag = loop.time() - started - PROBE_SECONDS
            if lag > TARGET_LAG:
                self.limit = max(FLOOR, int(self.limit * 0.75))
            elif lag < TARGET_LAG / 2 and self.limit < self.ceiling:
                self.limit += 1
                self._wake()

    def start(self) -> None:
        self._probe = asyncio.get_running_loop().create_task(self._measure(),
                                                             name="loop-fairness")

    async def stop(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
            self._probe = None
