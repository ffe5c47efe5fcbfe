"""Opening a flow stream: the history a request asks for, and its live follower, in one step.

Shared by the gRPC `GetFlows` and the WebSocket flow subscription. History is read from the
ring's snapshot and the follower is registered in the same step of the event loop, so no
event falls between what the history holds and what the follower gets. The result is chunks
of (batch, rows): each transport encodes them its own way (joined protobuf entries, JSON).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from app.observer.fanout import Chunk, Fanout, Follower
from app.observer.filters import FilterError, Selection
from app.observer.ring import TYPE_FLOW, EventBatch, EventRing
from floe.observer.v1 import observer_pb2 as pb

__all__ = ["EARLIER_RUN", "Opening", "lost_event", "open_flows"]

Index = npt.NDArray[np.intp]

EARLIER_RUN = ("the cursor is from an earlier run of the control plane: the events that run "
               "held after it are gone (counted: this run's events already out of the ring)")


def lost_event(source: int, count: int, cursor: int = 0, detail: str = "") -> Any:
    """A LostEvent about one stream (cursor 0: not an event of the ring, unless it stands for
    a gap of the ring, whose last lost cursor it then carries)."""
    lost = pb.LostEvent(source=source, num_events_lost=count,  # type: ignore[arg-type]
                        detail=detail)
    event = pb.Event(cursor=cursor, lost_events=lost)
    event.time.FromNanoseconds(time.time_ns())
    return event


@dataclass(slots=True)
class Opening:
    gap: Any  # a RING_OVERFLOW LostEvent for a resumed cursor, or None
    history: list[Chunk]
    follower: Follower | None


def open_flows(ring: EventRing, fanout: Fanout, request: Any, selection: Selection, *,
               queue_size: int, subject: str) -> Opening:
    """History per `request` (a GetFlowsRequest) and, with `follow`, the registered follower
    (remove it from `fanout` when the stream ends). FilterError for a bad `after`."""
    gap, history = _history(ring, request, selection)
    follower = None
    if request.follow:
        follower = Follower(selection, queue_size, subject)
        fanout.add(follower)
    return Opening(gap, history, follower)


def _history(ring: EventRing, request: Any, selection: Selection) -> tuple[Any, list[Chunk]]:
    if request.HasField("after"):
        start = request.after + 1
        if start > ring.next_cursor:
            raise FilterError("after", f"cursor {request.after} was never given out")
        detail = ""
        if start < ring.first_cursor:  # a cursor of an earlier run: always reported
            start, detail = ring.first_cursor, EARLIER_RUN
        missing = max(0, ring.oldest - start)
        gap = lost_event(pb.LOST_EVENT_SOURCE_RING_OVERFLOW, missing, cursor=ring.oldest - 1,
                         detail=detail) if missing or detail else None
        return gap, _matching(ring, ring.batches_from(max(start, ring.oldest)), selection, start)
    if request.follow and request.number == 0:
        return None, []
    limit = request.number or None
    batches = ring.batches_from(ring.oldest) if request.first else ring.batches_newest_first()
    picked: list[Chunk] = []
    flows = 0
    for batch in batches:
        rows = _pick(ring, batch, selection, 0)
        if limit is not None:
            rows = _limit(batch, rows, limit - flows, oldest=request.first)
        flows += int(np.count_nonzero(batch.columns["type"][rows] == TYPE_FLOW))
        if rows.size:
            picked.append(Chunk(batch, rows))
        if limit is not None and flows >= limit:
            break
    if not request.first:
        picked.reverse()
    return None, picked


def _limit(batch: EventBatch, rows: Index, wanted: int, *, oldest: bool) -> Index:
    """The first (or last) picked events holding `wanted` flow events: `number` counts
    flows; lost and node events between them come along."""
    is_flow = batch.columns["type"][rows] == TYPE_FLOW
    if int(np.count_nonzero(is_flow)) <= wanted:
        return rows
    order = np.cumsum(is_flow if oldest else is_flow[::-1])
    cut = int(np.searchsorted(order, wanted)) + 1
    return rows[:cut] if oldest else rows[len(rows) - cut:]


def _matching(ring: EventRing, batches: Iterable[EventBatch], selection: Selection,
              start: int) -> list[Chunk]:
    out = []
    for batch in batches:
        rows = _pick(ring, batch, selection, start)
        if rows.size:
            out.append(Chunk(batch, rows))
    return out


def _pick(ring: EventRing, batch: EventBatch, selection: Selection, start: int) -> Index:
    keep = selection.select(batch.columns, ring)
    if start > batch.first:
        keep[:start - batch.first] = False
    return np.flatnonzero(keep)
