"""Interface facts over netlink answer for the calling thread's namespace (tests and the
demo enter namespaces per thread; /sys/class/net shows the one sysfs was mounted in)."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from dataplane.interfaces import NoSuchInterfaceError, interface_facts, tap_refusal
from dataplane.netns import NETNS_DIR, Topology, call_in
from dataplane.sources.afxdp import rx_queues

pytestmark = pytest.mark.root


def test_facts_of_an_interface_in_another_namespace(
        make_topology: Callable[[str], Topology]) -> None:
    topo = make_topology("if")
    namespace = topo.add_namespace()
    pair = topo.add_veth(namespace=namespace, queues=4)
    topo.add_address(namespace, pair.peer, "10.254.0.2/24")
    topo.run(namespace, ["ip", "route", "add", "default", "via", "10.254.0.1"])
    facts = call_in(namespace, lambda: interface_facts(pair.peer))
    assert facts.ifindex == pair.peer_ifindex
    assert facts.netns == os.stat(NETNS_DIR / namespace).st_ino != interface_facts("lo").netns
    assert (facts.kind, facts.driver, facts.rx_queues) == ("veth", "veth", 4)
    assert "10.254.0.2/24" in facts.addresses
    assert facts.default_routes == ("default via 10.254.0.1",)
    assert call_in(namespace, lambda: rx_queues(pair.peer)) == [0, 1, 2, 3]
    # the same name does not exist here, whatever sysfs shows
    with pytest.raises(NoSuchInterfaceError, match="no interface"):
        interface_facts(pair.peer)
    host = interface_facts(pair.host)
    assert host.addresses == () and host.default_routes == () and not tap_refusal(host)


def test_a_default_veth_uses_one_rx_queue(make_topology: Callable[[str], Topology]) -> None:
    """Netlink's queue count is the allocated maximum (one per CPU on veth); AF_XDP binds
    the queues in use, as ethtool's channels say."""
    pair = make_topology("q1").add_veth()
    assert interface_facts(pair.host).rx_queues == 1
    assert rx_queues(pair.host) == [0]
