"""FLOE_IPFIX_* knobs: good values are taken, bad ones stop start-up with one line naming
the variable (the CLI side is tests/integration/export/test_config.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from app.config import ConfigError, Settings, extra_endpoints
from app.export import get_exporter
from app.factory import create_app


def endpoints(make_settings: Callable[..., Settings], value: str) -> list[tuple[str, int]]:
    return extra_endpoints(make_settings(FLOE_IPFIX_COLLECTORS=value), "FLOE_IPFIX_COLLECTORS",
                           limit=3)


@pytest.mark.parametrize(("value", "parsed"), [
    ("", []),
    (" , ", []),
    ("127.0.0.1:4739", [("127.0.0.1", 4739)]),
    ("collector.example:2055, [2001:db8::1]:4739", [("collector.example", 2055),
                                                    ("2001:db8::1", 4739)]),
])
def test_collectors_are_parsed(make_settings: Callable[..., Settings], value: str,
                               parsed: list[tuple[str, int]]) -> None:
    assert endpoints(make_settings, value) == parsed


@pytest.mark.parametrize(("value", "message"), [
    ("collector", "'collector' is not host:port"),
    (":4739", "':4739' is not host:port"),
    ("a:0", "'a:0': the port must be 1-65535"),
    ("a:65536", "'a:65536': the port must be 1-65535"),
    ("a:x", "'a:x': the port must be 1-65535"),
    ("2001:db8::1:4739", "write an IPv6 address as [addr]:port"),
    ("a b:1", "'a b:1' is not host:port"),
    ("a:1,a:1", "'a:1' is listed twice"),
    ("a:1,b:1,c:1,d:1", "at most 3 entries, not 4"),
])
def test_bad_collectors_name_the_variable(make_settings: Callable[..., Settings], value: str,
                                          message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        endpoints(make_settings, value)
    text = str(caught.value)
    assert text.startswith("FLOE_IPFIX_COLLECTORS: ") and message in text
    assert "\n" not in text


@pytest.mark.parametrize(("name", "value"), [
    ("FLOE_IPFIX_MTU", "100"), ("FLOE_IPFIX_MTU", "70000"),
    ("FLOE_IPFIX_TEMPLATE_SECONDS", "0"), ("FLOE_IPFIX_TEMPLATE_MESSAGES", "x"),
    ("FLOE_IPFIX_QUEUE_RECORDS", "10"), ("FLOE_IPFIX_MESSAGES_PER_SECOND", "-1"),
])
def test_bad_knobs_stop_the_app(make_settings: Callable[..., Settings], name: str,
                                value: str) -> None:
    with pytest.raises(ConfigError, match=f"^{name}="):
        create_app(make_settings(FLOE_IPFIX_COLLECTORS="127.0.0.1:4739", **{name: value}))


def test_an_unresolvable_collector_stops_the_app(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ConfigError, match=r"^FLOE_IPFIX_COLLECTORS: cannot resolve "
                                          r"'no-such-host\.invalid'"):
        create_app(make_settings(FLOE_IPFIX_COLLECTORS="no-such-host.invalid:4739"))


def test_without_collectors_there_is_no_exporter(make_settings: Callable[..., Settings]) -> None:
    assert get_exporter(create_app(make_settings())) is None
    app = create_app(make_settings(FLOE_IPFIX_COLLECTORS="127.0.0.1:4739,[::1]:4739"))
    exporter = get_exporter(app)
    assert exporter is not None
    assert [link.label for link in exporter.links] == ["127.0.0.1:4739", "[::1]:4739"]
    for link in exporter.links:
        link.close()
