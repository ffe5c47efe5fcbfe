"""Each GetFlows criterion over one batch of crafted flows, then their combination.

The batch holds one flow per row below; every test names the rows it expects to keep, so a
criterion that matched too much or too little fails here, one criterion per test.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from app.observer.events import FlowTracker, append_flows, append_lost
from app.observer.filters import (
    MAX_FILTERS,
    MAX_VALUES,
    FilterError,
    compile_filter,
    compile_selection,
)
from app.observer.ring import EventBatch, EventRing
from floe.dataplane.v1 import uplink_pb2 as up
from floe.observer.v1 import observer_pb2 as pb
from tests.unit.observer.conftest import record

ROWS = [
    # 0: IPv4 TCP 10.0.0.1:40000 -> 10.0.0.2:80, SYN|ACK, established, on veth0
    record(flags=0x12),
    # 1: IPv4 UDP 10.1.2.3:53 -> 192.168.1.9:5353 on veth1, VLAN 10
    record("10.1.2.3", "192.168.1.9", 53, 5353, 17, interface="veth1", vlan=10),
    # 2: IPv6 TCP 2001:db8::1:443 -> 2001:db8:1::7:51000, FIN|ACK, closed by FIN (an END)
    record("2001:db8::1", "2001:db8:1::7", 443, 51000, 6, flags=0x11,
           state=up.FLOW_STATE_CLOSED, end=up.END_REASON_TCP_FIN),
    # 3: IPv4 ICMP 172.16.0.5 -> 10.0.0.2, new
    record("172.16.0.5", "10.0.0.2", 0, 0, 1, state=up.FLOW_STATE_NEW, last_ns=5_000_000_000),
]


@pytest.fixture
def batch() -> tuple[EventRing, EventBatch]:
    ring = EventRing(1024)
    made = append_flows(ring, FlowTracker(1024), "node-a", ROWS)
    assert made is not None
    return ring, made


def kept(batch: tuple[EventRing, EventBatch], **fields: Any) -> list[int]:
    ring, made = batch
    mask = compile_filter(pb.FlowFilter(**fields), "allow[0]").match(made.columns, ring)
    return [int(i) for i in np.flatnonzero(mask)]


@pytest.mark.parametrize(("fields", "rows"), [
    ({"source_ip": ["10.0.0.1"]}, [0]),
    ({"source_ip": ["10.0.0.0/8"]}, [0, 1]),
    ({"source_ip": ["2001:db8::/32"]}, [2]),
    ({"source_ip": ["10.0.0.0/8", "172.16.0.0/12"]}, [0, 1, 3]),
    ({"destination_ip": ["10.0.0.2"]}, [0, 3]),
    ({"destination_ip": ["2001:db8:1::/48"]}, [2]),
    ({"ip": ["192.168.1.9"]}, [1]),
    ({"ip": ["10.0.0.2/32"]}, [0, 3]),
    ({"ip": ["0.0.0.0/0"]}, [0, 1, 3]),  # every IPv4 flow, no IPv6 one
    ({"ip": ["::/0"]}, [0, 1, 2, 3]),
])
def test_ip_and_cidr(batch: tuple[EventRing, EventBatch], fields: Any, rows: list[int]) -> None:
    assert kept(batch, **fields) == rows


@pytest.mark.parametrize(("fields", "rows"), [
    ({"source_port": [53]}, [1]),
    ({"destination_port": [80, 5353]}, [0, 1]),
    ({"port": [443]}, [2]),
    ({"port": [80]}, [0]),
])
def test_ports(batch: tuple[EventRing, EventBatch], fields: Any, rows: list[int]) -> None:
    assert kept(batch, **fields) == rows


@pytest.mark.parametrize(("names", "rows"), [
    (["tcp"], [0, 2]), (["UDP"], [1]), (["1"], [3]), (["icmp", "17"], [1, 3]), (["gre"], []),
])
def test_protocol(batch: tuple[EventRing, EventBatch], names: list[str], rows: list[int]) -> None:
    assert kept(batch, protocol=names) == rows


def test_ip_version(batch: tuple[EventRing, EventBatch]) -> None:
    assert kept(batch, ip_version=[pb.IP_VERSION_IPV6]) == [2]
    assert kept(batch, ip_version=[pb.IP_VERSION_IPV4]) == [0, 1, 3]


def test_node_and_interface(batch: tuple[EventRing, EventBatch]) -> None:
    assert kept(batch, node=["node-a"]) == [0, 1, 2, 3]
    assert kept(batch, node=["node-b"]) == []  # unknown: empty, not an error
    assert kept(batch, interface=["veth1"]) == [1]
    assert kept(batch, interface=["veth0", "veth1"]) == [0, 1, 2, 3]


def test_vlan(batch: tuple[EventRing, EventBatch]) -> None:
    assert kept(batch, vlan=[10]) == [1]
    assert kept(batch, vlan=[0]) == [0, 2, 3]


def test_tcp_flags(batch: tuple[EventRing, EventBatch]) -> None:
    assert kept(batch, tcp_flags=["SYN"]) == [0]
    assert kept(batch, tcp_flags=["ACK"]) == [0, 2]
    assert kept(batch, tcp_flags=["SYN,ACK"]) == [0]  # both flags
    assert kept(batch, tcp_flags=["SYN", "FIN"]) == [0, 2]  # either set
    assert kept(batch, tcp_flags=["RST"]) == []


def test_state_end_reason_verdict_and_kind(batch: tuple[EventRing, EventBatch]) -> None:
    assert kept(batch, state=[pb.FLOW_STATE_NEW]) == [3]
    assert kept(batch, end_reason=[pb.END_REASON_TCP_FIN]) == [2]
    assert kept(batch, end_reason=[pb.END_REASON_NONE]) == [0, 1, 3]
    assert kept(batch, verdict=[pb.VERDICT_UNKNOWN]) == [0, 1, 2, 3]
    assert kept(batch, verdict=[pb.VERDICT_DROPPED]) == []
    assert kept(batch, event_kind=[pb.EVENT_KIND_END]) == [2]
    assert kept(batch, event_kind=[pb.EVENT_KIND_NEW]) == [0, 1, 3]


def test_fields_combine_with_and(batch: tuple[EventRing, EventBatch]) -> None:
    assert kept(batch, destination_ip=["10.0.0.2"], protocol=["tcp"]) == [0]
    assert kept(batch, source_ip=["10.0.0.0/8"], port=[53], interface=["veth1"]) == [1]
    assert kept(batch, source_ip=["10.0.0.0/8"], interface=["veth0"], vlan=[10]) == []


def select(batch: tuple[EventRing, EventBatch], nodes: frozenset[str] | None = None,
           **request: Any) -> list[int]:
    ring, made = batch
    selection = compile_selection(pb.GetFlowsRequest(**request), nodes)
    return [int(i) for i in np.flatnonzero(selection.select(made.columns, ring))]


def test_allow_is_or_and_deny_subtracts(batch: tuple[EventRing, EventBatch]) -> None:
    assert select(batch) == [0, 1, 2, 3]
    assert select(batch, allow=[pb.FlowFilter(port=[80]), pb.FlowFilter(port=[53])]) == [0, 1]
    assert select(batch, deny=[pb.FlowFilter(protocol=["tcp"])]) == [1, 3]
    assert select(batch, allow=[pb.FlowFilter(ip=["10.0.0.0/8"])],
                  deny=[pb.FlowFilter(protocol=["icmp"]), pb.FlowFilter(port=[53])]) == [0]


def test_time_window_and_visible_nodes(batch: tuple[EventRing, EventBatch]) -> None:
    request: dict[str, Any] = {"since": {"seconds": 3}}
    assert select(batch, **request) == [3]
    assert select(batch, until={"seconds": 3}) == [0, 1, 2]
    assert select(batch, frozenset({"node-a"})) == [0, 1, 2, 3]
    assert select(batch, frozenset({"node-b"})) == []


def test_lost_and_node_events_pass_flow_filters_but_not_other_nodes() -> None:
    ring = EventRing(1024)
    lost = append_lost(ring, "node-a", 5, source=pb.LOST_EVENT_SOURCE_DATAPLANE)
    selection = compile_selection(pb.GetFlowsRequest(allow=[pb.FlowFilter(port=[1])]), None)
    assert selection.select(lost.columns, ring).tolist() == [True]
    hidden = compile_selection(pb.GetFlowsRequest(), frozenset({"node-b"}))
    assert hidden.select(lost.columns, ring).tolist() == [False]


@pytest.mark.parametrize(("request_fields", "field"), [
    ({"allow": [pb.FlowFilter(source_ip=["10.0.0.300"])]}, "allow[0].source_ip"),
    ({"deny": [pb.FlowFilter(), pb.FlowFilter(ip=["nonsense/8"])]}, "deny[1].ip"),
    ({"allow": [pb.FlowFilter(port=[70000])]}, "allow[0].port"),
    ({"allow": [pb.FlowFilter(protocol=["tcpp"])]}, "allow[0].protocol"),
    ({"allow": [pb.FlowFilter(protocol=["256"])]}, "allow[0].protocol"),
    ({"allow": [pb.FlowFilter(tcp_flags=["SYN,XMAS"])]}, "allow[0].tcp_flags"),
    ({"allow": [pb.FlowFilter(vlan=[4096])]}, "allow[0].vlan"),
    ({"allow": [pb.FlowFilter(state=[9])]}, "allow[0].state"),
    ({"allow": [pb.FlowFilter(node=[""])]}, "allow[0].node"),
    ({"allow": [pb.FlowFilter(port=list(range(MAX_VALUES + 1)))]}, "allow[0].port"),
    ({"allow": [pb.FlowFilter(port=list(range(200)))] * 6}, "allow"),  # 1,200 values in all
    ({"allow": [pb.FlowFilter(ip=[f"10.0.0.{i}" for i in range(40)])] * 2}, "allow"),  # 80
    ({"allow": [pb.FlowFilter()] * (MAX_FILTERS + 1)}, "allow"),
    ({"since": {"seconds": 10}, "until": {"seconds": 5}}, "since"),
    ({"since": {"seconds": -1}}, "since"),
])
def test_bad_input_names_the_field(request_fields: Any, field: str) -> None:
    with pytest.raises(FilterError) as caught:
        compile_selection(pb.GetFlowsRequest(**request_fields), None)
    assert caught.value.field == field
    assert str(caught.value).startswith(field + ": ")
