"""GetFlows filters, compiled once per request and applied to whole batches with numpy.

A `FlowFilter` is an AND of its set fields, each field an OR of its values; a request keeps
(any allow filter, or everything) minus (any deny filter), within [since, until] and the
nodes the caller may see. Each criterion is one small function over the batch's columns
(`ring.EVENT_DTYPE`); lost and node events pass every flow criterion (time and node
visibility still apply). Bad values raise `FilterError` naming the field, which the service
answers with INVALID_ARGUMENT.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from app.observer.ring import TYPE_FLOW, Columns, EventRing, Interner
from app.rulespec import PROTOCOLS
from floe.observer.v1 import observer_pb2 as pb

__all__ = [
    "FLOW_FIELDS",
    "MAX_CIDRS",
    "MAX_FILTERS",
    "MAX_TOTAL_VALUES",
    "MAX_VALUES",
    "TCP_FLAGS",
    "FilterError",
    "Selection",
    "compile_filter",
    "compile_selection",
]

MAX_FILTERS = 64  # allow + deny filters in one request
MAX_VALUES = 256  # values in one repeated field of one filter
# A request's whole filter runs on the event loop for every batch of every follower: bound
# its total work, not only each field (64 x 256 CIDRs measured 0.49 s a batch).
MAX_TOTAL_VALUES = 1024  # values in all fields of all filters of one request
MAX_CIDRS = 64  # addresses and CIDRs (source_ip, destination_ip, ip) in one request

TCP_FLAGS = {"FIN": 0x01, "SYN": 0x02, "RST": 0x04, "PSH": 0x08, "ACK": 0x10, "URG": 0x20,
             "ECE": 0x40, "CWR": 0x80}
FLOW_FIELDS = frozenset(pb.Flow.DESCRIPTOR.fields_by_name)

Mask = npt.NDArray[np.bool_]
Criterion = Callable[[Columns, EventRing], Mask]


class FilterError(ValueError):
    """A request field that cannot be used; `field` names it (e.g. "allow[0].source_ip")."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass(slots=True, frozen=True)
class Cidr:
    """A network as 128-bit halves (IPv4 as ::ffff:0:0/96 + prefix)."""

    net_hi: np.uint64
    net_lo: np.uint64
    mask_hi: np.uint64
    mask_lo: np.uint64


def parse_cidr(text: str, where: str) -> Cidr:
    try:
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise FilterError(where, f"{text!r} is not an IP address or CIDR") from None
    if isinstance(network, ipaddress.IPv4Network):
        value = (0xFFFF << 32) | int(network.network_address)
        prefix = 96 + network.prefixlen
    else:
        value, prefix = int(network.network_address), network.prefixlen
    mask = ((1 << 128) - 1) ^ ((1 << (128 - prefix)) - 1)
    return Cidr(np.uint64(value >> 64), np.uint64(value & (2**64 - 1)),
                np.uint64(mask >> 64), np.uint64(mask & (2**64 - 1)))


def _in_cidrs(hi: npt.NDArray[np.uint64], lo: npt.NDArray[np.uint64],
              cidrs: list[Cidr]) -> Mask:
    out = np.zeros(hi.shape, np.bool_)
    for c in cidrs:
        out |= ((hi & c.mask_hi) == c.net_hi) & ((lo & c.mask_lo) == c.net_lo)
    return out


_SMALL = 8  # up to this many values, OR-ed comparisons beat np.isin (which sorts: ~30 us a call)


def isin(column: npt.NDArray[Any], values: Sequence[int]) -> Mask:
    """`column` equal to any of `values` (the common case: a handful)."""
    if len(values) <= _SMALL:
        out = np.zeros(column.shape, np.bool_)
        for value in values:
            out |= column == value
        return out
    return np.isin(column, np.asarray(values))


def _values(values: Iterable[Any], where: str) -> list[Any]:
    items = list(values)
    if len(items) > MAX_VALUES:
        raise FilterError(where, f"at most {MAX_VALUES} values")
    return items


# --- criteria: one per filter field -------------------------------------------------------

def _source_ip(cidrs: list[Cidr]) -> Criterion:
    return lambda c, _r: _in_cidrs(c["src_hi"], c["src_lo"], cidrs)


