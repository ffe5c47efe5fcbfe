"""Output formats from real `Event` messages: every format, every event type, field masks."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator

import pytest
from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from app.observe_client import event_json
from app.observe_client._formats import (
    FLOW_COLUMNS,
    FORMATS,
    local_time,
    make_printer,
    printable,
    rfc3339,
    tcp_flag_names,
)
from floe.observer.v1 import observer_pb2 as pb

T = 1_796_640_062_123_456_789  # 2026-12-07T10:41:02.123456789Z


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time is UTC here, so table/compact lines are exact."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def stamp(ns: int) -> Timestamp:
    return Timestamp(seconds=ns // 10**9, nanos=ns % 10**9)


def flow_event(cursor: int = 101, *, kind: int = pb.EVENT_KIND_NEW, v6: bool = False,
               end: int = pb.END_REASON_NONE) -> pb.Event:
    flow = pb.Flow(
        source_ip="2001:db8::1" if v6 else "10.0.0.1",
        destination_ip="2001:db8::2" if v6 else "10.0.0.2", source_port=40001,
        destination_port=443, protocol=6,
        ip_version=pb.IP_VERSION_IPV6 if v6 else pb.IP_VERSION_IPV4, vlan=7,
        interface="eth0", packets=3, bytes=180, reply_packets=2, reply_bytes=120,
        delta_packets=1, delta_bytes=60, delta_reply_packets=1, delta_reply_bytes=60,
        first_seen=stamp(T - 10**9), last_seen=stamp(T), tcp_flags=0x12,
        state=pb.FLOW_STATE_ESTABLISHED, end_reason=end, verdict=pb.VERDICT_FORWARDED)
    return pb.Event(cursor=cursor, time=stamp(T), node_id="n1",
                    flow=pb.FlowEvent(kind=kind, flow=flow))


def lost_event(source: int = pb.LOST_EVENT_SOURCE_RING_OVERFLOW, count: int = 1200,
               cursor: int = 0) -> pb.Event:
    """Dataplane losses carry an interface and the dataplane's own source; others none."""
    dataplane = source == pb.LOST_EVENT_SOURCE_DATAPLANE
    return pb.Event(cursor=cursor, time=stamp(T), node_id="n1",
                    lost_events=pb.LostEvent(source=source, num_events_lost=count,
                                             interface="eth0" if dataplane else "",
                                             detail="afxdp_ring:rx" if dataplane else ""))


def node_event() -> pb.Event:
    return pb.Event(cursor=100, time=stamp(T), node_id="n1",
                    node_status=pb.NodeEvent(state=pb.NODE_STATE_CONNECTED, version="0.1.0",
                                             peer="ipv4:127.0.0.1:5555"))


def render(fmt: str, events: list[pb.Event], **kwargs: object) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    printer = make_printer(fmt, out, err, **kwargs)  # type: ignore[arg-type]
    printer.write(events)
    return out.getvalue(), err.getvalue()


def test_times() -> None:
    assert local_time(T) == "Dec  7 10:41:02.123"
    assert local_time(T + 10 * 86_400 * 10**9) == "Dec 17 10:41:02.123"
    assert rfc3339(T) == "2026-12-07T10:41:02.123456789Z"
    assert tcp_flag_names(0x12) == ["SYN", "ACK"] and tcp_flag_names(0xFF)[-1] == "CWR"


def test_compact_is_one_hubble_like_line_per_flow() -> None:
    out, err = render("compact", [flow_event(), flow_event(v6=True, kind=pb.EVENT_KIND_END,
                                                           end=pb.END_REASON_TCP_FIN)])
    assert out.splitlines() == [
        "Dec  7 10:41:02.123 [n1/eth0]: 10.0.0.1:40001 -> 10.0.0.2:443 tcp new FORWARDED "
        "established 3/2 pkts 180/120 B (TCP Flags: SYN, ACK)",
        "Dec  7 10:41:02.123 [n1/eth0]: [2001:db8::1]:40001 -> [2001:db8::2]:443 tcp end "
        "FORWARDED established 3/2 pkts 180/120 B (TCP Flags: SYN, ACK) end: tcp-fin",
    ]
    assert err == ""


def test_table_has_one_header_and_aligned_columns() -> None:
    out, _ = render("table", [flow_event(), flow_event(102)])
    lines = out.splitlines()
    assert len(lines) == 3 and lines[0].split() == [
        "TIMESTAMP", "NODE", "INTERFACE", "SOURCE", "DESTINATION", "PROTO", "TYPE", "VERDICT",
        "SUMMARY"]
    assert lines[1] == lines[2]
    assert lines[1].startswith("Dec  7 10:41:02.123 n1 ")
    for name in ("SOURCE", "DESTINATION", "SUMMARY"):
        column = lines[0].index(name)
        assert lines[1][column - 1] == " " and lines[1][column] != " "


