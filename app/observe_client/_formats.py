"""Output formats of `floe observe`: table, compact, json, jsonpb, csv.

stdout carries flows (and, in json/jsonpb, node and lost events too, each line saying its
`type`); stderr carries what a person watching should notice — lost events with their source
and count (`--print-lost`, on by default), node connects/disconnects in the human formats.
table and compact show local time like hubble ("Dec  7 10:41:02.123"); json and csv show
RFC 3339 UTC with nanoseconds. The json field names are stable and documented in
docs/observer.md ("floe observe"); jsonpb is the protobuf JSON mapping of each `Event`.

Names come from dataplanes (interface names, versions, loss details), and a compromised one
must not get to drive the operator's terminal: every text line is passed through `printable`,
which writes control and format characters (ESC, BEL, C1, bidi overrides) as visible
escapes (ESC as the four characters `\\x1b`).
json and jsonpb escape them by themselves (ASCII-only JSON).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from google.protobuf import json_format

from app.observe_client._enums import short_name
from app.rulespec import PROTOCOLS
from floe.observer.v1 import observer_pb2 as pb

__all__ = [
    "FLOW_COLUMNS", "FORMATS", "Printer", "event_json", "local_time", "make_printer",
    "printable", "rfc3339", "tcp_flag_names",
]

FORMATS = ("table", "compact", "json", "jsonpb", "csv")

_PROTOCOL_NAMES = {number: name for name, number in PROTOCOLS.items()}
_TCP_FLAGS = ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR")  # bit 0 … bit 7
# Stream reports rather than events of the ring: not counted against --last/--first.
STREAM_LOSSES = (pb.LOST_EVENT_SOURCE_RING_OVERFLOW, pb.LOST_EVENT_SOURCE_CONSUMER_QUEUE)


def printable(text: str) -> str:
    """`text` with every non-printable character as a visible escape (\\x1b, \\u202e)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
                   for ch in text)


def local_time(ns: int) -> str:
    """hubble's timestamp: "Dec  7 10:41:02.123", in local time."""
    when = datetime.fromtimestamp(ns / 1e9).astimezone()
    return f"{when:%b} {when.day:2d} {when:%H:%M:%S}.{(ns // 1_000_000) % 1000:03d}"


