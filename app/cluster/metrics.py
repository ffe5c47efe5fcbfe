"""Prometheus view of the cluster relay: what this instance published, read and lost."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app.cluster.relay import Relay

__all__ = ["RelayCollector"]


class RelayCollector(Collector):
    def __init__(self, relay: Relay) -> None:
        self._relay = relay

    def collect(self) -> Iterator[Metric]:
        relay = self._relay
        stats = relay.stats
        entries = CounterMetricFamily(
            "floe_relay_entries", "Relay entries by outcome: published by this instance, not "
            "published (by reason), received from other instances, lost (never received)",
            labels=("result",))
        entries.add_metric(("published",), stats.published)
        for reason, count in sorted(stats.unpublished.items()):
            entries.add_metric((f"unpublished_{reason}",), count)
        entries.add_metric(("received",), stats.received)
        entries.add_metric(("lost",), stats.lost_entries)
        entries.add_metric(("malformed",), stats.malformed)
        entries.add_metric(("oversize",), stats.oversize)
        yield entries
        yield CounterMetricFamily("floe_relay_unpublished_batches", "Dataplane batches this "
                                  "instance accepted but could not relay",
                                  stats.unpublished_batches)
        yield CounterMetricFamily("floe_relay_unpublished_flow_records", "Flow records of "
                                  "those batches", stats.unpublished_flow_records)
        yield CounterMetricFamily("floe_relay_lost_flow_records", "Flow records of other "
                                  "instances' dataplanes this instance never received",
                                  stats.lost_flow_records)
        yield CounterMetricFamily("floe_relay_batches_applied", "Batches of other instances' "
                                  "dataplanes applied here", stats.applied)
        resets = CounterMetricFamily("floe_relay_resets", "Times the relay stream started "
                                     "over (Redis restarted, stream replaced)",
                                     labels=("reason",))
        for reason, count in sorted(stats.resets.items()):
            resets.add_metric((reason,), count)
        yield resets
        yield GaugeMetricFamily("floe_relay_connected", "1 while the relay reads Redis",
                                1 if relay.connected else 0)
        yield GaugeMetricFamily("floe_relay_peers", "Other control-plane instances heard "
                                "within FLOE_RELAY_NODE_TTL_SECONDS", relay.peer_count)
        yield GaugeMetricFamily("floe_relay_queued", "Entries waiting to be published",
                                relay.queued_count)
