"""The ingest bounds (app/ingest/limits.py): each one refuses past it, counts what it left out
and keeps totals exact where it folds instead of refusing."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from app.config import ConfigError, load_settings
from app.ingest.cumulative import RETIRED_IDS, Cumulative
from app.ingest.limits import (
    MAX_INSTANCES,
    MAX_NAME,
    MAX_TALKERS,
    MAX_TEXT,
    IngestLimits,
    hello_problem,
)
from app.ingest.state import IngestState
from app.ingest.traffic import MAX_WINDOW_ENTRIES, TrafficWindow
from floe.dataplane.v1 import uplink_pb2 as pb


def test_cumulative_keeps_the_newest_per_source_and_sums_sources() -> None:
    store: Cumulative[str] = Cumulative(max_sources=2, max_keys=3)
    assert store.update("e1", [("packets", 10), ("bytes", 600)]) == (0, "keys")
    store.update("e1", [("packets", 7)])  # an older, resent snapshot: no effect
    store.update("e2", [("packets", 5)])
    assert store.totals() == {"packets": 15, "bytes": 600}
    refused, why = store.update("e2", [("a", 1), ("b", 1), ("c", 1)])
    assert (refused, why) == (1, "keys")  # e2 holds packets, a, b: c is one key too many


def test_a_new_source_retires_the_least_recently_updated_with_totals_exact() -> None:
    store: Cumulative[str] = Cumulative(max_sources=2, max_keys=8)
    store.update("e1", [("packets", 100)])
    store.update("e2", [("packets", 20)])
    store.update("e1", [("packets", 110)])  # e1 is now the most recently updated
    store.update("e3", [("packets", 3)])  # retires e2
    assert set(store.sources) == {"e1", "e3"} and store.retirements == 1
    assert store.totals() == {"packets": 133}
    assert store.update("e2", [("packets", 25)]) == (1, "retired")  # not counted twice
    assert store.totals() == {"packets": 133}
    for n in range(4, 4 + RETIRED_IDS + 10):  # remembered retired ids are bounded too
        store.update(f"e{n}", [("packets", 1)])
    assert len(store._retired_ids) == RETIRED_IDS
    assert len(store) <= 8 + 2 * 8


def test_hello_limits() -> None:
    limits = IngestLimits(max_interfaces=2)

    def hello(**fields: Any) -> Any:
        base: dict[str, Any] = {"node_id": "n", "instance_id": "i"}
        return pb.Hello(**{**base, **fields})

    assert hello_problem(hello(), limits) is None
    assert "version" in (hello_problem(hello(version="v" * (MAX_TEXT + 1)), limits) or "")
    assert "capabilities" in (hello_problem(hello(capabilities=["x"] * 33), limits) or "")
    many = [pb.InterfaceInfo(name=f"eth{i}") for i in range(3)]
    assert "INGEST_MAX_INTERFACES=2" in (hello_problem(hello(interfaces=many), limits) or "")
    long_name = [pb.InterfaceInfo(name="x" * (MAX_NAME + 1))]
    assert "interface name" in (hello_problem(hello(interfaces=long_name), limits) or "")


def test_nodes_past_the_bound_are_refused_known_ones_still_admitted() -> None:
    state = IngestState(limits=IngestLimits(max_nodes=2))
    for node in ("a", "b"):
        assert state.admit(pb.Hello(node_id=node, instance_id="i")) is None
        state.node(node)
    refusal = state.admit(pb.Hello(node_id="c", instance_id="i"))
    assert refusal is not None and refusal.status == "RESOURCE_EXHAUSTED"
    assert "INGEST_MAX_NODES=2" in refusal.message
    assert state.admit(pb.Hello(node_id="a", instance_id="j")) is None
    assert state.refused == {"nodes": 1} and set(state.nodes) == {"a", "b"}


def test_interfaces_past_the_bound_are_left_out_and_counted() -> None:
    state = IngestState(limits=IngestLimits(max_interfaces=3))
    for n in range(10):
        state.apply_counters("n", f"eth{n}", "e", {"packets": 1}, 1)
    state.apply_counters("n", "y" * (MAX_NAME + 1), "e", {"packets": 1}, 1)
    assert [i.name for i in state.node_interfaces("n")] == ["eth0", "eth1", "eth2"]
    assert state.node("n").refused == {"interfaces": 7, "too_long": 1}
    assert state.summary()["totals"]["packets"] == 3
    assert state.summary()["refused"] == {"interfaces": 7, "too_long": 1}
    assert state.node("n").describe(state.node_interfaces("n"))["refused"] == {
        "interfaces": 7, "too_long": 1}


def test_epochs_past_the_bound_fold_into_exact_totals() -> None:
    state = IngestState(limits=IngestLimits(max_epochs=2))
    for n in range(6):  # six dataplane restarts in afpacket mode: six user-space epochs
        state.apply_counters("n", "eth0", f"instance-{n}", {"packets": 10 * (n + 1)}, n)
    iface = state.interface("n", "eth0")
    assert len(iface.counters.sources) == 2 and iface.counters.retirements == 4
    assert iface.totals() == {"packets": 10 + 20 + 30 + 40 + 50 + 60}
    state.apply_counters("n", "eth0", "instance-0", {"packets": 99}, 9)  # a retired epoch
    assert iface.totals()["packets"] == 210
    assert state.node("n").refused == {"epoch_retired": 1}
    described = state.node("n").describe(state.node_interfaces("n"))
    assert described["epochs_retired"] == 4


def test_rule_hits_only_for_rules_the_control_plane_pushed() -> None:
    state = IngestState()
    state.apply_rule_hits("n", "eth0", "e", 7, 1, 60)  # nothing pushed yet
    state.set_rule_ids([7, 8])
    for rule_id in range(1000, 21000):  # the attack: made-up rule ids
        state.apply_rule_hits("n", "eth0", "e", rule_id, 1, 60)
    state.apply_rule_hits("n", "eth0", "e", 7, 5, 300)
    iface = state.interface("n", "eth0")
    assert iface.hits_by_rule() == {7: (5, 300)}
    assert state.node("n").refused == {"rule_unknown": 20001}
    state.apply_rule_hits("n", "eth0", "e", 8, 2, 120)
    state.set_rule_ids([8, 9])  # rule 7 dropped: its hits still count for one generation
    state.apply_rule_hits("n", "eth0", "e", 7, 6, 360)
    assert iface.hits_by_rule() == {7: (6, 360), 8: (2, 120)}
    state.set_rule_ids([9])  # two generations later rule 7's (and 8's) hits are gone
    assert iface.hits_by_rule() == {8: (2, 120)}
    state.set_rule_ids([9])
    assert iface.hits_by_rule() == {} and len(iface.rule_hits) == 0


def test_loss_keys_strings_and_flows_are_bounded() -> None:
    state = IngestState(limits=IngestLimits(max_loss_keys=4))
    for n in range(10):
        state.apply_loss("n", "inst", "eth0", "other", f"detail-{n}", 1)
    state.apply_loss("n", "inst", "", "other", "d" * (MAX_TEXT + 1), 1)
    state.apply_counters("n", "eth0", "e", {"packets": 1, "p" * (MAX_TEXT + 1): 5}, 1)
    state.apply_counters("n", "eth0", "x" * (MAX_TEXT + 1), {"packets": 1}, 1)
    good = ipaddress.IPv6Address("::ffff:10.0.0.1").packed
    flows = [pb.FlowRecord(addr_a=good, addr_b=good, interface="eth0", first_seen_unix_ns=1),
             pb.FlowRecord(addr_a=b"\x01" * 100_000, addr_b=good, interface="eth0"),
             pb.FlowRecord(addr_a=good, addr_b=good, interface="i" * (MAX_NAME + 1))]
    state.apply_flows("n", flows, {}, {})
    assert len(state.interface("n", "eth0").loss_totals()) == 4
    assert state.node("n").refused == {"loss_keys": 6, "too_long": 3, "flow_malformed": 2}
    assert len(state.flows) == 1


def test_aggregates_are_clipped_and_the_window_bounded() -> None:
    window = TrafficWindow()
    rows = [pb.Talker(key=f"10.0.{n // 256}.{n % 256}", packets=1, bytes=60)
            for n in range(1000)]
    message = pb.TrafficAggregate(interface="eth0", start_unix_ns=0, end_unix_ns=1,
                                  top_hosts_by_bytes=rows, top_hosts_by_packets=rows,
                                  protocols=[pb.Talker(key="k" * (MAX_TEXT + 1))])
    assert window.add(message) == (2 * (1000 - MAX_TALKERS), 1)
    assert window.entries == MAX_TALKERS
    assert window.view() is not None and window.view()["approximate"] is True  # type: ignore[index]
    for n in range(2, 500):
        message.start_unix_ns, message.end_unix_ns = n, n + 1
        window.add(message)
    assert window.entries <= MAX_WINDOW_ENTRIES
    assert len(window.ticks) == MAX_WINDOW_ENTRIES // MAX_TALKERS


def test_applied_seqs_are_remembered_for_the_newest_instances() -> None:
    state = IngestState()
    for n in range(MAX_INSTANCES + 5):
        state.mark_applied("n", f"instance-{n}", 1)
    seqs = state.node("n").applied_seq
    assert len(seqs) == MAX_INSTANCES and "instance-0" not in seqs
    assert f"instance-{MAX_INSTANCES + 4}" in seqs


@pytest.mark.parametrize(("name", "value"), [
    ("INGEST_MAX_NODES", "0"), ("INGEST_MAX_INTERFACES", "lots"),
    ("INGEST_MAX_EPOCHS", "65"), ("INGEST_MAX_LOSS_KEYS", "-1"),
])
def test_bad_bounds_stop_start_up_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value})


def test_bounds_from_settings() -> None:
    limits = IngestLimits.from_settings(load_settings({"INGEST_MAX_NODES": "10"}))
    assert limits == IngestLimits(max_nodes=10, max_interfaces=64, max_epochs=4,
                                  max_loss_keys=64)


def test_a_rule_error_is_clipped() -> None:
    from app.ingest.service import MAX_ERROR, Session, UplinkService

    service = UplinkService(IngestState(), lambda: None)
    session = Session(node_id="n", instance_id="i")
    service.record_applied(session.node_id, pb.Applied(kind=pb.Applied.KIND_RULES, ok=False,
                                                error="e" * 1_000_000))
    assert len(service.state.node("n").rules_error) == MAX_ERROR
