"""IngestCollector: dataplane totals as Prometheus series, rule hits bounded in number."""

from __future__ import annotations

from app.ingest.metrics import MAX_RULE_SERIES, IngestCollector
from app.ingest.state import IngestState


def samples(state: IngestState) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in IngestCollector(state).collect():
        for sample in family.samples:
            out[sample.name] = out.get(sample.name, 0.0) + sample.value
    return out


def test_rule_hits_are_series_until_there_are_too_many() -> None:
    state = IngestState()
    state.apply_counters("n", "eth0", "e", {"packets": 10, "dropped_rule": 4}, 1)
    for rule in range(3):
        state.apply_rule_hits("n", "eth0", "e", rule, 1, 60)
    got = samples(state)
    assert got["floe_interface_packets_total"] == 10
    assert got["floe_rule_hit_packets_total"] == 3 and got["floe_rule_hit_series_omitted"] == 0
    per_interface = MAX_RULE_SERIES // 2 + 1
    for name in ("eth1", "eth2"):
        for rule in range(per_interface):
            state.apply_rule_hits("n", name, "e", rule, 1, 60)
    got = samples(state)
    assert "floe_rule_hit_packets_total" not in got
    assert got["floe_rule_hit_series_omitted"] == 3 + 2 * per_interface
    assert got["floe_interface_verdicts_total"] == 4  # the rest is still there
