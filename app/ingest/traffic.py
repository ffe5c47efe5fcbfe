"""The last few seconds of one interface's per-tick traffic aggregates, merged for the API.

Dataplanes send one `TrafficAggregate` per tick (frames and bytes, top hosts and ports by
bytes and by packets, every protocol, TCP/UDP packets by port band). A tick of 100 ms is too
short to read, so each interface keeps the ticks of the last WINDOW_NS of its own clock
(capture time for a pcap replay, so a finished replay stays visible and a replay at full
speed shows its recorded rate) and the view sums them. Totals, protocols and port bands are
exact sums; a host or port is counted in the ticks where it made that tick's top list, so the
top lists are exact while fewer keys compete than a tick lists, and lower bounds
("approximate": true) otherwise.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_TICKS", "TOP_N", "WINDOW_NS", "TrafficWindow"]

WINDOW_NS = 10 * 10**9
MAX_TICKS = 1000  # bound even for very short ticks
TOP_N = 10


def _merge(into: dict[str, list[int]], lists: Iterable[Iterable[Any]]) -> None:
    """Add one tick's talkers (a key may be in several of its lists: counted once)."""
    seen: dict[str, tuple[int, int]] = {}
    for talkers in lists:
        for t in talkers:
            seen[t.key] = (t.packets, t.bytes)
    for key, (packets, octets) in seen.items():
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
    ticks: deque[Any] = field(default_factory=lambda: deque(maxlen=MAX_TICKS))
    newest_ns: int = 0
    _view: dict[str, Any] | None = None  # until the next add (the hub publishes every tick)

    def add(self, message: Any) -> None:
        """Append one TrafficAggregate and drop ticks older than the window."""
        self.newest_ns = max(self.newest_ns, message.end_unix_ns)
        self.ticks.append(message)
        self._view = None
        while self.ticks and self.ticks[0].end_unix_ns <= self.newest_ns - WINDOW_NS:
            self.ticks.popleft()

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
            _merge(hosts, (tick.top_hosts_by_bytes, tick.top_hosts_by_packets))
            _merge(ports, (tick.top_ports_by_bytes, tick.top_ports_by_packets))
            _merge(protocols, (tick.protocols,))
            bands[0] += tick.port_packets_well_known
            bands[1] += tick.port_packets_registered
            bands[2] += tick.port_packets_dynamic
            full = max(len(tick.top_hosts_by_bytes), len(tick.top_ports_by_bytes))
            approximate |= bool(tick.hosts_truncated) or full >= TOP_N
        start = min(t.start_unix_ns for t in self.ticks)
        end = max(t.end_unix_ns for t in self.ticks)
        seconds = (end - start) / 1e9
        return {
            "window_seconds": round(seconds, 3),
            "ticks": len(self.ticks),
            "start_unix_ns": start,
            "end_unix_ns": end,
            "packets": packets,
            "bytes": octets,
            "malformed": malformed,
            "pps": round(packets / seconds, 3) if seconds > 0 else 0.0,
            "bps": round(octets * 8 / seconds, 3) if seconds > 0 else 0.0,
            "top_hosts_by_bytes": _ranked(hosts, 1, "host"),
            "top_hosts_by_packets": _ranked(hosts, 0, "host"),
            "top_ports_by_bytes": _ranked(ports, 1, "port"),
            "top_ports_by_packets": _ranked(ports, 0, "port"),
            "protocols": _ranked(protocols, 1, "name", limit=None),
            "port_bands": {"well_known": bands[0], "registered": bands[1], "dynamic": bands[2]},
            "approximate": approximate,
        }
