"""`floe observe` command lines into GetFlowsRequests: filters, --not, counts, time, fields."""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

import pytest

from app.cli import build_parser
from app.observe_client import FlowQuery, parse_time
from app.observe_client._cli import _query
from app.observe_client._errors import EXIT_USAGE, ObserveError
from app.observe_client._request import ALL, DEFAULT_LAST
from floe.observer.v1 import observer_pb2 as pb


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["observe", *argv])


def request(*argv: str) -> pb.GetFlowsRequest:
    return _query(parse(*argv)).request()


def test_filters_combine_like_hubble() -> None:
    """Different flags AND (one allow filter), repeated values OR, --not to one deny filter."""
    req = request("--ip-src", "10.0.0.1", "--port", "80", "--port", "443", "--not",
                  "--ip-dst", "10.9.0.0/16", "--not", "--protocol", "udp")
    assert len(req.allow) == 1 and len(req.deny) == 1
    assert list(req.allow[0].source_ip) == ["10.0.0.1"]
    assert list(req.allow[0].port) == [80, 443]
    assert list(req.deny[0].destination_ip) == ["10.9.0.0/16"]
    assert list(req.deny[0].protocol) == ["udp"]
    assert not req.allow[0].destination_ip and not req.deny[0].port


def test_not_negates_only_the_next_filter() -> None:
    req = request("--not", "--port", "53", "--port", "80")
    assert list(req.deny[0].port) == [53] and list(req.allow[0].port) == [80]


def test_no_filters_means_no_filter_messages() -> None:
    req = request()
    assert not req.allow and not req.deny


@pytest.mark.parametrize(("argv", "field", "value"), [
    (("--ip", "::1"), "ip", "::1"),
    (("--from-ip", "10.0.0.1"), "source_ip", "10.0.0.1"),
    (("--to-ip", "10.0.0.0/8"), "destination_ip", "10.0.0.0/8"),
    (("--port-src", "1234"), "source_port", 1234),
    (("--from-port", "1"), "source_port", 1),
    (("--port-dst", "65535"), "destination_port", 65535),
    (("--to-port", "0"), "destination_port", 0),
    (("--node", "edge-1"), "node", "edge-1"),
    (("--node-name", "edge-1"), "node", "edge-1"),
    (("--interface", "eth0"), "interface", "eth0"),
    (("--vlan", "4095"), "vlan", 4095),
    (("--tcp-flags", "SYN,ACK"), "tcp_flags", "SYN,ACK"),
    (("--state", "established"), "state", pb.FLOW_STATE_ESTABLISHED),
    (("--state", "FLOW_STATE_CLOSED"), "state", pb.FLOW_STATE_CLOSED),
    (("--end-reason", "tcp-fin"), "end_reason", pb.END_REASON_TCP_FIN),
    (("--end-reason", "idle_timeout"), "end_reason", pb.END_REASON_IDLE_TIMEOUT),
    (("--end-reason", "none"), "end_reason", pb.END_REASON_NONE),
    (("--verdict", "DROPPED"), "verdict", pb.VERDICT_DROPPED),
    (("--verdict", "unknown"), "verdict", pb.VERDICT_UNKNOWN),
    (("--type", "end"), "event_kind", pb.EVENT_KIND_END),
    (("-t", "new"), "event_kind", pb.EVENT_KIND_NEW),
    (("--ipv4",), "ip_version", pb.IP_VERSION_IPV4),
    (("--ipv6",), "ip_version", pb.IP_VERSION_IPV6),
])
def test_every_filter_flag_fills_its_field(argv: tuple[str, ...], field: str,
                                           value: object) -> None:
    (allow,) = request(*argv).allow
    assert list(getattr(allow, field)) == [value]
    (deny,) = request("--not", *argv).deny
    assert list(getattr(deny, field)) == [value]


