"""TrafficWindow: per-tick aggregates summed over the last 10 s of the interface's clock."""

from __future__ import annotations

import numpy as np

from app.ingest.state import IngestState
from app.ingest.traffic import TOP_N, WINDOW_NS, TrafficWindow
from dataplane.aggregate import Aggregator
from dataplane.packets import FrameBatch
from dataplane.parse import parse_batch
from dataplane.runner import aggregate_message
from floe.dataplane.v1 import uplink_pb2 as pb
from tests.unit.dataplane.frames import frame

S = 10**9


def tick(end: int, hosts: dict[str, int], protocols: dict[str, int] | None = None,
         ports: dict[int, int] | None = None, start: int | None = None) -> pb.TrafficAggregate:
    talkers = [pb.Talker(key=h, packets=n, bytes=100 * n) for h, n in hosts.items()]
    return pb.TrafficAggregate(
        interface="eth0", start_unix_ns=end - S // 10 if start is None else start,
        end_unix_ns=end, top_hosts_by_bytes=talkers, top_hosts_by_packets=talkers,
        top_ports_by_packets=[pb.Talker(key=str(p), packets=n, bytes=n)
                              for p, n in (ports or {}).items()],
        protocols=[pb.Talker(key=k, packets=n, bytes=60 * n)
                   for k, n in (protocols or {}).items()],
        port_packets_well_known=sum((ports or {}).values()),
    )


def test_sums_ticks_counting_a_host_once_per_tick() -> None:
    window = TrafficWindow()
    window.add(tick(1 * S, {"10.0.0.1": 3, "10.0.0.2": 1}, {"tcp": 4}, {80: 4}))
    window.add(tick(2 * S, {"10.0.0.2": 5}, {"tcp": 1, "udp": 4}, {53: 4, 80: 1}))
    view = window.view()
    assert view is not None
    assert view["top_hosts_by_packets"] == [
        {"host": "10.0.0.2", "packets": 6, "bytes": 600},
        {"host": "10.0.0.1", "packets": 3, "bytes": 300},
    ]
    assert view["protocols"] == [{"name": "tcp", "packets": 5, "bytes": 300},  # by bytes
                                 {"name": "udp", "packets": 4, "bytes": 240}]
    assert [p["port"] for p in view["top_ports_by_packets"]] == [80, 53]
    assert view["port_bands"]["well_known"] == 9
    assert view["ticks"] == 2 and view["approximate"] is False
    assert view["window_seconds"] == 1.1


def test_old_ticks_leave_the_window_by_the_interface_clock() -> None:
    window = TrafficWindow()
    window.add(tick(1 * S, {"10.0.0.1": 1}))
    window.add(tick(1 * S + WINDOW_NS - 1, {"10.0.0.2": 1}))
    assert window.view()["ticks"] == 2  # type: ignore[index]
    window.add(tick(1 * S + WINDOW_NS, {"10.0.0.3": 1}))
    hosts = [h["host"] for h in window.view()["top_hosts_by_bytes"]]  # type: ignore[index]
    assert hosts == ["10.0.0.2", "10.0.0.3"]


def test_a_full_top_list_marks_the_view_approximate() -> None:
    window = TrafficWindow()
    window.add(tick(S, {f"10.0.0.{i}": i for i in range(1, TOP_N + 1)}))
    view = window.view()
    assert view is not None and view["approximate"] is True
    assert len(view["top_hosts_by_bytes"]) == TOP_N
    short = tick(2 * S, {"10.0.0.1": 1, "10.0.0.2": 1, "10.0.0.3": 1})
    short.top_n = 3  # a dataplane keeping 3: its 3-entry list is full, the view approximate
    window.add(short, "other-process")
    assert window.view()["approximate"] is True  # type: ignore[index]
    short.top_n = 5
    window.add(short, "third-process")
    assert window.view()["approximate"] is False  # type: ignore[index]
    ports_full = tick(3 * S, {"10.0.0.1": 1}, ports={p: 1 for p in range(1, 6)})
    ports_full.top_ports_by_bytes.extend(ports_full.top_ports_by_packets)
    ports_full.top_n = 5  # the port list is full, the host list is not
    window.add(ports_full, "fourth-process")
    assert window.view()["approximate"] is True  # type: ignore[index]
    flood = tick(4 * S, {"10.0.0.1": 1})
    flood.hosts_truncated, flood.top_n = 7, 5  # a flood of distinct hosts was cut
    window.add(flood, "fifth-process")
    assert window.view()["approximate"] is True  # type: ignore[index]


