"""Every error the transport produces is in the standard's envelope (in-process app)."""

from __future__ import annotations

from quart import Quart

from app.runtime import get_runtime
from app.serving import V1_SUNSET


def _assert_error(body: dict, code: str) -> None:  # type: ignore[type-arg]
    assert body["status"] == "error"
    assert body["error"]["code"] == code
    assert body["meta"]["request_id"]


async def test_404_405_envelopes(serving_app: Quart) -> None:
    client = serving_app.test_client()
    response = await client.get("/api/v2/does-not-exist")
    assert response.status_code == 404
    _assert_error(await response.get_json(), "not_found")
    response = await client.delete("/api/v2/ping")
    assert response.status_code == 405
    _assert_error(await response.get_json(), "method_not_allowed")
    assert "GET" in response.headers["Allow"]


async def test_422_and_415(serving_app: Quart) -> None:
    client = serving_app.test_client()
    response = await client.post("/api/v2/_echo", json={"wrong": 1})
    assert response.status_code == 422
    body = await response.get_json()
    _assert_error(body, "validation_error")
    assert body["error"]["details"][0]["loc"] == ["name"]
    response = await client.post(
        "/api/v2/_echo", data="name=x", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    _assert_error(await response.get_json(), "unsupported_media_type")
    response = await client.post("/api/v2/_echo", json={"name": "x"})
    assert response.status_code == 200


async def test_413_with_content_length(serving_app: Quart) -> None:
    client = serving_app.test_client()
    response = await client.post(
        "/api/v2/_echo", data="x" * 5000, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    _assert_error(await response.get_json(), "payload_too_large")


async def test_request_id_and_v1_headers(serving_app: Quart) -> None:
    client = serving_app.test_client()
    response = await client.get("/api/v1/ping", headers={"X-Request-ID": "abc-123"})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "abc-123"
    assert (await response.get_json())["meta"]["version"] == 1
    assert response.headers["Deprecation"] == "true"
    assert response.headers["Sunset"] == V1_SUNSET
    assert response.headers["Link"] == '</api/v2/ping>; rel="successor-version"'
    assert "Warning" in response.headers
    v2 = await client.get("/api/v2/ping")
    assert "Deprecation" not in v2.headers and len(v2.headers["X-Request-ID"]) == 16


async def test_docs_page_is_offline_and_openapi_lists_ping(serving_app: Quart) -> None:
    client = serving_app.test_client()
    page = await client.get("/api/v2/docs")
    assert page.status_code == 200
    html = await page.get_data(as_text=True)
    assert "/api/v2/openapi.json" in html
    assert '<script src="/api/v2/docs.js"' in html and "cdn" not in html.lower()
    script = await (await client.get("/api/v2/docs.js")).get_data(as_text=True)
    assert "/api/v2/openapi.json" in script and "http" not in script
    spec = await (await client.get("/api/v2/openapi.json")).get_json()
    assert "/api/v2/ping" in spec["paths"]


async def test_metrics_count_requests_by_route_template(serving_app: Quart) -> None:
    client = serving_app.test_client()
    for _ in range(3):
        await client.get("/api/v2/ping")
    await client.get("/api/v2/nope")
    text = await (await client.get("/metrics")).get_data(as_text=True)
    assert 'floe_http_requests_total{method="GET",route="/api/v2/ping",status="200"} 3.0' in text
    assert 'route="<unmatched>",status="404"' in text
    assert "floe_http_request_duration_seconds_bucket" in text
    for name in (
        "floe_http_inflight_requests",
        "floe_http_admission_rejected_total",
        "floe_ws_clients",
        "floe_ws_messages_dropped_total",
        "floe_quic_datagrams_dropped_total",
    ):
        assert name in text


async def test_probes(serving_app: Quart) -> None:
    client = serving_app.test_client()
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    checks = (await ready.get_json())["checks"]
    assert checks["database"]["ok"] is True and checks["dataplane"]["ok"] is True

    async def failing() -> tuple[bool, str]:
        return False, "down"

    get_runtime(serving_app).readiness["broken"] = failing
    unready = await client.get("/readyz")
    assert unready.status_code == 503
    assert (await unready.get_json())["checks"]["broken"] == {"ok": False, "detail": "down"}