def _destination_ip(cidrs: list[Cidr]) -> Criterion:
    return lambda c, _r: _in_cidrs(c["dst_hi"], c["dst_lo"], cidrs)


def _either_ip(cidrs: list[Cidr]) -> Criterion:
    return lambda c, _r: (_in_cidrs(c["src_hi"], c["src_lo"], cidrs)
                          | _in_cidrs(c["dst_hi"], c["dst_lo"], cidrs))


def _column_in(column: str, wanted: list[int]) -> Criterion:
    values = sorted(set(wanted))
    return lambda c, _r: isin(c[column], values)


def _either_port(ports: list[int]) -> Criterion:
    values = sorted(set(ports))
    return lambda c, _r: isin(c["sport"], values) | isin(c["dport"], values)


def _named(column: str, names: list[str], interner: Callable[[EventRing], Interner]) -> Criterion:
    """Names resolved at match time: a node or interface first seen later still matches, and
    an unknown one matches nothing (an empty result, not an error)."""
    wanted = sorted(set(names))

    def match(c: Columns, ring: EventRing) -> Mask:
        table = interner(ring)
        return isin(c[column], [i for i in (table.get(name) for name in wanted) if i is not None])

    return match


def _tcp_flags(sets: list[int]) -> Criterion:
    def match(c: Columns, _r: EventRing) -> Mask:
        flags = c["flags"]
        out = np.zeros(flags.shape, np.bool_)
        for bits in sets:
            out |= (flags & np.uint8(bits)) == bits
        return out

    return match


# --- compiling ------------------------------------------------------------------------------

def _ports(values: Iterable[int], where: str) -> list[int]:
    ports = _values(values, where)
    for port in ports:
        if not 0 <= port <= 65535:
            raise FilterError(where, f"{port} is not a port (0-65535)")
    return ports


def _protocols(values: Iterable[str], where: str) -> list[int]:
    out = []
    for text in _values(values, where):
        name = text.strip().lower()
        if name in PROTOCOLS:
            out.append(PROTOCOLS[name])
        elif name.isdigit() and int(name) <= 255:
            out.append(int(name))
        else:
            raise FilterError(where, f"{text!r} is not a protocol (a name: "
                              f"{', '.join(sorted(PROTOCOLS))}; or a number 0-255)")
    return out


def _flag_sets(values: Iterable[str], where: str) -> list[int]:
    out = []
    for text in _values(values, where):
        bits = 0
        for name in text.replace("|", ",").split(","):
            flag = TCP_FLAGS.get(name.strip().upper())
            if flag is None:
                raise FilterError(where, f"{name.strip()!r} is not a TCP flag "
                                  f"({' '.join(TCP_FLAGS)})")
            bits |= flag
        out.append(bits)
    return out


def _enums(values: Iterable[int], enum: Any, where: str) -> list[int]:
    known = set(enum.values())
    items = _values(values, where)
    for value in items:
        if value not in known:
            raise FilterError(where, f"{value} is not a {enum.DESCRIPTOR.name} value")
    return items


def _names(values: Iterable[str], where: str) -> list[str]:
    items = _values(values, where)
    for name in items:
        if not 0 < len(name) <= 128:
            raise FilterError(where, "names are 1-128 characters")
    return items


@dataclass(slots=True)
class CompiledFilter:
    criteria: list[Criterion] = field(default_factory=list)

    def match(self, columns: Columns, ring: EventRing) -> Mask:
        out = np.ones(columns.shape, np.bool_)
        for criterion in self.criteria:
            out &= criterion(columns, ring)
        return out


