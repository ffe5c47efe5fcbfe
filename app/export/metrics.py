"""Prometheus view of the IPFIX exporter, one series per collector, read at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app.export.exporter import Exporter
from app.export.sender import LOSS_REASONS

__all__ = ["ExportCollector"]


class ExportCollector(Collector):
    def __init__(self, exporter: Exporter) -> None:
        self._exporter = exporter

    def collect(self) -> Iterator[Metric]:
        exporter = self._exporter
        label = ("collector",)
        exported = CounterMetricFamily(
            "floe_ipfix_records_exported", "Flow records sent to an IPFIX collector and not "
            "refused (settled once a second)", labels=label)
        lost = CounterMetricFamily(
            "floe_ipfix_records_lost", "Flow records that did not reach an IPFIX collector, "
            "by reason (queue_full, refused, send_buffer, send_error, stopped, error)",
            labels=(*label, "reason"))
        pending = GaugeMetricFamily(
            "floe_ipfix_records_pending", "Flow records sent this second, not settled yet",
            labels=label)
        messages = CounterMetricFamily("floe_ipfix_messages", "IPFIX messages sent",
                                       labels=label)
        templates = CounterMetricFamily("floe_ipfix_template_sets", "IPFIX template sets "
                                        "sent (first message, refresh, after a refusal)",
                                        labels=label)
        up = GaugeMetricFamily("floe_ipfix_collector_up", "1 unless the last settled second "
                               "heard a refusal (ICMP unreachable) from the collector",
                               labels=label)
        for link in exporter.links:
            exported.add_metric((link.label,), link.exported)
            for reason in LOSS_REASONS:
                lost.add_metric((link.label, reason), link.lost[reason])
            pending.add_metric((link.label,), link.pending)
            messages.add_metric((link.label,), link.messages)
            templates.add_metric((link.label,), link.template_sets)
            up.add_metric((link.label,), 1 if link.up else 0)
        yield from (exported, lost, pending, messages, templates, up)
        yield GaugeMetricFamily("floe_ipfix_queue_records", "Ended flow records waiting "
                                "for the IPFIX exporter", exporter.queue.held)
