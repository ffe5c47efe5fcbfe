"""Prometheus view of the hub's bounds: stream subscriptions refused, by bound.

Read at scrape time from `Hub.refused`; registered beside the serving layer's own metrics
(`floe_ws_clients`, `floe_ws_messages_dropped_total`), so an anonymous scrape sees it too.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app.hub.broker import Hub

__all__ = ["HubCollector"]


class HubCollector(Collector):
    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    def collect(self) -> Iterator[Metric]:
        hub = self._hub
        refused = CounterMetricFamily(
            "floe_ws_refused", "Stream connections refused at a bound: total (WS_MAX_CONNECTIONS) "
            "or per principal (WS_MAX_PER_PRINCIPAL)", labels=("bound",))
        for bound, count in sorted(hub.refused.items()):
            refused.add_metric((bound,), count)
        yield refused
        limits = GaugeMetricFamily("floe_ws_limit", "Stream connection bounds (0: none)",
                                   labels=("bound",))
        limits.add_metric(("total",), hub.max_subscribers)
        limits.add_metric(("owner",), hub.max_per_owner)
        yield limits