def compile_filter(flow_filter: Any, where: str) -> CompiledFilter:
    """One `FlowFilter`; `where` names it in errors (e.g. "allow[2]")."""
    f, out = flow_filter, CompiledFilter()
    add = out.criteria.append
    for name, build in (("source_ip", _source_ip), ("destination_ip", _destination_ip),
                        ("ip", _either_ip)):
        values = _values(getattr(f, name), f"{where}.{name}")
        if values:
            add(build([parse_cidr(v, f"{where}.{name}") for v in values]))
    if f.source_port:
        add(_column_in("sport", _ports(f.source_port, f"{where}.source_port")))
    if f.destination_port:
        add(_column_in("dport", _ports(f.destination_port, f"{where}.destination_port")))
    if f.port:
        add(_either_port(_ports(f.port, f"{where}.port")))
    if f.protocol:
        add(_column_in("proto", _protocols(f.protocol, f"{where}.protocol")))
    if f.ip_version:
        versions = _enums(f.ip_version, pb.IPVersion, f"{where}.ip_version")
        add(_column_in("ipv", [v for v in versions if v]))
    if f.node:
        add(_named("node", _names(f.node, f"{where}.node"), lambda r: r.nodes))
    if f.interface:
        add(_named("iface", _names(f.interface, f"{where}.interface"), lambda r: r.interfaces))
    if f.vlan:
        vlans = _values(f.vlan, f"{where}.vlan")
        if any(v > 4095 for v in vlans):
            raise FilterError(f"{where}.vlan", "VLAN ids are 0-4095")
        add(_column_in("vlan", vlans))
    if f.tcp_flags:
        add(_tcp_flags(_flag_sets(f.tcp_flags, f"{where}.tcp_flags")))
    for name, column, enum in (("state", "state", pb.FlowState),
                               ("end_reason", "end", pb.EndReason),
                               ("verdict", "verdict", pb.Verdict),
                               ("event_kind", "kind", pb.EventKind)):
        values = getattr(f, name)
        if values:
            add(_column_in(column, _enums(values, enum, f"{where}.{name}")))
    return out


@dataclass(slots=True)
class Selection:
    """Everything a request keeps: filters, time window, visible nodes (None: all)."""

    allow: list[CompiledFilter]
    deny: list[CompiledFilter]
    since_ns: int = 0
    until_ns: int = 0  # 0: no upper bound
    nodes: frozenset[str] | None = None

    def select(self, columns: Columns, ring: EventRing) -> Mask:
        flows = columns["type"] == TYPE_FLOW
        keep = np.ones(columns.shape, np.bool_)
        if self.allow:
            allowed = np.zeros(columns.shape, np.bool_)
            for f in self.allow:
                allowed |= f.match(columns, ring)
            keep &= allowed | ~flows
        for f in self.deny:
            keep &= ~(f.match(columns, ring) & flows)
        if self.since_ns:
            keep &= columns["time"] >= np.uint64(self.since_ns)
        if self.until_ns:
            keep &= columns["time"] <= np.uint64(self.until_ns)
        if self.nodes is not None:
            keep &= isin(columns["node"],
                         [i for i in (ring.nodes.get(n) for n in self.nodes) if i is not None])
        return keep


def _timestamp_ns(request: Any, name: str) -> int:
    if not request.HasField(name):
        return 0
    stamp = getattr(request, name)
    if stamp.seconds < 0 or not 0 <= stamp.nanos < 1_000_000_000:
        raise FilterError(name, "not a valid time")
    return int(stamp.seconds) * 1_000_000_000 + int(stamp.nanos)


def compile_selection(request: Any, nodes: frozenset[str] | None) -> Selection:
    """A `GetFlowsRequest`'s filters and window; `nodes` the caller may see (None: all)."""
    if len(request.allow) + len(request.deny) > MAX_FILTERS:
        raise FilterError("allow", f"at most {MAX_FILTERS} filters (allow and deny together)")
    filters = [*request.allow, *request.deny]
    values = sum(len(getattr(f, field.name)) for f in filters
                 for field in pb.FlowFilter.DESCRIPTOR.fields)
    if values > MAX_TOTAL_VALUES:
        raise FilterError("allow", f"at most {MAX_TOTAL_VALUES} values in all filters together")
    cidrs = sum(len(f.source_ip) + len(f.destination_ip) + len(f.ip) for f in filters)
    if cidrs > MAX_CIDRS:
        raise FilterError("allow", f"at most {MAX_CIDRS} addresses and CIDRs in all filters "
                          "together")
    since, until = _timestamp_ns(request, "since"), _timestamp_ns(request, "until")
    if since and until and since > until:
        raise FilterError("since", "since is after until")
    return Selection(
        allow=[compile_filter(f, f"allow[{i}]") for i, f in enumerate(request.allow)],
        deny=[compile_filter(f, f"deny[{i}]") for i, f in enumerate(request.deny)],
        since_ns=since,
        until_ns=until,
        nodes=nodes,
    )