def rfc3339(ns: int) -> str:
    """UTC with nanoseconds: "2026-12-07T10:41:02.123456789Z" (sorts as text)."""
    when = datetime.fromtimestamp(ns // 1_000_000_000, UTC)
    return f"{when:%Y-%m-%dT%H:%M:%S}.{ns % 1_000_000_000:09d}Z"


def _ns(stamp: Any) -> int:
    return int(stamp.seconds) * 1_000_000_000 + int(stamp.nanos)


def tcp_flag_names(bits: int) -> list[str]:
    return [name for i, name in enumerate(_TCP_FLAGS) if bits & (1 << i)]


def _protocol(number: int) -> str:
    return _PROTOCOL_NAMES.get(number, str(number))


def _endpoint(ip: str, port: int, with_port: bool) -> str:
    if not with_port:
        return ip
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


# --- JSON ------------------------------------------------------------------------------

# Flow field (proto name) -> JSON value, in the order every json/csv line uses.
_FLOW_VALUES: dict[str, Callable[[Any], Any]] = {
    "source_ip": lambda f: f.source_ip,
    "source_port": lambda f: f.source_port,
    "destination_ip": lambda f: f.destination_ip,
    "destination_port": lambda f: f.destination_port,
    "protocol": lambda f: _protocol(f.protocol),
    "ip_version": lambda f: int(f.ip_version),
    "vlan": lambda f: f.vlan,
    "interface": lambda f: f.interface,
    "packets": lambda f: f.packets,
    "bytes": lambda f: f.bytes,
    "reply_packets": lambda f: f.reply_packets,
    "reply_bytes": lambda f: f.reply_bytes,
    "delta_packets": lambda f: f.delta_packets,
    "delta_bytes": lambda f: f.delta_bytes,
    "delta_reply_packets": lambda f: f.delta_reply_packets,
    "delta_reply_bytes": lambda f: f.delta_reply_bytes,
    "first_seen": lambda f: rfc3339(_ns(f.first_seen)),
    "last_seen": lambda f: rfc3339(_ns(f.last_seen)),
    "tcp_flags": lambda f: tcp_flag_names(f.tcp_flags),
    "state": lambda f: short_name(pb.FlowState, f.state),
    "end_reason": lambda f: short_name(pb.EndReason, f.end_reason),
    "verdict": lambda f: short_name(pb.Verdict, f.verdict),
    "rule_id": lambda f: f.rule_id,
    "sample_weight": lambda f: f.sample_weight,
}
FLOW_COLUMNS = tuple(_FLOW_VALUES)


def _chosen(fields: Sequence[str]) -> tuple[str, ...]:
    wanted = set(fields)
    return tuple(c for c in FLOW_COLUMNS if c in wanted) if wanted else FLOW_COLUMNS


def event_json(event: Any, fields: Sequence[str] = ()) -> dict[str, Any]:
    """One event as the stable `-o json` object (flows: only `fields` of the flow, when
    given — as the field mask asked the server)."""
    out: dict[str, Any] = {"cursor": event.cursor, "time": rfc3339(_ns(event.time)),
                           "node_id": event.node_id}
    which = event.WhichOneof("event")
    if which == "flow":
        out["type"] = "flow"
        out["kind"] = short_name(pb.EventKind, event.flow.kind)
        flow = event.flow.flow
        for name in _chosen(fields):
            out[name] = _FLOW_VALUES[name](flow)
    elif which == "lost_events":
        lost = event.lost_events
        out.update(type="lost", source=short_name(pb.LostEventSource, lost.source),
                   num_events_lost=lost.num_events_lost, interface=lost.interface,
                   detail=lost.detail)
    elif which == "node_status":
        node = event.node_status
        out.update(type="node", state=short_name(pb.NodeState, node.state),
                   version=node.version, peer=node.peer)
    else:
        out["type"] = "unknown"  # a newer server's event kind: keep the line, say so
    return out


# --- printers ----------------------------------------------------------------------------

class Printer:
    """Writes events as they arrive; subclasses say how a flow (and in json, every event)
    looks. Lost events go to stderr in every format (`print_lost`); node events to stderr in
    the human formats."""

    def __init__(self, out: TextIO, err: TextIO, *, print_lost: bool = True,
                 fields: Sequence[str] = ()) -> None:
        self.out = out
        self.err = err
        self.print_lost = print_lost
        self.fields = list(fields)

    def write(self, events: Sequence[Any]) -> None:
        for event in events:
            which = event.WhichOneof("event")
            if which == "flow":
                self.flow(event)
            elif which == "lost_events":
                if self.print_lost:
                    self.err.write(printable(self.lost_line(event)) + "\n")
                    self.lost(event)
            elif which == "node_status":
                self.node(event)
        self.out.flush()
        self.err.flush()

    def flow(self, event: Any) -> None:
        raise NotImplementedError

    def lost(self, event: Any) -> None:
        """A lost event on stdout too (json formats)."""

    def node(self, event: Any) -> None:
        node = event.node_status
        state = short_name(pb.NodeState, node.state).upper()
        detail = ", ".join(part for part in (f"version {node.version}" if node.version else "",
                                             f"peer {node.peer}" if node.peer else "") if part)
        line = (f"{local_time(_ns(event.time))}: NODE {event.node_id} {state}"
                + (f" ({detail})" if detail else ""))
        self.err.write(printable(line) + "\n")

    @staticmethod
    def lost_line(event: Any) -> str:
        """"Dec  7 10:41:02.123: EVENTS LOST: RING_OVERFLOW 1200" (+ node, interface and the
        dataplane's own source for dataplane losses)."""
        lost = event.lost_events
        source = short_name(pb.LostEventSource, lost.source).upper()
        line = f"{local_time(_ns(event.time))}: EVENTS LOST: {source} {lost.num_events_lost}"
        if lost.source == pb.LOST_EVENT_SOURCE_DATAPLANE:
            line += f" node {event.node_id}"
            if lost.interface:
                line += f" interface {lost.interface}"
        if lost.detail:
            line += f" ({lost.detail})"
        return line


def _summary(flow: Any) -> str:
    state = short_name(pb.FlowState, flow.state)
    text = (f"{state} {flow.packets}/{flow.reply_packets} pkts "
            f"{flow.bytes}/{flow.reply_bytes} B")
    flags = tcp_flag_names(flow.tcp_flags)
    if flags:
        text += f" (TCP Flags: {', '.join(flags)})"
    if flow.end_reason:
        text += f" end: {short_name(pb.EndReason, flow.end_reason).replace('_', '-')}"
    return text


def _ends(flow: Any) -> tuple[str, str]:
    with_port = bool(flow.source_port or flow.destination_port)
    return (_endpoint(flow.source_ip, flow.source_port, with_port),
            _endpoint(flow.destination_ip, flow.destination_port, with_port))


class CompactPrinter(Printer):
    """hubble's compact line: time [node/interface]: source -> destination protocol kind
    VERDICT state packets bytes (flags) end reason."""

    def flow(self, event: Any) -> None:
        flow = event.flow.flow
        source, destination = _ends(flow)
        kind = short_name(pb.EventKind, event.flow.kind)
        verdict = short_name(pb.Verdict, flow.verdict).upper()
        self.out.write(printable(
            f"{local_time(_ns(event.time))} [{event.node_id}/{flow.interface}]: "
            f"{source} -> {destination} {_protocol(flow.protocol)} {kind} "
            f"{verdict} {_summary(flow)}") + "\n")


_TABLE = (("TIMESTAMP", 19), ("NODE", 12), ("INTERFACE", 10), ("SOURCE", 22),
          ("DESTINATION", 22), ("PROTO", 6), ("TYPE", 7), ("VERDICT", 10), ("SUMMARY", 0))


class TablePrinter(Printer):
    """Fixed-width columns with one header line, so a followed stream stays aligned (a long
    value pushes its row, never the others)."""

    header_written = False

    def _row(self, cells: Sequence[str]) -> str:
        parts = [printable(cell).ljust(width) if width else printable(cell)
                 for cell, (_name, width) in zip(cells, _TABLE, strict=True)]
        return " ".join(parts).rstrip() + "\n"

    def flow(self, event: Any) -> None:
        if not self.header_written:
            self.out.write(self._row([name for name, _width in _TABLE]))
            self.header_written = True
        flow = event.flow.flow
        source, destination = _ends(flow)
        self.out.write(self._row([
            local_time(_ns(event.time)), event.node_id, flow.interface, source, destination,
            _protocol(flow.protocol), short_name(pb.EventKind, event.flow.kind),
            short_name(pb.Verdict, flow.verdict).upper(), _summary(flow)]))


class JsonPrinter(Printer):
    """One JSON object per line: flows, node events, and lost events (also on stderr)."""

    def _line(self, event: Any) -> None:
        self.out.write(json.dumps(event_json(event, self.fields), separators=(",", ":")) + "\n")

    def flow(self, event: Any) -> None:
        self._line(event)

    def lost(self, event: Any) -> None:
        self._line(event)

    def node(self, event: Any) -> None:
        self._line(event)


class JsonpbPrinter(JsonPrinter):
    """Each `Event` in the protobuf JSON mapping (lowerCamelCase, enum names, 64-bit
    integers as strings, fields at their default left out), one per line."""

    def _line(self, event: Any) -> None:
        self.out.write(json_format.MessageToJson(event, indent=None) + "\n")


class CsvPrinter(Printer):
    """Flows only, one header line; the flow columns are the field mask's when given."""

    header_written = False

    def __init__(self, out: TextIO, err: TextIO, **kwargs: Any) -> None:
        super().__init__(out, err, **kwargs)
        self.writer = csv.writer(out, lineterminator="\n")
        self.columns = _chosen(self.fields)

    def flow(self, event: Any) -> None:
        if not self.header_written:
            self.writer.writerow(("time", "cursor", "node_id", "kind", *self.columns))
            self.header_written = True
        flow = event.flow.flow
        values = []
        for name in self.columns:
            value = _FLOW_VALUES[name](flow)
            if isinstance(value, list):
                value = ",".join(value)
            values.append(printable(value) if isinstance(value, str) else value)
        self.writer.writerow((rfc3339(_ns(event.time)), event.cursor, printable(event.node_id),
                              short_name(pb.EventKind, event.flow.kind), *values))


_PRINTERS: dict[str, type[Printer]] = {
    "table": TablePrinter, "compact": CompactPrinter, "json": JsonPrinter,
    "jsonpb": JsonpbPrinter, "csv": CsvPrinter,
}


def make_printer(name: str, out: TextIO, err: TextIO, *, print_lost: bool = True,
                 fields: Sequence[str] = ()) -> Printer:
    return _PRINTERS[name](out, err, print_lost=print_lost, fields=fields)
