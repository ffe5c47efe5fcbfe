"""Prometheus view of the identity layer's refusals and losses, read at scrape time from
the counters the login limits and the mailer keep (nothing added to the request path)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["IdentityCollector"]


class IdentityCollector(Collector):
    def __init__(self, service: Any) -> None:
        self._service = service  # IdentityService: limiter, mailer

    def collect(self) -> Iterator[Metric]:
        limiter = self._service.limiter
        refused = CounterMetricFamily(
            "floe_login_refused",
            "Logins answered 429 before the password check, by the limit that refused them",
            labels=("limit",),
        )
        for limit, count in sorted(limiter.refused.items()):
            refused.add_metric((limit,), count)
        yield refused
        tracked = GaugeMetricFamily(
            "floe_login_limit_keys", "Keys held by the in-memory login limits", labels=("table",)
        )
        evicted = CounterMetricFamily(
            "floe_login_limit_evictions",
            "Keys dropped from a full in-memory login limit table",
            labels=("table",),
        )
        for table, throttle in (("email_source", limiter.pairs), ("source", limiter.sources)):
            tracked.add_metric((table,), len(throttle))
            evicted.add_metric((table,), throttle.evicted)
        yield tracked
        yield evicted
        mailer = self._service.mailer
        yield CounterMetricFamily(
            "floe_mail_sent", "Account mails handed to SMTP", mailer.delivered
        )
        unsent = CounterMetricFamily(
            "floe_mail_unsent", "Account mails not sent, by reason", labels=("reason",)
        )
        for reason in ("no_smtp", "smtp_error"):
            unsent.add_metric((reason,), mailer.unsent.get(reason, 0))
        yield unsent
