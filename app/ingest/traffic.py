"""The last few seconds of one interface's per-tick traffic aggregates, merged for the API.

Dataplanes send one `TrafficAggregate` per tick (frames and bytes, top hosts and ports by
bytes and by packets, every protocol, TCP/UDP packets by port band). A tick of 100 ms is too
short to read, so each interface keeps the ticks of the last WINDOW_NS of its own clock
(capture time for a pcap replay, so a finished replay stays visible and a replay at full
speed shows its recorded rate) and the view sums them; a new dataplane process or a clock
stepping back starts the window afresh. Totals, protocols and port bands are
exact sums; a host or port is counted in the ticks where it made that tick's top list, so the
top lists are exact while fewer keys compete than a tick lists, and lower bounds
("approximate": true) otherwise.

Bounded, since a dataplane chooses what an aggregate lists: at most MAX_TALKERS rows per
top list and MAX_PROTOCOLS protocol rows are kept per tick (the rest, and rows whose key is
longer than MAX_TEXT, are left out and reported to the caller, which counts them), and the
window keeps at most MAX_WINDOW_ENTRIES rows over all its ticks — past that the oldest
ticks leave early, so the view covers less than WINDOW_NS (its `window_seconds` says how
much). A dataplane at its 100 ms default tick sends ~30 rows a tick: ~3,000 for 10 s.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from app.ingest.limits import MAX_PROTOCOLS, MAX_TALKERS, MAX_TEXT

__all__ = ["MAX_TICKS", "MAX_WINDOW_ENTRIES", "TOP_N", "WINDOW_NS", "TrafficWindow"]

WINDOW_NS = 10 * 10**9
MAX_TICKS = 1000  # bound even for very short ticks
MAX_WINDOW_ENTRIES = 8192  # talker and protocol rows over every tick of one window
TOP_N = 10  # rows the view lists


@dataclass(slots=True, frozen=True)
class _Tick:
    """One TrafficAggregate as plain data: keeping the message would keep its whole parsed
    batch (flow records included) alive in protobuf's arena."""

    start_ns: int
    end_ns: int
    packets: int
    bytes: int
    malformed: int
    hosts: dict[str, tuple[int, int]]  # one tick's talkers: a key in both lists counts once
    ports: dict[str, tuple[int, int]]
    protocols: dict[str, tuple[int, int]]
    bands: tuple[int, int, int]
    approximate: bool

    @property
    def entries(self) -> int:
        return len(self.hosts) + len(self.ports) + len(self.protocols)

    @classmethod
    def of(cls, message: Any) -> tuple[_Tick, int, int]:
        """The tick, and how many rows were left out: past a list's bound, and too long."""
        left_out = too_long = 0

        def talkers(limit: int, *lists: Any) -> dict[str, tuple[int, int]]:
            nonlocal left_out, too_long
            out: dict[str, tuple[int, int]] = {}
            for rows in lists:
                left_out += max(0, len(rows) - limit)
                for t in rows[:limit]:
                    if len(t.key) > MAX_TEXT:
                        too_long += 1
                    else:
                        out[t.key] = (t.packets, t.bytes)
            return out

        full = max(len(message.top_hosts_by_bytes), len(message.top_ports_by_bytes))
        tick = cls(
            message.start_unix_ns, message.end_unix_ns, message.packets, message.bytes,
            message.malformed,
            talkers(MAX_TALKERS, message.top_hosts_by_bytes, message.top_hosts_by_packets),
            talkers(MAX_TALKERS, message.top_ports_by_bytes, message.top_ports_by_packets),
            talkers(MAX_PROTOCOLS, message.protocols),
            (message.port_packets_well_known, message.port_packets_registered,
             message.port_packets_dynamic),
            bool(message.hosts_truncated) or full >= min(message.top_n or TOP_N, MAX_TALKERS),
        )
        return tick, left_out, too_long


def _add(into: dict[str, list[int]], talkers: dict[str, tuple[int, int]]) -> None:
    for key, (packets, octets) in talkers.items():
        slot = into.setdefault(key, [0, 0])
        slot[0] += packets
        slot[1] += octets


