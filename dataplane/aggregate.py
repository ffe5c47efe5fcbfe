"""Per-tick aggregates: top talkers (hosts, ports), protocol and port distribution, per-interface
rates. Batches are folded in with numpy (`add`), and `tick` turns them into a snapshot.

Conventions (deterministic, so tests can pin them):
- a packet counts for both its source and its destination host (traffic sent + received);
- the port of a TCP/UDP packet is its service port, the lower of source and destination port;
- ties in top-N lists break by the smaller key.
The host accumulator is bounded: when it holds more than `host_buffer` rows it is compacted and,
if a flood of distinct sources keeps it above half that size, only the heaviest hosts are kept
(`hosts_truncated` counts the rows dropped, so a top list built from it is marked approximate).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from dataplane.bpf.rules import PROTOCOLS
from dataplane.flowtable import FlowDeltas, _addr_words
from dataplane.parse import ParsedBatch

__all__ = [
    "AggregateSnapshot",
    "Aggregator",
    "InterfaceRate",
    "PortBands",
    "ProtocolShare",
    "Talker",
]

PROTO_NAMES = {number: name for name, number in PROTOCOLS.items()}

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]


@dataclass(slots=True)
class Talker:
    key: str  # host address ("10.0.0.1", "2001:db8::1") or port number as text
    packets: int
    bytes: int


@dataclass(slots=True)
class InterfaceRate:
    ifindex: int
    packets: int
    bytes: int
    pps: float
    bps: float  # bits per second
    malformed: int
    non_ip: int


@dataclass(slots=True)
class ProtocolShare:
    name: str  # "tcp", "udp", "icmp", "icmpv6", "ip-<n>", or "non-ip"
    packets: int
    bytes: int


@dataclass(slots=True)
class PortBands:
    """TCP/UDP packets by service-port band (IANA ranges)."""

    well_known: int = 0  # 0-1023
    registered: int = 0  # 1024-49151
    dynamic: int = 0  # 49152-65535


@dataclass(slots=True)
class AggregateSnapshot:
    start_ns: int
    end_ns: int
    interfaces: list[InterfaceRate]
    top_hosts_by_bytes: list[Talker]
    top_hosts_by_packets: list[Talker]
    top_ports_by_bytes: list[Talker]
    top_ports_by_packets: list[Talker]
    protocols: list[ProtocolShare]
    port_bands: PortBands
    malformed: dict[str, int] = field(default_factory=dict)
    hosts_truncated: int = 0

    @property
    def seconds(self) -> float:
        return max(0.0, (self.end_ns - self.start_ns) / 1e9)


def _fmt_host(hi: int, lo: int) -> str:
    ip = ipaddress.IPv6Address((hi << 64) | lo)
    return str(ip.ipv4_mapped) if ip.ipv4_mapped is not None else str(ip)


def _top(keys: I64, values: I64, other: I64, n: int) -> npt.NDArray[np.intp]:
    """Indices of the n largest `values` (ties: larger `other`, then smaller key)."""
    nz = np.flatnonzero(values > 0)
    order = np.lexsort((keys[nz], -other[nz], -values[nz]))
    return nz[order[:n]]


class Aggregator:
    """Folds parsed batches into the current tick; `tick(now_ns)` closes it."""

    def __init__(self, top_n: int = 10, host_buffer: int = 1 << 16) -> None:
        self.top_n = top_n
        self.host_buffer = host_buffer
        self._start_ns: int | None = None
        self._reset()

    def _reset(self) -> None:
        self._port_pk = np.zeros(65536, np.int64)
        self._port_by = np.zeros(65536, np.int64)
        self._proto_pk = np.zeros(256, np.int64)
        self._proto_by = np.zeros(256, np.int64)
        self._nonip_pk = 0
        self._nonip_by = 0
        self._ifaces: dict[int, list[int]] = {}  # ifindex -> [packets, bytes, malformed, non_ip]
        self._malformed: dict[str, int] = {}
        self._hosts: list[tuple[U64, U64, I64, I64]] = []
        self._host_rows = 0
        self._truncated = 0

    def add(self, parsed: ParsedBatch, flows: FlowDeltas | None = None) -> None:
        """Fold one batch in. Pass `flows=table.last_deltas()` right after
        `FlowTable.update(parsed)` to count hosts, ports and protocols per flow instead of
        per packet (same results, a fraction of the work)."""
        n = len(parsed)
        if n == 0:
            return
        if self._start_ns is None:
            self._start_ns = int(parsed.ts_ns.min())
        length = parsed.wire_len.astype(np.int64)
        ip = parsed.flow_mask
        bad = parsed.malformed != 0
        nonip = ~ip & ~bad

        # per interface (usually one value per batch)
        ifx = parsed.ifindex
        single = bool((ifx == ifx[0]).all())
        for i in [int(ifx[0])] if single else np.unique(ifx).tolist():
            acc = self._ifaces.setdefault(int(i), [0, 0, 0, 0])
            if single:
                acc[0] += n
                acc[1] += int(length.sum())
                acc[2] += int(bad.sum())
                acc[3] += int(nonip.sum())
                continue
            rows = ifx == i
            acc[0] += int(rows.sum())
            acc[1] += int(length[rows].sum())
            acc[2] += int((bad & rows).sum())
            acc[3] += int((nonip & rows).sum())
        for reason, count in parsed.malformed_counts().items():
            self._malformed[reason] = self._malformed.get(reason, 0) + count

        self._nonip_pk += int(nonip.sum())
        self._nonip_by += int(length[nonip].sum())
        if flows is not None:
            self._add_flows(flows)
            return
        proto = parsed.proto[ip]
        iplen = length[ip]
        np.add.at(self._proto_pk, proto, 1)
        np.add.at(self._proto_by, proto, iplen)

        ported = (
            ip
            & ((parsed.proto == 6) | (parsed.proto == 17))
            & ~((parsed.sport == 0) & (parsed.dport == 0))
        )
        port = np.minimum(parsed.sport[ported], parsed.dport[ported])
        np.add.at(self._port_pk, port, 1)
        np.add.at(self._port_by, port, length[ported])

        s_hi, s_lo = _addr_words(parsed.src[ip])
        d_hi, d_lo = _addr_words(parsed.dst[ip])
        self._add_hosts(
            np.concatenate([s_hi, d_hi]),
            np.concatenate([s_lo, d_lo]),
            np.ones(2 * iplen.shape[0], np.int64),
            np.concatenate([iplen, iplen]),
        )

    def _add_flows(self, f: FlowDeltas) -> None:
        pk = f.packets.astype(np.int64)
        by = f.bytes.astype(np.int64)
        np.add.at(self._proto_pk, f.proto, pk)
        np.add.at(self._proto_by, f.proto, by)
        ported = ((f.proto == 6) | (f.proto == 17)) & ~((f.port_a == 0) & (f.port_b == 0))
        port = np.minimum(f.port_a[ported], f.port_b[ported])
        np.add.at(self._port_pk, port, pk[ported])
        np.add.at(self._port_by, port, by[ported])
        self._add_hosts(
            np.concatenate([f.a_hi, f.b_hi]),
            np.concatenate([f.a_lo, f.b_lo]),
            np.concatenate([pk, pk]),
            np.concatenate([by, by]),
        )

    def _add_hosts(self, hi: U64, lo: U64, pk: I64, by: I64) -> None:
        """Each row counts `pk` packets and `by` bytes for host (hi, lo)."""
        self._hosts.append(self._reduce_hosts(hi, lo, pk, by))
        self._host_rows += self._hosts[-1][0].shape[0]
        if self._host_rows > self.host_buffer:
            self._compact()

    @staticmethod
    def _reduce_hosts(hi: U64, lo: U64, pk: I64, by: I64) -> tuple[U64, U64, I64, I64]:
        if hi.shape[0] == 0:
            return hi, lo, pk, by
        # IPv4-only batches (all v4-mapped) sort on one word
        order = np.argsort(lo) if not hi.any() else np.lexsort((lo, hi))
        hi, lo, pk, by = hi[order], lo[order], pk[order], by[order]
        start = np.ones(hi.shape[0], np.bool_)
        start[1:] = (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])
        idx = np.flatnonzero(start)
        return hi[idx], lo[idx], np.add.reduceat(pk, idx), np.add.reduceat(by, idx)

    def _compact(self, bound: bool = True) -> None:
        """Merge the host parts into one; with `bound`, keep at most host_buffer // 2 rows."""
        parts = self._hosts
        hi, lo, pk, by = (np.concatenate([p[i] for p in parts]) for i in range(4))
        hi, lo, pk, by = self._reduce_hosts(hi, lo, pk, by)  # type: ignore[arg-type]
        keep = self.host_buffer // 2
        # a flood of distinct hosts: keep the heaviest, count the rest
        if bound and hi.shape[0] > keep:
            top = np.argpartition(-by, keep - 1)[:keep]
            top.sort()
            self._truncated += int(hi.shape[0] - keep)
            hi, lo, pk, by = hi[top], lo[top], pk[top], by[top]
        self._hosts = [(hi, lo, pk, by)]  # type: ignore[list-item]
        self._host_rows = int(hi.shape[0])

    def tick(self, now_ns: int) -> AggregateSnapshot:
        """Close the current tick at `now_ns` (frame clock) and start the next one."""
        start = self._start_ns if self._start_ns is not None else now_ns
        secs = max(0.0, (now_ns - start) / 1e9)
        n = self.top_n

        interfaces = [
            InterfaceRate(
                ifindex=i,
                packets=a[0],
                bytes=a[1],
                pps=a[0] / secs if secs else 0.0,
                bps=a[1] * 8 / secs if secs else 0.0,
                malformed=a[2],
                non_ip=a[3],
            )
            for i, a in sorted(self._ifaces.items())
        ]

        if self._hosts:
            self._compact(bound=False)
        hosts_by_bytes: list[Talker] = []
        hosts_by_packets: list[Talker] = []
        if self._hosts:
            hi, lo, pk, by = self._hosts[0]
            keys = np.arange(hi.shape[0], dtype=np.int64)  # rows are sorted by address
            hosts_by_bytes = [
                Talker(_fmt_host(int(hi[j]), int(lo[j])), int(pk[j]), int(by[j]))
                for j in _top(keys, by, pk, n)
            ]
            hosts_by_packets = [
                Talker(_fmt_host(int(hi[j]), int(lo[j])), int(pk[j]), int(by[j]))
                for j in _top(keys, pk, by, n)
            ]

        ports = np.arange(65536, dtype=np.int64)
        ports_by_bytes = [
            Talker(str(p), int(self._port_pk[p]), int(self._port_by[p]))
            for p in _top(ports, self._port_by, self._port_pk, n)
        ]
        ports_by_packets = [
            Talker(str(p), int(self._port_pk[p]), int(self._port_by[p]))
            for p in _top(ports, self._port_pk, self._port_by, n)
        ]
        bands = PortBands(
            well_known=int(self._port_pk[:1024].sum()),
            registered=int(self._port_pk[1024:49152].sum()),
            dynamic=int(self._port_pk[49152:].sum()),
        )
        protocols = [
            ProtocolShare(
                PROTO_NAMES.get(p, f"ip-{p}"), int(self._proto_pk[p]), int(self._proto_by[p])
            )
            for p in np.flatnonzero(self._proto_pk).tolist()
        ]
        if self._nonip_pk:
            protocols.append(ProtocolShare("non-ip", self._nonip_pk, self._nonip_by))
        protocols.sort(key=lambda s: (-s.bytes, s.name))

        snap = AggregateSnapshot(
            start_ns=start,
            end_ns=now_ns,
            interfaces=interfaces,
            top_hosts_by_bytes=hosts_by_bytes,
            top_hosts_by_packets=hosts_by_packets,
            top_ports_by_bytes=ports_by_bytes,
            top_ports_by_packets=ports_by_packets,
            protocols=protocols,
            port_bands=bands,
            malformed=dict(sorted(self._malformed.items())),
            hosts_truncated=self._truncated,
        )
        self._reset()
        self._start_ns = now_ns
        return snap
