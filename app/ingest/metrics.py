"""Prometheus view of the telemetry aggregate: what the dataplanes report, per node and
interface, read from `IngestState` at scrape time (nothing on the uplink's hot path).

Counters are the control plane's totals (the sum over counter epochs, so a dataplane restart
never makes a series go backwards unless its pinned maps were reset). Rule hits add one series
per rule and interface, up to MAX_RULE_SERIES in all; past that they are left out (the count
is `floe_rule_hit_series_omitted`) and `/api/v2/stats/summary` has them.

What the ingest bounds left out (`app.ingest.limits`) is `floe_ingest_refused_total{bound}`
(streams refused at Hello included) and, per node, `floe_node_refused_total{node,bound}`.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app.ingest.state import DROP_FIELDS, IngestState

__all__ = ["IngestCollector"]

_VERDICTS = ("passed", "redirected", *DROP_FIELDS)
MAX_RULE_SERIES = 10_000  # beyond this many (rule, interface) pairs, rule hits are left out


class IngestCollector(Collector):
    def __init__(self, state: IngestState) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        state = self._state
        nodes = GaugeMetricFamily("floe_dataplane_nodes", "Dataplanes known to this control "
                                  "plane, and connected now", labels=("state",))
        nodes.add_metric(("known",), len(state.nodes))
        nodes.add_metric(("connected",), len(state.connected_nodes()))
        yield nodes

        iface = ("node", "interface")
        packets = CounterMetricFamily("floe_interface_packets", "Frames seen", labels=iface)
        octets = CounterMetricFamily("floe_interface_bytes", "Bytes seen", labels=iface)
        verdicts = CounterMetricFamily("floe_interface_verdicts", "Frames by verdict",
                                       labels=(*iface, "verdict"))
        malformed = CounterMetricFamily("floe_interface_malformed", "Malformed frames",
                                        labels=iface)
        loss = CounterMetricFamily("floe_interface_loss", "Frames or records lost before "
                                   "they were counted or reported, by source", labels=(*iface,
                                                                                      "source"))
        hits_packets = CounterMetricFamily("floe_rule_hit_packets", "Frames a rule matched",
                                           labels=(*iface, "rule"))
        hits_bytes = CounterMetricFamily("floe_rule_hit_bytes", "Bytes a rule matched",
                                         labels=(*iface, "rule"))
        interfaces = [i for _, i in sorted(state.interfaces.items())]
        hits = {id(i): i.hits_by_rule() for i in interfaces}
        rule_series = sum(len(h) for h in hits.values())
        with_hits = rule_series <= MAX_RULE_SERIES
        for interface in interfaces:
            labels = (interface.node_id, interface.name)
            totals = interface.totals()
            packets.add_metric(labels, totals.get("packets", 0))
            octets.add_metric(labels, totals.get("bytes", 0))
            for verdict in _VERDICTS:
                verdicts.add_metric((*labels, verdict), totals.get(verdict, 0))
            malformed.add_metric(labels, totals.get("malformed", 0))
            for source, count in sorted(interface.loss_totals().items()):
                loss.add_metric((*labels, source), count)
            if not with_hits:
                continue
            for rule_id, (rule_packets, rule_bytes) in sorted(hits[id(interface)].items()):
                hits_packets.add_metric((*labels, str(rule_id)), rule_packets)
                hits_bytes.add_metric((*labels, str(rule_id)), rule_bytes)
        yield from (packets, octets, verdicts, malformed, loss, hits_packets, hits_bytes)
        yield GaugeMetricFamily("floe_rule_hit_series_omitted", "(rule, interface) pairs left "
                                f"out of floe_rule_hit_* (more than {MAX_RULE_SERIES})",
                                0 if with_hits else rule_series)

        node_loss = CounterMetricFamily("floe_node_loss", "Losses of a dataplane not tied to "
                                        "one interface (its uplink buffer), by source",
                                        labels=("node", "source"))
        for node_id, node in sorted(state.nodes.items()):
            for source, count in sorted(node.loss_totals().items()):
                node_loss.add_metric((node_id, source), count)
        yield node_loss

        refused = CounterMetricFamily("floe_ingest_refused", "Items (and streams, at Hello) "
                                      "the ingest bounds left out, by bound", labels=("bound",))
        for bound, count in sorted(state.refused.items()):
            refused.add_metric((bound,), count)
        yield refused
        node_refused = CounterMetricFamily("floe_node_refused", "Items of one dataplane the "
                                           "ingest bounds left out, by bound",
                                           labels=("node", "bound"))
        for node_id, node in sorted(state.nodes.items()):
            for bound, count in sorted(node.refused.items()):
                node_refused.add_metric((node_id, bound), count)
        yield node_refused

        batches = CounterMetricFamily("floe_uplink_batches", "Uplink batches by outcome",
                                      labels=("result",))
        batches.add_metric(("applied",), state.batches_applied)
        batches.add_metric(("duplicate",), state.batches_duplicate)
        yield batches
        yield GaugeMetricFamily("floe_flows_tracked", "Flow records in the recent-flows window",
                                len(state.flows))
        yield CounterMetricFamily("floe_flows_evicted", "Flow records that left the "
                                  "recent-flows window", state.flows_evicted)
