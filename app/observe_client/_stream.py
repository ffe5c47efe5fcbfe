"""The GetFlows stream of `floe observe`: print, keep the cursor, reconnect and resume.

Every event the server sends carries a cursor (0 only on a LostEvent about this stream).
The client remembers the newest one it printed; when the connection is lost (a status in
`RETRYABLE`, or a `--follow` stream the server ended) it says so on stderr, waits with
exponential backoff (0.2 s doubling to 5 s, with jitter) until the channel is ready again,
and asks for `after=<cursor>`: no event twice, and none missed unless the ring overwrote it
meanwhile — then the server's RING_OVERFLOW LostEvent says how many, and it is printed like
any lost event. A refusal (credential, scope, argument) ends the command with the server's
message (`_errors.py`). `--resume-file` gets the same cursor (`_resume.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from app.observe_client._connect import Endpoint
from app.observe_client._errors import RETRYABLE, ObserveError, status_error
from app.observe_client._formats import STREAM_LOSSES, Printer
from app.observe_client._request import FlowQuery
from app.observe_client._resume import WRITE_INTERVAL, ResumeFile
from floe.observer.v1 import observer_pb2_grpc

__all__ = ["Backoff", "FlowStream"]


@dataclass(slots=True)
class Backoff:
    """Delays between reconnect attempts: `initial` doubling up to `cap`, ±20 % jitter so a
    fleet of clients does not reconnect in step after a server restart."""

    initial: float = 0.2
    cap: float = 5.0
    _next: float = 0.0

    def next(self) -> float:
        delay = self._next or self.initial
        self._next = min(self.cap, delay * 2)
        return min(self.cap, delay * random.uniform(0.8, 1.2))  # noqa: S311 (not a secret)

    def reset(self) -> None:
        self._next = 0.0


def _countable(event: Any) -> bool:
    """An event of the ring (what --last/--first count), not a report about this stream."""
    return not (event.WhichOneof("event") == "lost_events"
                and event.lost_events.source in STREAM_LOSSES)


class FlowStream:
    def __init__(self, channel: grpc.aio.Channel, endpoint: Endpoint, query: FlowQuery,
                 printer: Printer, *, resume: ResumeFile | None = None,
                 after: int | None = None, connect_timeout: float = 5.0,
                 notice: Callable[[str], None] = print, backoff: Backoff | None = None) -> None:
        self.stub = observer_pb2_grpc.ObserverStub(channel)
        self.channel = channel
        self.endpoint = endpoint
        self.query = query
        self.printer = printer
        self.resume = resume
        self.cursor = after  # the newest cursor printed (None: nothing yet)
        # Events to print in all. From a saved cursor the counts do not apply (the server
        # ignores them with `after`), except --first N: "the next N after my cursor".
        self.limit = query.limit if after is None else (query.first or None)
        self.connect_timeout = connect_timeout
        self.notice = notice
        self.backoff = backoff or Backoff()
        self.printed = 0  # events counted against the query's limit

    async def run(self) -> None:
        """Until the query is answered (or forever with --follow); raises ObserveError."""
        await self._wait_ready(self.connect_timeout, first=True)
        flusher = asyncio.create_task(self._flush_resume()) if self.resume else None
        try:
            while True:
                reason = await self._one_stream()
                if reason is None:
                    return
                self.notice(f"connection to {self.endpoint.target} lost ({reason}); "
                            "reconnecting" + (f" to resume after cursor {self.cursor}"
                                              if self.cursor is not None else ""))
                await self._reconnect()
        finally:
            if flusher is not None:
                flusher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await flusher
            if self.resume is not None:
                self.resume.flush()

    async def _one_stream(self) -> str | None:
        """One GetFlows call; None when the query is answered, else why the stream broke."""
        # Before the first event there is no cursor: the same request again (for a follower
        # that means new events only — what came during the outage is not seen).
        call = self.stub.GetFlows(self.query.request(after=self.cursor),
                                  metadata=self.endpoint.metadata)
        try:
            async for response in call:
                self.backoff.reset()
                if self._deliver(response.events):
                    return None
        except grpc.aio.AioRpcError as error:
            code = error.code()
            if code not in RETRYABLE:
                raise status_error(code, error.details()) from None
            return f"{code.name}: {(error.details() or '').strip()}"
        finally:
            call.cancel()
        if not self.query.follow or self.query.until_ns:
            return None  # answered (a followed stream with --until ends when the clock does)
        return "the server ended the stream"

    def _deliver(self, events: Sequence[Any]) -> bool:
        """Print a message's events and advance the cursor; True once the limit is reached."""
        limit = self.limit
        if limit is not None:
            kept = []
            for event in events:
                if self.printed >= limit:
                    break
                kept.append(event)
                self.printed += _countable(event)
            events = kept
        elif events:
            self.printed += sum(1 for e in events if _countable(e))
        self.printer.write(events)
        cursors = [e.cursor for e in events if e.cursor]
        if cursors:
            self.cursor = max(cursors)
            if self.resume is not None:
                self.resume.update(self.cursor)
        return limit is not None and self.printed >= limit

    async def _wait_ready(self, within: float, *, first: bool = False) -> bool:
        try:
            await asyncio.wait_for(self.channel.channel_ready(), within)
        except TimeoutError:
            if first:
                hint = (" — is its certificate trusted (--tls-ca-cert, --tls-server-name)?"
                        if self.endpoint.tls else "")
                raise ObserveError(f"cannot connect to {self.endpoint.target} within "
                                   f"{within:g} s (is floe serve running there?{hint})"
                                   ) from None
            return False
        return True

    async def _reconnect(self) -> None:
        attempts = 0
        while True:
            await asyncio.sleep(self.backoff.next())
            attempts += 1
            if await self._wait_ready(self.backoff.cap):
                self.notice(f"reconnected to {self.endpoint.target} after {attempts} "
                            f"attempt{'s' if attempts > 1 else ''}")
                return

    async def _flush_resume(self) -> None:
        """Write a cursor that arrived in a burst and then nothing for a while."""
        assert self.resume is not None
        while True:
            await asyncio.sleep(WRITE_INTERVAL)
            self.resume.flush()
