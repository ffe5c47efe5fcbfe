"""The hub's subscriber bounds: in all and per owner, refusals counted, slots given back once."""

from __future__ import annotations

import pytest

from app.config import ConfigError, load_settings
from app.hub import Hub, HubFull


def test_total_and_owner_bounds_refuse_and_count() -> None:
    hub = Hub(max_subscribers=3, max_per_owner=2)
    a1, a2 = hub.subscribe(["t"], owner="user:1"), hub.subscribe(["t"], owner="user:1")
    with pytest.raises(HubFull) as caught:
        hub.subscribe(["t"], owner="user:1")
    assert (caught.value.bound, caught.value.limit) == ("owner", 2)
    b1 = hub.subscribe(["t"], owner="client:7")
    with pytest.raises(HubFull) as caught:
        hub.subscribe(["t"], owner="client:8")
    assert caught.value.bound == "total"
    assert hub.refused == {"total": 1, "owner": 1}
    a1.close()
    a1.close()  # closing twice gives the slot back once
    assert hub.held_by("user:1") == 1 and hub.subscriber_count == 2
    hub.subscribe(["t"], owner="user:1")
    a2.close()
    b1.close()
    assert hub.held_by("client:7") == 0 and hub._owners == {"user:1": 1}


def test_no_bound_by_default_and_empty_topics_are_forgotten() -> None:
    hub = Hub()
    subs = [hub.subscribe([f"stats/[\"n{i}\"]"]) for i in range(100)]
    for sub in subs:
        sub.close()
    assert hub._subscribers == {} and hub.topics() == []


@pytest.mark.parametrize(("name", "value"), [
    ("WS_MAX_CONNECTIONS", "0"), ("WS_MAX_PER_PRINCIPAL", "many"),
    ("FLOE_ALLOWED_ORIGINS", "https://ok.example, ftp://files.example"),
    ("FLOE_ALLOWED_ORIGINS", "https://dash.example/app"),
])
def test_bad_values_stop_start_up_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value})


def test_allowed_origins_are_normalised() -> None:
    settings = load_settings({"FLOE_ALLOWED_ORIGINS": "HTTPS://Dash.Example:443, http://[::1]:8080/"})
    assert settings.allowed_origins == ("https://dash.example", "http://[::1]:8080")
    assert (settings.ws_max_connections, settings.ws_max_per_principal) == (1000, 32)
