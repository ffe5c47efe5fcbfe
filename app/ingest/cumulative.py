"""Cumulative values from a bounded number of sources: newest per source, summed over them.

A source is a counter epoch (the pinned kernel map's identity, or a dataplane process for
user-space counters) or a dataplane instance (for losses). What it reports is cumulative
since it started, so per source and key the highest value is kept — a resent or reordered
snapshot changes nothing — and totals are sums over sources (ADR 0006).

Sources come and go (every afpacket/pcap restart is a new one), and a dataplane names them
freely, so both dimensions are bounded. At most `max_keys` keys per source: more are
refused. At most `max_sources` sources: a new one retires the least recently updated one,
whose values are added to `retired` (totals do not move) and whose id is remembered among
the last RETIRED_IDS, so a late snapshot of it is refused instead of being counted twice.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

__all__ = ["RETIRED_IDS", "Cumulative"]

K = TypeVar("K", bound=Hashable)

RETIRED_IDS = 64  # retired source ids remembered (to refuse their late snapshots)


class Cumulative(Generic[K]):
    __slots__ = ("_retired_ids", "max_keys", "max_sources", "retired", "retirements", "sources")

    def __init__(self, max_sources: int, max_keys: int) -> None:
        self.max_sources = max_sources
        self.max_keys = max_keys
        self.sources: dict[str, dict[K, int]] = {}  # least recently updated first
        self.retired: dict[K, int] = {}  # sums of the retired sources
        self.retirements = 0
        self._retired_ids: dict[str, None] = {}  # insertion-ordered set, oldest first

    def update(self, source: str, values: Iterable[tuple[K, int]]) -> tuple[int, str]:
        """Max-merge `values` reported by `source`. Returns (refused, why): how many values
        were left out, and "keys" (past `max_keys`) or "retired" (a retired source)."""
        current = self.sources.get(source)
        if current is None:
            if source in self._retired_ids:
                return sum(1 for _ in values), "retired"
            if len(self.sources) >= self.max_sources:
                self._retire_oldest()
            current = self.sources[source] = {}
        elif next(reversed(self.sources)) != source:  # most recently updated goes last
            del self.sources[source]
            self.sources[source] = current
        refused = 0
        for key, value in values:
            old = current.get(key)
            if old is None:
                if len(current) >= self.max_keys:
                    refused += 1
                    continue
                current[key] = value
            elif value > old:
                current[key] = value
        return refused, "keys"

    def _retire_oldest(self) -> None:
        source, values = next(iter(self.sources.items()))
        del self.sources[source]
        for key, value in values.items():
            if key in self.retired or len(self.retired) < self.max_keys:
                self.retired[key] = self.retired.get(key, 0) + value
        self._retired_ids[source] = None
        while len(self._retired_ids) > RETIRED_IDS:
            del self._retired_ids[next(iter(self._retired_ids))]
        self.retirements += 1

    def value(self, source: str, key: K) -> int:
        """What `source` reported for `key` (0 if nothing)."""
        return self.sources.get(source, {}).get(key, 0)

    def totals(self) -> dict[K, int]:
        out = dict(self.retired)
        for values in self.sources.values():
            for key, value in values.items():
                out[key] = out.get(key, 0) + value
        return out

    def prune(self, keep: Callable[[K], bool]) -> None:
        """Forget every key for which `keep` is false (rules no longer in the rule set)."""
        for values in (*self.sources.values(), self.retired):
            for key in [k for k in values if not keep(k)]:
                del values[key]

    def __len__(self) -> int:
        """Keys held, over every source and the retired sums."""
        return len(self.retired) + sum(len(v) for v in self.sources.values())
