"""The relay runs only with REDIS_URL (and not FLOE_RELAY=false); its bounds are checked."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from app.cluster import get_relay
from app.config import ConfigError, Settings
from app.factory import create_app
from app.ingest import get_ingest


def test_without_redis_nothing_changes(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings())
    assert get_relay(app) is None
    assert get_ingest(app).relay is None and get_ingest(app).state.relay is None
    assert "relay" not in get_ingest(app).state.summary()


def test_with_redis_the_ingest_relays(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(REDIS_URL="redis://127.0.0.1:1/0"))
    relay = get_relay(app)
    assert relay is not None and get_ingest(app).relay is relay
    assert get_ingest(app).state.summary()["relay"]["redis"] == "unreachable"
    off = create_app(make_settings(REDIS_URL="redis://127.0.0.1:1/0", FLOE_RELAY="false"))
    assert get_relay(off) is None


@pytest.mark.parametrize(("name", "value"), [
    ("FLOE_RELAY_STREAM_MAXLEN", "10"), ("FLOE_RELAY_MAX_ENTRY_BYTES", "1"),
    ("FLOE_RELAY_HEARTBEAT_SECONDS", "0"), ("FLOE_RELAY_NODE_TTL_SECONDS", "0.6"),
])
def test_bad_bounds_stop_start_up(make_settings: Callable[..., Settings], name: str,
                                  value: str) -> None:
    with pytest.raises(ConfigError, match="FLOE_RELAY"):
        create_app(make_settings(REDIS_URL="redis://127.0.0.1:1/0", **{name: value}))
