"""Loop fairness: REST requests run only as many at a time as keep the event loop's turns short.

One uvloop loop serves REST, WebSocket and gRPC (the dataplane uplink, the observer's
followers). Every turn of the loop runs every ready callback, so under a REST flood each turn
holds a step of every request in flight, and gRPC, which needs several turns per message, fell
to a few messages a second (measured: a dataplane feeding 20k flow events/s delivered 13 % of
them while wrk saturated GET /stats/summary). The gate below bounds how many admitted requests
run at once while the dataplane streams have work: a batch arrived in the last STREAM_WINDOW
seconds (the ingest layer reports it through `Runtime.components["stream_activity"]`). The
window is long because under a flood the batches themselves arrive late, and reopening the
gate then would make them later still. The bound adapts to the loop's lag: a probe sleeps
PROBE_SECONDS and measures how late it wakes; past STREAM_LAG the bound shrinks (by a quarter,
never under STREAM_FLOOR), under half of it the bound grows by one. When the streams wake, the
bound starts at STREAM_START rather than where it was, so they are protected from the first
probe on.

While no stream has work the gate is open (IDLE_LAG None): there is nothing for it to protect,
and a gate that adapted to lag then cost REST throughput for nothing. At 1,000 HTTP/3
connections most of a loop turn is QUIC's own per-datagram work, which the gate does not hold
back, so a 20 ms target kept ~950 of 1,000 requests waiting at a bound of 30-60 and the server
answered 8-18 % fewer of them (bench/serving/RESULTS.md). WebSocket heartbeats under a REST
flood rely on the in-flight bound and the hub's one serialisation per tick, not on this gate.
Requests past the bound wait in order, costing no loop time until they run. Admission
control's in-flight bound still caps how many may wait (503 past it). Measured:
docs/benchmarks.md (observer, serving).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable

__all__ = ["PROBE_SECONDS", "STREAM_FLOOR", "STREAM_START", "LoopFairness"]

PROBE_SECONDS = 0.005
STREAM_LAG, STREAM_FLOOR, STREAM_START = 0.005, 2, 8  # while dataplane batches are arriving
# Otherwise: None keeps the gate open; a target (e.g. 0.020, the bound before 2026-12-07)
# makes it adapt to lag then too, never under IDLE_FLOOR.
IDLE_LAG: float | None = None
IDLE_FLOOR = 8
STREAM_WINDOW = 5.0


class LoopFairness:
    def __init__(self, ceiling: int, activity: Callable[[], float] | None = None) -> None:
        """`activity`: when (monotonic) stream work last arrived; looked up by the probe."""
        self.activity = activity
        self.ceiling = max(IDLE_FLOOR, ceiling)
        self.limit = self.ceiling
        self.active = 0
        self.waited = 0  # requests that had to wait for their turn (exported as a counter)
        self.lag = 0.0  # the latest probe's lag, seconds
        self.streaming = False  # whether the latest probe found the streams at work
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
            lag = loop.time() - started - PROBE_SECONDS
            streaming = (self.activity is not None
                         and time.monotonic() - self.activity() < STREAM_WINDOW)
            self.adjust(lag, streaming)

    def adjust(self, lag: float, streaming: bool) -> None:
        """One probe's verdict: the bound for the next PROBE_SECONDS."""
        self.lag = lag
        woke, self.streaming = streaming and not self.streaming, streaming
        if streaming:
            if woke:  # start strict, not from where the bound was
                self.limit = min(self.limit, STREAM_START)
            target, floor = STREAM_LAG, STREAM_FLOOR
        elif IDLE_LAG is None:  # nothing to protect: open
            if self.limit < self.ceiling:
                self.limit = self.ceiling
                self._wake()
            return
        else:
            target, floor = IDLE_LAG, IDLE_FLOOR
        if lag > target:
            self.limit = max(floor, int(self.limit * 0.75))
        elif lag < target / 2 and self.limit < self.ceiling:
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
