"""The tap refusal's wording and the missing-interface error (no privileges needed)."""

from __future__ import annotations

import pytest

from dataplane.interfaces import (
    InterfaceFacts,
    NoSuchInterfaceError,
    host_traffic,
    interface_facts,
    tap_refusal,
)


def _facts(name: str = "eth0", addresses: tuple[str, ...] = (),
           routes: tuple[str, ...] = (), master: InterfaceFacts | None = None) -> InterfaceFacts:
    return InterfaceFacts(name=name, ifindex=2, netns=1, kind="", driver="virtio_net",
                          rx_queues=1, operstate="UP", mtu=1500, addresses=addresses,
                          default_routes=routes, master=master)


def test_an_interface_without_host_traffic_is_not_refused() -> None:
    assert host_traffic(_facts()) == "" and tap_refusal(_facts()) == ""


def test_the_refusal_is_one_line_naming_what_it_carries() -> None:
    facts = _facts(addresses=("192.0.2.2/24", "fd00::2/64", "10.0.0.1/8", "10.1.0.1/8"),
                   routes=("default via 192.0.2.1", "default via fd00::1"))
    line = tap_refusal(facts)
    assert "\n" not in line
    assert ("(it has addresses 192.0.2.2/24, fd00::2/64, 10.0.0.1/8, … and the default route "
            "via 192.0.2.1)") in line
    assert line.endswith("watch it with --mode passthrough, or add --mirror if eth0 is a "
                         "mirror/SPAN port")


def test_a_port_of_an_addressed_bridge_is_refused() -> None:
    bridge = _facts("br0", routes=("default",))
    line = tap_refusal(_facts(master=bridge))
    assert "(it is a port of br0, which has the default route)" in line
    assert tap_refusal(_facts(master=_facts("br0"))) == ""


@pytest.mark.parametrize("name", ["nosuch0", "", "../etc", "a" * 16, " eth0"])
def test_a_missing_or_impossible_name_is_one_error(name: str) -> None:
    with pytest.raises(NoSuchInterfaceError) as caught:
        interface_facts(name)
    assert str(caught.value) == f"no interface {name!r} in this network namespace"


def test_loopback_facts() -> None:
    facts = interface_facts("lo")
    assert facts.ifindex == 1 and facts.rx_queues >= 1
    assert "127.0.0.1/8" in facts.addresses  # scope host: the host's own traffic
