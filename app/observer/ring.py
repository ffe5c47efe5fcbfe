"""The observer's event ring: the newest events, as batches of columns plus encoded entries.

A batch is what one step of the ingest produced (one slice of a dataplane batch's flow records,
or one lost/node event). It is encoded once — every event as a ready `GetFlowsResponse.events`
entry on the wire (tag, length, `Event` bytes) — and kept with its filter columns, so a
follower costs one numpy mask and one `b"".join` per batch, never a Python step per event.

Cursors are consecutive: a batch holds [first, first + n). They start at the process's start
time in microseconds, so a cursor of an earlier run of the control plane is always below this
run's (`first_cursor`) as long as it gave out fewer than a million events a second on average.
The ring keeps whole batches: it
evicts the oldest while the rest still hold `capacity` events, so once full it holds at least
`capacity` and less than `capacity` + one batch (`ServerStatus` reports the fill).
"""

from __future__ import annotations

import bisect
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = [
    "EVENT_DTYPE",
    "OVERFLOW_ID",
    "TYPE_FLOW",
    "TYPE_LOST",
    "TYPE_NODE",
    "EventBatch",
    "EventRing",
    "Interner",
]

TYPE_FLOW, TYPE_LOST, TYPE_NODE = 0, 1, 2

# One row per event: what the filters look at. Addresses are 128-bit (IPv4 as ::ffff:a.b.c.d)
# in two big-endian halves; names are indices into the ring's interners.
EVENT_DTYPE = np.dtype([
    ("type", np.uint8),
    ("kind", np.uint8),       # EventKind (flows)
    ("node", np.uint32),      # ring.nodes index
    ("iface", np.uint32),     # ring.interfaces index
    ("ifindex", np.uint32),   # the dataplane's ifindex of the interface (IPFIX export)
    ("src_hi", np.uint64),
    ("src_lo", np.uint64),
    ("dst_hi", np.uint64),
    ("dst_lo", np.uint64),
    ("ipv", np.uint8),        # 4 or 6
    ("sport", np.uint16),
    ("dport", np.uint16),
    ("proto", np.uint8),
    ("vlan", np.uint16),
    ("flags", np.uint8),      # TCP flags seen
    ("state", np.uint8),      # FlowState
    ("end", np.uint8),        # EndReason
    ("verdict", np.uint8),    # Verdict
    ("time", np.uint64),      # ns since the epoch
])

Columns = npt.NDArray[np.void]


OVERFLOW_ID = 0xFFFFFFFF  # a name past the interner's bound: matches no name filter


class Interner:
    """Names (node ids, interface names) ↔ small integers, for integer columns. Bounded: a
    dataplane names its interfaces freely, so past `max_names` new names (or one longer than
    `max_length`) get OVERFLOW_ID — they still travel in the events, only a filter on them
    cannot match — and are counted in `overflowed`."""

    __slots__ = ("_ids", "max_length", "max_names", "names", "overflowed")

    def __init__(self, max_names: int = 65_536, max_length: int = 256) -> None:
        self._ids: dict[str, int] = {}
        self.names: list[str] = []
        self.max_names = max_names
        self.max_length = max_length
        self.overflowed = 0

    def id(self, name: str) -> int:
        found = self._ids.get(name)
        if found is None:
            if len(self.names) >= self.max_names or len(name) > self.max_length:
                self.overflowed += 1
                return OVERFLOW_ID
            found = self._ids[name] = len(self.names)
            self.names.append(name)
        return found

    def get(self, name: str) -> int | None:
        return self._ids.get(name)


@dataclass(slots=True)
class EventBatch:
    """Events [first, first + len(entries)): their columns and encoded entries."""

    first: int
    columns: Columns
    entries: list[bytes]
    json: list[bytes] | None = None  # the same events as JSON, made on first demand (WS)

    @property
    def end(self) -> int:
        """One past the last cursor."""
        return self.first + len(self.entries)


@dataclass(slots=True)
class EventRing:
    capacity: int
    nodes: Interner = field(default_factory=Interner)
    interfaces: Interner = field(default_factory=Interner)
    _batches: deque[EventBatch] = field(default_factory=deque)
    _firsts: deque[int] = field(default_factory=deque)  # first cursor of each batch (bisect)
    held: int = 0  # events in the ring now
    next_cursor: int = field(default_factory=lambda: time.time_ns() // 1000)
    first_cursor: int = 0  # the first cursor of this run
    events_seen: int = 0
    flows_seen: int = 0

    def __post_init__(self) -> None:
        self.first_cursor = self.next_cursor

    @property
    def oldest(self) -> int:
        """The oldest cursor held (== next_cursor when empty)."""
        return self._batches[0].first if self._batches else self.next_cursor

    @property
    def newest(self) -> int:
        """The newest cursor given out (first_cursor - 1 before the first event)."""
        return self.next_cursor - 1

    def append(self, columns: Columns, entries: list[bytes], *, flows: int = 0) -> EventBatch:
        """Keep a batch whose entries were encoded with cursors from `next_cursor` on."""
        batch = EventBatch(self.next_cursor, columns, entries)
        self._batches.append(batch)
        self._firsts.append(batch.first)
        count = len(entries)
        self.next_cursor += count
        self.held += count
        self.events_seen += count
        self.flows_seen += flows
        while self.held - len(self._batches[0].entries) >= self.capacity:
            self.held -= len(self._batches.popleft().entries)
            self._firsts.popleft()
        return batch

    def batches_from(self, cursor: int) -> Iterator[EventBatch]:
        """Batches holding `cursor` and later, oldest first (a snapshot: safe while appending)."""
        if not self._batches:
            return iter(())
        index = max(0, bisect.bisect_right(self._firsts, cursor) - 1)
        return iter(list(self._batches)[index:])

    def batches_newest_first(self) -> Iterator[EventBatch]:
        return iter(list(reversed(self._batches)))
