"""Per-node views of the shared recent-flows window: counts kept incrementally and talkers
ranked from one pass must equal what walking the window for each node set gives."""

from __future__ import annotations

import ipaddress
import itertools
import random
from typing import Any

from app.ingest.state import IngestState
from floe.dataplane.v1 import uplink_pb2 as pb

NODES = ("a", "b", "c")


def _record(rng: random.Random) -> Any:
    def v4(host: int) -> bytes:
        return ipaddress.IPv6Address(f"::ffff:10.0.0.{host}").packed

    return pb.FlowRecord(addr_a=v4(rng.randrange(1, 30)), addr_b=v4(rng.randrange(30, 40)),
                         port_a=rng.randrange(1000, 1010), port_b=53, proto=17,
                         interface="eth0", packets_ab=rng.randrange(1, 100),
                         bytes_ab=rng.randrange(60, 9000), packets_ba=rng.randrange(0, 5),
                         bytes_ba=rng.randrange(0, 500), first_seen_unix_ns=1)


def _naive_talkers(state: IngestState, nodes: frozenset[str], limit: int) -> list[Any]:
    by_host: dict[str, list[int]] = {}
    for flow in state.flows.values():
        if flow["node_id"] in nodes:
            for host, packets, octets in ((flow["src"], flow["packets_ab"], flow["bytes_ab"]),
                                          (flow["dst"], flow["packets_ba"], flow["bytes_ba"])):
                slot = by_host.setdefault(host, [0, 0])
                slot[0] += packets
                slot[1] += octets
    return sorted(((b, p, h) for h, (p, b) in by_host.items()), reverse=True)[:limit]


def test_counts_and_talkers_per_node_set_match_a_walk_of_the_window() -> None:
    rng = random.Random(7)
    state = IngestState(max_flows=200)
    for _ in range(3000):  # updates of the same keys, new keys, and evictions across nodes
        state.apply_flow(rng.choice(NODES), _record(rng), "eth0", "new", "none")
    assert state.flows_evicted > 0
    for node in NODES:
        assert state.node(node).flows_tracked == sum(
            1 for f in state.flows.values() if f["node_id"] == node)
    assert sum(state.node(n).flows_tracked for n in NODES) == len(state.flows)
    for size in (1, 2, 3):
        for subset in itertools.combinations(NODES, size):
            nodes = frozenset(subset)
            summary = state.summary(nodes)["flows"]
            assert summary["tracked"] == sum(
                1 for f in state.flows.values() if f["node_id"] in nodes)
            assert summary["evicted"] == sum(state.node(n).flows_evicted for n in nodes)
            ranked = state.top_talkers(5, nodes)
            assert sorted(((t["bytes"], t["packets"], t["host"]) for t in ranked),
                          reverse=True) == _naive_talkers(state, nodes, 5)
    everything = state.top_talkers(5)
    assert [t["bytes"] for t in everything] == [
        b for b, _, _ in _naive_talkers(state, frozenset(NODES), 5)]


def test_views_are_computed_once_per_change_and_never_stale() -> None:
    """REST /stats/summary reads `view()`: cached per node set until the state changes."""
    from app.ingest.state import IngestState

    state = IngestState()
    state.apply_counters("n1", "eth0", "e", {"packets": 5}, 1)
    state.mark_applied("n1", "i", 1)
    first = state.view()
    assert state.view() is first  # asked again, nothing changed: the same object
    assert state.view(frozenset({"n1"})) is not first  # another node set: its own view
    state.apply_counters("n1", "eth0", "e", {"packets": 9}, 2)
    state.mark_applied("n1", "i", 2)  # a batch ends: every view is recomputed
    assert state.view()["totals"]["packets"] == 9
    before_tick = state.view()
    state.tick()
    assert state.view() is not before_tick
    state.refuse("n1", "interfaces")
    assert state.view()["refused"] == {"interfaces": 1}