def test_json_has_stable_documented_fields() -> None:
    out, _ = render("json", [flow_event()])
    (line,) = out.splitlines()
    obj = json.loads(line)
    assert list(obj) == ["cursor", "time", "node_id", "type", "kind", *FLOW_COLUMNS]
    assert obj == {
        "cursor": 101, "time": "2026-12-07T10:41:02.123456789Z", "node_id": "n1",
        "type": "flow", "kind": "new", "source_ip": "10.0.0.1", "source_port": 40001,
        "destination_ip": "10.0.0.2", "destination_port": 443, "protocol": "tcp",
        "ip_version": 4, "vlan": 7, "interface": "eth0", "packets": 3, "bytes": 180,
        "reply_packets": 2, "reply_bytes": 120, "delta_packets": 1, "delta_bytes": 60,
        "delta_reply_packets": 1, "delta_reply_bytes": 60,
        "first_seen": "2026-12-07T10:41:01.123456789Z",
        "last_seen": "2026-12-07T10:41:02.123456789Z", "tcp_flags": ["SYN", "ACK"],
        "state": "established", "end_reason": "none", "verdict": "forwarded",
            "rule_id": 0, "sample_weight": 0}


def test_every_flow_field_has_a_column() -> None:
    assert set(FLOW_COLUMNS) == set(pb.Flow.DESCRIPTOR.fields_by_name)


def test_json_carries_node_and_lost_events_with_their_type() -> None:
    out, err = render("json", [node_event(), lost_event(), flow_event()])
    types = [json.loads(line)["type"] for line in out.splitlines()]
    assert types == ["node", "lost", "flow"]
    node, lost = (json.loads(line) for line in out.splitlines()[:2])
    assert node == {"cursor": 100, "time": "2026-12-07T10:41:02.123456789Z", "node_id": "n1",
                    "type": "node", "state": "connected", "version": "0.1.0",
                    "peer": "ipv4:127.0.0.1:5555"}
    assert (lost["source"], lost["num_events_lost"], lost["cursor"]) == ("ring_overflow", 1200, 0)
    assert err == "Dec  7 10:41:02.123: EVENTS LOST: RING_OVERFLOW 1200\n"


def test_field_masks_keep_only_those_flow_fields() -> None:
    obj = event_json(flow_event(), ["bytes", "source_ip"])
    assert list(obj) == ["cursor", "time", "node_id", "type", "kind", "source_ip", "bytes"]
    out, _ = render("csv", [flow_event()], fields=["destination_port", "source_ip"])
    rows = list(csv.reader(io.StringIO(out)))
    assert rows == [["time", "cursor", "node_id", "kind", "source_ip", "destination_port"],
                    ["2026-12-07T10:41:02.123456789Z", "101", "n1", "new", "10.0.0.1", "443"]]


def test_jsonpb_is_the_protobuf_json_mapping_of_each_event() -> None:
    events = [flow_event(), node_event(), lost_event()]
    out, _ = render("jsonpb", events)
    lines = out.splitlines()
    assert len(lines) == 3
    for line, event in zip(lines, events, strict=True):
        assert json_format.Parse(line, pb.Event()) == event
    assert json.loads(lines[0])["flow"]["flow"]["sourceIp"] == "10.0.0.1"
    assert json.loads(lines[0])["cursor"] == "101"  # 64-bit integers are strings


def test_csv_has_a_header_then_one_row_per_flow_only() -> None:
    out, err = render("csv", [node_event(), flow_event(), flow_event(102), lost_event()])
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["time", "cursor", "node_id", "kind", *FLOW_COLUMNS]
    assert [r[1] for r in rows[1:]] == ["101", "102"]
    assert dict(zip(rows[0], rows[1], strict=True))["tcp_flags"] == "SYN,ACK"
    assert "NODE n1 CONNECTED" in err and "EVENTS LOST: RING_OVERFLOW 1200" in err


@pytest.mark.parametrize("fmt", ["table", "compact", "csv"])
def test_human_formats_keep_stdout_for_flows(fmt: str) -> None:
    out, err = render(fmt, [node_event(), lost_event()])
    assert out == ""
    assert err.splitlines() == [
        "Dec  7 10:41:02.123: NODE n1 CONNECTED (version 0.1.0, peer ipv4:127.0.0.1:5555)",
        "Dec  7 10:41:02.123: EVENTS LOST: RING_OVERFLOW 1200"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_print_lost_off_prints_no_lost_event_anywhere(fmt: str) -> None:
    out, err = render(fmt, [lost_event()], print_lost=False)
    assert (out, err) == ("", "")


def test_a_dataplane_loss_says_where() -> None:
    _, err = render("compact", [lost_event(pb.LOST_EVENT_SOURCE_DATAPLANE, 7, cursor=5)])
    assert err == ("Dec  7 10:41:02.123: EVENTS LOST: DATAPLANE 7 node n1 interface eth0 "
                   "(afxdp_ring:rx)\n")


def test_an_unknown_enum_value_from_a_newer_server_prints_its_number() -> None:
    event = flow_event()
    event.flow.flow.state = 42  # type: ignore[assignment]
    assert event_json(event)["state"] == "42"


def test_names_from_a_dataplane_cannot_drive_the_terminal() -> None:
    event = flow_event()
    event.flow.flow.interface = "eth0\x1b[2K\x07\x9b\u202e"
    for fmt in ("compact", "table", "csv"):
        out, _ = render(fmt, [event])
        assert "eth0\\x1b[2K\\x07\\x9b\\u202e" in out
        assert not {"\x1b", "\x07", "\x9b", "\u202e"} & set(out)
    for fmt in ("json", "jsonpb"):
        out, _ = render(fmt, [event])
        assert not {"\x1b", "\x07", "\x9b", "\u202e"} & set(out)
        assert "eth0" in out
    assert printable("plain ünïcode") == "plain ünïcode"
