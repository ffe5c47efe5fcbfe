"""IngestCollector: dataplane totals as Prometheus series, rule hits bounded in number."""

from __future__ import annotations

from app.ingest.metrics import MAX_RULE_SERIES, IngestCollector
from app.ingest.state import IngestState

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(state: IngestState) -> Samples:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in IngestCollector(state).collect() for s in family.samples}


def test_rule_hits_are_series_up_to_the_bound() -> None:
    state = IngestState()
    state.set_rule_ids(range(1, MAX_RULE_SERIES + 1))  # hits may name pushed rules only
    state.apply_counters("n", "eth0", "e", {"packets": 10, "dropped_rule": 4}, 1)
    state.apply_rule_hits("n", "eth0", "e", 7, 3, 180)
    got = samples(state)
    where = (("interface", "eth0"), ("node", "n"))
    assert got[("floe_interface_packets_total", where)] == 10
    assert got[("floe_rule_hit_packets_total", (*where, ("rule", "7")))] == 3
    assert got[("floe_rule_hit_bytes_total", (*where, ("rule", "7")))] == 180
    for rule in range(1, MAX_RULE_SERIES):  # exactly MAX_RULE_SERIES pairs with rule 7
        state.apply_rule_hits("n", "eth1", "e", rule, 1, 60)
    got = samples(state)
    assert got[("floe_rule_hit_series_omitted", ())] == 0
    assert sum(1 for name, _ in got if name == "floe_rule_hit_packets_total") == MAX_RULE_SERIES
    state.apply_rule_hits("n", "eth1", "e", MAX_RULE_SERIES, 1, 60)  # one pair too many
    got = samples(state)
    assert got[("floe_rule_hit_series_omitted", ())] == MAX_RULE_SERIES + 1
    assert not any(name.startswith("floe_rule_hit_") and name.endswith("_total")
                   for name, _ in got)
    dropped = (*where, ("verdict", "dropped_rule"))
    assert got[("floe_interface_verdicts_total", dropped)] == 4  # the rest is still there