def _ranked(totals: dict[str, list[int]], by: int, name: str,
            limit: int | None = TOP_N) -> list[dict[str, Any]]:
    """Rows by packets (by=0) or bytes (by=1), then the other, then key."""
    order = sorted(totals.items(), key=lambda item: (-item[1][by], -item[1][1 - by], item[0]))
    out: list[dict[str, Any]] = []
    for key, (packets, octets) in order[:limit]:
        out.append({name: int(key) if name == "port" else key, "packets": packets,
                    "bytes": octets})
    return out


@dataclass(slots=True)
class TrafficWindow:
    ticks: deque[_Tick] = field(default_factory=deque)
    newest_ns: int = 0
    instance: str = ""  # the dataplane process the ticks come from
    received_ns: int = 0  # wall clock when the newest tick arrived
    entries: int = 0  # rows over every tick held
    _view: dict[str, Any] | None = None  # until the next add (the hub publishes every tick)

    def add(self, message: Any, instance: str = "") -> tuple[int, int]:
        """Append one TrafficAggregate and drop ticks older than the window. A tick from
        another dataplane process, or from before the newest one (a pcap replayed again, a
        clock stepped back), starts the window afresh instead of mixing two timelines.
        Returns the rows left out (past a list's bound, too long) for the caller to count."""
        tick, left_out, too_long = _Tick.of(message)
        if instance != self.instance or tick.end_ns < self.newest_ns:
            self.ticks.clear()
            self.entries = 0
            self.newest_ns = 0
            self.instance = instance
        self.newest_ns = max(self.newest_ns, tick.end_ns)
        self.received_ns = time.time_ns()
        self.ticks.append(tick)
        self.entries += tick.entries
        while self.ticks and (self.ticks[0].end_ns <= self.newest_ns - WINDOW_NS
                              or len(self.ticks) > MAX_TICKS
                              or (self.entries > MAX_WINDOW_ENTRIES and len(self.ticks) > 1)):
            self.entries -= self.ticks.popleft().entries
        self._view = None
        return left_out, too_long

    def view(self) -> dict[str, Any] | None:
        if self._view is None and self.ticks:
            self._view = self._merged()
        return self._view

    def _merged(self) -> dict[str, Any]:
        hosts: dict[str, list[int]] = {}
        ports: dict[str, list[int]] = {}
        protocols: dict[str, list[int]] = {}
        bands = [0, 0, 0]
        packets = octets = malformed = 0
        approximate = False
        for tick in self.ticks:
            packets += tick.packets
            octets += tick.bytes
            malformed += tick.malformed
            _add(hosts, tick.hosts)
            _add(ports, tick.ports)
            _add(protocols, tick.protocols)
            for i in range(3):
                bands[i] += tick.bands[i]
            approximate |= tick.approximate
        start = min(t.start_ns for t in self.ticks)
        end = max(t.end_ns for t in self.ticks)
        seconds = (end - start) / 1e9
        return {
            "window_seconds": round(seconds, 3),
            "ticks": len(self.ticks),
            "start_unix_ns": start,
            "end_unix_ns": end,
            "received_unix_ns": self.received_ns,
            "packets": packets,
            "bytes": octets,
            "malformed": malformed,
            "pps": round(packets / seconds, 3) if seconds > 0 else None,
            "bps": round(octets * 8 / seconds, 3) if seconds > 0 else None,
            "top_hosts_by_bytes": _ranked(hosts, 1, "host"),
            "top_hosts_by_packets": _ranked(hosts, 0, "host"),
            "top_ports_by_bytes": _ranked(ports, 1, "port"),
            "top_ports_by_packets": _ranked(ports, 0, "port"),
            "protocols": _ranked(protocols, 1, "name", limit=None),
            "port_bands": {"well_known": bands[0], "registered": bands[1], "dynamic": bands[2]},
            "approximate": approximate,
        }