@pytest.mark.parametrize("argv", [
    ("--ip", "10.0.0.300"), ("--ip-src", "host.example"), ("--port", "65536"),
    ("--port", "-1"), ("--port", "http"), ("--vlan", "4096"), ("--state", "open"),
    ("--state", "unspecified"), ("--verdict", "allowed"), ("--type", "trace"),
    ("--end-reason", "timeout"), ("--node", " "), ("--not", "--not", "--port", "1"),
    ("--last", "0"), ("--first", "x"), ("--since", "yesterday"), ("--until", "5 minutes"),
    ("-o", "yaml"), ("--timeout", "0"), ("--no", "--port", "1"),
])
def test_bad_flags_are_usage_errors(argv: tuple[str, ...],
                                    capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        parse(*argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(("floe observe: error:", "floe: error: unrecognized"))


@pytest.mark.parametrize("argv", [
    ("--not",), ("--port", "1", "--not"), ("--last", "5", "--first", "5"),
    ("--all", "--last", "3"), ("--first", "3", "--follow"),
    ("--since", "2026-12-07T10:00:00Z", "--until", "2026-12-07T09:00:00Z"),
])
def test_combinations_that_mean_nothing_are_refused(argv: tuple[str, ...]) -> None:
    with pytest.raises(ObserveError) as refused:
        _query(parse(*argv))
    assert refused.value.exit_code == EXIT_USAGE


@pytest.mark.parametrize(("argv", "number", "first"), [
    ((), DEFAULT_LAST, False),               # a bare `floe observe`: the last 20
    (("--last", "5"), 5, False),
    (("--first", "7"), 7, True),
    (("--all",), ALL, False),
    (("--follow",), 0, False),               # only new events
    (("-f", "--last", "3"), 3, False),       # the last 3, then live
    (("-f", "--all"), ALL, False),
    (("-f", "--since", "5m"), ALL, False),   # everything since, then live
    (("--since", "5m"), 0, False),           # every event in the window
    (("--until", "5m"), 0, False),
])
def test_counts_as_hubble(argv: tuple[str, ...], number: int, first: bool) -> None:
    req = request(*argv)
    assert (req.number, req.first, req.HasField("after")) == (number, first, False)
    assert req.follow == ("-f" in argv or "--follow" in argv)


def test_a_resumed_request_asks_after_the_cursor_and_keeps_filters_and_window() -> None:
    query = _query(parse("--last", "5", "--port", "80", "--since", "1h", "--fields",
                         "source_ip"))
    req = query.request(after=12345)
    assert req.HasField("after") and req.after == 12345
    assert (req.number, req.first) == (0, False)
    assert list(req.allow[0].port) == [80] and req.HasField("since")
    assert list(req.field_mask.paths) == ["source_ip"]
    assert query.limit == 5  # the client stops by itself after five in all


def test_limit_only_without_follow() -> None:
    assert FlowQuery(last=5).limit == 5
    assert FlowQuery(first=5).limit == 5
    assert FlowQuery().limit == DEFAULT_LAST
    assert FlowQuery(last=5, follow=True).limit is None
    assert FlowQuery(all=True).limit is None
    assert FlowQuery(since_ns=1).limit is None


def test_field_masks_are_comma_lists_and_repeatable() -> None:
    req = request("--field-mask", "source_ip, destination_ip", "--fields", "bytes")
    assert list(req.field_mask.paths) == ["source_ip", "destination_ip", "bytes"]
    assert not request().HasField("field_mask")


def test_times_rfc3339_and_durations() -> None:
    now = 1_796_640_000_000_000_000
    assert parse_time("5m", now) == now - 300_000_000_000
    assert parse_time("1h30m", now) == now - 5_400_000_000_000
    assert parse_time("1.5s", now) == now - 1_500_000_000
    assert parse_time("250ms", now) == now - 250_000_000
    assert parse_time("2d", now) == now - 2 * 86_400_000_000_000
    stamp = datetime(2026, 12, 7, 10, 41, 2, 123456, tzinfo=UTC)
    expected = int(stamp.timestamp()) * 1_000_000_000 + 123_456_000
    assert parse_time("2026-12-07T10:41:02.123456Z") == expected
    assert parse_time("2026-12-07T11:41:02.123456+01:00") == expected
    local = datetime(2026, 12, 7, 10, 41, 2).astimezone()  # no offset: local time
    assert parse_time("2026-12-07T10:41:02") == int(local.timestamp()) * 1_000_000_000
    for bad in ("", "5", "m5", "5 m", "yesterday", "2026-13-01T00:00:00Z", "1960-01-01"):
        with pytest.raises(ValueError):
            parse_time(bad)


def test_since_and_until_reach_the_request() -> None:
    before = time.time_ns()
    req = request("--since", "10m", "--until", "2030-01-01T00:00:00Z")
    since = req.since.seconds * 1_000_000_000 + req.since.nanos
    assert before - 600_000_000_000 - 10**9 < since <= time.time_ns() - 600_000_000_000
    assert req.until.seconds == int(datetime(2030, 1, 1, tzinfo=UTC).timestamp())


def test_observe_is_a_floe_subcommand_with_hubble_names() -> None:
    args = parse("-f", "-o", "json", "--server", "h:1", "--token", "t", "--tls-ca-cert", "ca",
                 "--tls-server-name", "n", "--resume-file", "cur", "--no-print-lost")
    assert (args.command, args.follow, args.output, args.server) == ("observe", True, "json",
                                                                     "h:1")
    assert (args.token, args.tls_ca_cert, args.tls_server_name) == ("t", "ca", "n")
    assert (str(args.resume_file), args.print_lost, args.tls) == ("cur", False, None)
    assert parse().print_lost is True and parse().output == "compact"
    assert parse("--server-status").server_status and parse("--nodes").nodes
