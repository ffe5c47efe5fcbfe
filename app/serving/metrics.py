"""Prometheus metrics for the serving layer, one registry per app.

Hot-path cost is kept to a dict lookup plus one `inc()` and one `observe()` per request:
label children are cached per (method, route, status).

Every label a client influences is bounded, so anonymous requests cannot grow /metrics:
`method` is one of KNOWN_METHODS or "other" (a made-up method used to add a series per
request), `route` is the app's URL rule or "<unmatched>" (never the raw path), `status` is the
code the server sent (100-599, else "other"). At most MAX_SERIES label combinations are
kept; past that every new one is counted in a single ("other", "<other>", "other") series.

Gauges and counters that already live as plain integers elsewhere (in-flight, admission
rejections, WebSocket clients and drops, QUIC datagrams dropped) are read at scrape time by
a collector instead of being updated on every event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "KNOWN_METHODS", "MAX_SERIES", "ServingCounters", "ServingMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER = "other"
MAX_SERIES = 4096

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(slots=True)
class ServingCounters:
    """Plain integers the transport code bumps; exported at scrape time."""

    inflight: int = 0
    inflight_body_bytes: int = 0  # bodies held by admitted requests (admission.py)
    admission_rejected: int = 0
    uploading: int = 0  # requests whose body is still arriving (admission.py)
    body_timeouts: int = 0
    body_too_large: int = 0
    uploads_full: int = 0
    http1_protocol_errors: int = 0  # malformed HTTP/1.1 answered and closed (http1.py)
    quic_datagrams_dropped: int = 0
    quic_datagrams_received: int = 0
    tcp_connections: int = 0  # open HTTP/1.1 and HTTP/2 connections (tcp.py)
    tcp_connections_refused: int = 0  # aborted at MAX_CONNECTIONS (tcp.py)
    ws_clients: Callable[[], int] = lambda: 0
    ws_dropped: Callable[[], int] = lambda: 0
    fairness: Any = None  # app.serving.fairness.LoopFairness, once the serving layer has one


class _CountersCollector(Collector):
    def __init__(self, counters: ServingCounters) -> None:
        self._c = counters

    def collect(self) -> Iterator[Metric]:
        c = self._c
        if c.fairness is not None:
            yield GaugeMetricFamily("floe_loop_lag_seconds",
                                    "How late the event loop's fairness probe last woke",
                                    c.fairness.lag)
            yield GaugeMetricFamily("floe_http_active_limit",
                                    "REST requests allowed to run at once (adapts to loop lag)",
                                    c.fairness.limit)
            yield CounterMetricFamily("floe_http_fairness_waits",
                                      "REST requests that waited for their turn",
                                      c.fairness.waited)
        yield GaugeMetricFamily(
            "floe_http_inflight_requests", "REST requests being handled", c.inflight
        )
        yield GaugeMetricFamily(
            "floe_http_inflight_body_bytes",
            "Request body bytes held by the REST requests being handled",
            c.inflight_body_bytes,
        )
        yield CounterMetricFamily(
            "floe_http_admission_rejected",
            "REST requests refused with 503 (admission control)",
            c.admission_rejected,
        )
        yield GaugeMetricFamily(
            "floe_http_uploading_requests",
            "REST requests whose body is still arriving (no request slot held yet)",
            c.uploading,
        )
        refused = CounterMetricFamily(
            "floe_http_bodies_refused",
            "Request bodies refused: timeout (408), too_large (413), uploads_full (503)",
            labels=("reason",),
        )
        refused.add_metric(("timeout",), c.body_timeouts)
        refused.add_metric(("too_large",), c.body_too_large)
        refused.add_metric(("uploads_full",), c.uploads_full)
        yield refused
        yield CounterMetricFamily(
            "floe_http1_protocol_errors",
            "Malformed HTTP/1.1 requests answered 400/431/501 and closed (e.g. CL with TE)",
            c.http1_protocol_errors,
        )
        yield GaugeMetricFamily("floe_ws_clients", "Open WebSocket stream clients", c.ws_clients())
        yield CounterMetricFamily(
            "floe_ws_messages_dropped", "Stream messages dropped for slow clients", c.ws_dropped()
        )
        yield CounterMetricFamily(
            "floe_quic_datagrams_dropped",
            "QUIC datagrams dropped (receive queue full)",
            c.quic_datagrams_dropped,
        )
        yield CounterMetricFamily(
            "floe_quic_datagrams_received", "QUIC datagrams received", c.quic_datagrams_received
        )
        yield GaugeMetricFamily(
            "floe_tcp_connections", "Open HTTP/1.1 and HTTP/2 connections", c.tcp_connections
        )
        yield CounterMetricFamily(
            "floe_tcp_connections_refused",
            "TCP connections aborted on arrival: MAX_CONNECTIONS were open",
            c.tcp_connections_refused,
        )


class _View:
    """Several collectors (or registries) rendered as one: generate_latest only calls
    collect()."""

    def __init__(self, collectors: tuple[Any, ...]) -> None:
        self._collectors = collectors

    def collect(self) -> Iterator[Any]:
        for collector in self._collectors:
            yield from collector.collect()


@dataclass(slots=True)
class ServingMetrics:
    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=True)
    )
    counters: ServingCounters = field(default_factory=ServingCounters)
    _requests: Counter = field(init=False)
    _latency: Histogram = field(init=False)
    _children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = field(default_factory=dict)
    _overflow: tuple[Counter, Histogram] | None = None
    # other layers' collectors (Runtime.collectors), rendered beside `registry`, which holds
    # the serving layer's own metrics only
    others: list[Collector] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._requests = Counter(
            "floe_http_requests",
            "REST requests by method, route and status",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self._latency = Histogram(
            "floe_http_request_duration_seconds",
            "REST handling time by route",
            ("method", "route"),
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_CountersCollector(self.counters))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        if method not in KNOWN_METHODS:
            method = OTHER
        children = self._children.get((method, route, status))
        if children is None:
            children = self._new_children(method, route, status)
        children[0].inc()
        children[1].observe(seconds)

    def _new_children(self, method: str, route: str, status: int) -> tuple[Counter, Histogram]:
        if len(self._children) >= MAX_SERIES:  # not cached: the key set stays bounded too
            if self._overflow is None:
                self._overflow = (
                    self._requests.labels(OTHER, "<other>", OTHER),
                    self._latency.labels(OTHER, "<other>"),
                )
            return self._overflow
        children = (
            self._requests.labels(method, route, str(status) if 100 <= status <= 599 else OTHER),
            self._latency.labels(method, route),
        )
        self._children[(method, route, status)] = children
        return children

    def render(self) -> bytes:
        """Every metric: the serving layer's and every added collector's (the dataplanes')."""
        return generate_latest(_View((self.registry, *self.others)))

    def render_serving(self) -> bytes:
        """The serving layer's own metrics only: what `/metrics` on the app shows a caller
        without stats:read (dataplane traffic is not for anonymous eyes)."""
        return generate_latest(self.registry)
