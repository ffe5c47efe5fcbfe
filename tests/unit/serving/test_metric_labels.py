"""The serving metrics' label set has a hard bound, whatever the app or clients produce."""

from __future__ import annotations

from app.serving.metrics import MAX_SERIES, ServingMetrics


def test_series_past_the_bound_share_one_overflow_series() -> None:
    metrics = ServingMetrics()
    for i in range(MAX_SERIES + 500):
        metrics.observe("GET", f"/route/{i}", 200, 0.001)
    text = metrics.render_serving().decode()
    assert len(metrics._children) == MAX_SERIES
    assert 'floe_http_requests_total{method="other",route="<other>",status="other"} 500.0' in text
    assert text.count("floe_http_requests_total{") == MAX_SERIES + 1


def test_methods_and_statuses_are_bounded() -> None:
    metrics = ServingMetrics()
    metrics.observe("get", "/a", 200, 0.001)  # not a known spelling: "other"
    metrics.observe("X" * 1000, "/a", 200, 0.001)
    metrics.observe("GET", "/a", 1000, 0.001)
    text = metrics.render_serving().decode()
    assert 'floe_http_requests_total{method="other",route="/a",status="200"} 2.0' in text
    assert 'floe_http_requests_total{method="GET",route="/a",status="other"} 1.0' in text