def test_totals_add_up_over_the_ticks() -> None:
    window = TrafficWindow()
    for end, malformed in ((S, 2), (2 * S, 3)):
        message = tick(end, {"10.0.0.1": 1})
        message.packets, message.bytes, message.malformed = 10, 600, malformed
        window.add(message)
    view = window.view()
    assert view is not None
    assert (view["packets"], view["bytes"], view["malformed"]) == (20, 1200, 5)
    assert TrafficWindow().view() is None


def test_dataplane_aggregate_reaches_the_interface_summary() -> None:
    frames = [frame("10.1.0.1", "10.1.0.2", "tcp", 40000, 443)] * 3 + [
        frame("10.1.0.3", "10.1.0.2", "udp", 5000, 53)]
    batch = FrameBatch.from_frames(frames, ts_ns=[S] * 4)
    aggregator = Aggregator()
    aggregator.add(parse_batch(batch))
    message = aggregate_message(aggregator.tick(2 * S), "eth0", aggregator.top_n)
    assert message.top_n == 10
    state = IngestState()
    state.apply_aggregate("node", message)
    traffic = state.interface("node", "eth0").summary()["traffic"]
    assert {p["name"]: p["packets"] for p in traffic["protocols"]} == {"tcp": 3, "udp": 1}
    assert traffic["top_hosts_by_packets"][0] == {
        "host": "10.1.0.2", "packets": 4, "bytes": int(np.sum([len(f) for f in frames]))}
    assert [p["port"] for p in traffic["top_ports_by_packets"]] == [443, 53]
    assert traffic["port_bands"] == {"well_known": 4, "registered": 0, "dynamic": 0}
    size = sum(len(f) for f in frames)
    assert (traffic["packets"], traffic["bytes"], traffic["malformed"]) == (4, size, 0)
    assert (traffic["pps"], traffic["bps"]) == (4.0, size * 8.0)  # over 1 s of frame clock


def test_a_new_process_or_a_clock_stepping_back_starts_the_window_afresh() -> None:
    window = TrafficWindow()
    window.add(tick(5 * S, {"10.0.0.1": 1}), "run-1")
    window.add(tick(6 * S, {"10.0.0.1": 1}), "run-1")
    assert window.view()["ticks"] == 2  # type: ignore[index]
    window.add(tick(5 * S, {"10.0.0.9": 4}), "run-2")  # the same capture replayed again
    view = window.view()
    assert view is not None and view["ticks"] == 1
    assert [h["host"] for h in view["top_hosts_by_packets"]] == ["10.0.0.9"]
    window.add(tick(2 * S, {"10.0.0.7": 1}), "run-2")  # its clock stepped back
    assert window.view()["ticks"] == 1  # type: ignore[index]


def test_ticks_are_kept_as_plain_data_and_rates_need_a_span() -> None:
    window = TrafficWindow()
    message = tick(S, {"10.0.0.1": 2}, start=S)  # a zero-length tick
    window.add(message)
    message.top_hosts_by_bytes[0].packets = 99  # the stored tick is a copy, not the message
    message.top_hosts_by_packets[0].packets = 99
    view = window.view()
    assert view is not None and view["top_hosts_by_packets"][0]["packets"] == 2
    assert view["pps"] is None and view["bps"] is None and view["received_unix_ns"] > 0
