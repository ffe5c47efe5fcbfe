"""Live delivery: every new batch is offered to every follower, filtered with one mask each.

A follower's queue is bounded in events (`queue_size`). When a slow or stalled consumer lets
it fill, the oldest events are dropped and counted; the stream reports the count as a
LostEvent (source CONSUMER_QUEUE) before its next events. Offering never waits, so one
consumer never slows the ingest, the REST side or another consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from app.observer.filters import Selection
from app.observer.ring import EventBatch, EventRing

__all__ = ["Chunk", "Fanout", "Follower"]

MAX_CHUNK_EVENTS = 2048  # events per GetFlowsResponse (a few hundred KB at most)


@dataclass(slots=True)
class Chunk:
    """The events of one batch a follower wants: the batch and their rows in it (the gRPC
    stream joins their encoded entries, the WebSocket their JSON)."""

    batch: EventBatch
    rows: npt.NDArray[np.intp]

    @property
    def entries(self) -> list[bytes]:
        entries = self.batch.entries
        if len(self.rows) == len(entries):
            return entries
        return [entries[i] for i in self.rows.tolist()]


class Follower:
    """One live consumer: its selection, its bounded queue and what it lost."""

    __slots__ = ("_half_full", "_queued", "_wake", "closed", "encode", "lost", "queue",
                 "queue_size", "selection", "subject")

    def __init__(self, selection: Selection, queue_size: int, subject: str,
                 encode: object = None) -> None:
        self.selection = selection
        self.queue_size = queue_size
        self.subject = subject
        self.encode = encode  # per-batch re-encoding (field masks) or None
        self.queue: deque[Chunk] = deque()
        self._queued = 0
        self._wake = asyncio.Event()
        self._half_full = asyncio.Event()
        self.lost = 0  # dropped from the queue, not yet reported to the consumer
        self.closed = False

    def offer(self, batch: EventBatch, ring: EventRing) -> None:
        if self.closed:
            return
        picked = np.flatnonzero(self.selection.select(batch.columns, ring))
        if picked.size == 0:
            return
        self.queue.append(Chunk(batch, picked))
        self._queued += int(picked.size)
        while self._queued > self.queue_size:
            self._drop_oldest(self._queued - self.queue_size)
        self._wake.set()
        if self._queued * 2 >= self.queue_size:
            self._half_full.set()

    def _drop_oldest(self, count: int) -> None:
        head = self.queue[0]
        if len(head.rows) <= count:
            self.queue.popleft()
            dropped = len(head.rows)
        else:
            head.rows = head.rows[count:]
            dropped = count
        self._queued -= dropped
        self.lost += dropped

    async def next_chunks(self) -> list[Chunk]:
        """Everything queued (waits for something); [] once closed."""
        while not self.queue and not self.closed:
            self._wake.clear()
            await self._wake.wait()
        return self.take_queued()

    def take_queued(self) -> list[Chunk]:
        """Everything queued now, without waiting."""
        chunks = list(self.queue)
        self.queue.clear()
        self._queued = 0
        self._half_full.clear()
        return chunks

    async def gather_more(self, seconds: float) -> None:
        """Let more arrive for up to `seconds`, or until the queue is half full (so that
        waiting to write fewer, larger messages never costs an event)."""
        if self._queued * 2 >= self.queue_size or self.closed:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._half_full.wait(), seconds)

    def take_lost(self) -> int:
        lost, self.lost = self.lost, 0
        return lost

    def close(self) -> None:
        self.closed = True
        self._wake.set()


@dataclass(slots=True)
class Fanout:
    """The live followers; `publish` is called by the ingest side for each new batch."""

    followers: set[Follower] = field(default_factory=set)
    lost_total: int = 0  # queue drops of every follower since start

    def add(self, follower: Follower) -> None:
        self.followers.add(follower)

    def remove(self, follower: Follower) -> None:
        self.followers.discard(follower)
        follower.close()

    def publish(self, batch: EventBatch, ring: EventRing) -> None:
        for follower in self.followers:
            before = follower.lost
            follower.offer(batch, ring)
            self.lost_total += follower.lost - before
