"""pytest fixtures around dataplane.netns for every root test (XDP, AF_XDP, demo).

Import the fixtures into a folder's conftest.py:

    from tests.support.topology import make_topology, make_xdp, veth_ns  # noqa: F401

Names are `<area><random hex><suffix>` so parallel runs never collide; every namespace,
veth and attached program is removed at teardown, also when the test fails.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from dataplane.bpf import PIN_ROOT, BpfError, XdpProgram
from dataplane.bpf.layout import FLOE_RING_BYTES
from dataplane.bpf.loader import netns_pin_key, pin_dir_for
from dataplane.netns import Topology, VethPair, call_in, unique_prefix

__all__ = ["VethNs", "make_topology", "make_xdp", "veth_ns", "wait_until"]


@dataclass(slots=True)
class VethNs:
    """A namespace `namespace` holding `pair.peer`; `pair.host` is in the test's namespace."""

    topology: Topology
    namespace: str
    pair: VethPair


def wait_until(predicate: Callable[[], bool], timeout: float = 2.0, step: float = 0.01) -> bool:
    """Poll `predicate` until true or `timeout` (veth delivery is asynchronous: NAPI)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


@pytest.fixture
def make_topology() -> Iterator[Callable[[str], Topology]]:
    """Factory: `make_topology("area")` -> a Topology removed at teardown."""
    created: list[Topology] = []

    def factory(area: str = "t") -> Topology:
        topo = Topology(unique_prefix(area))
        created.append(topo)
        return topo

    yield factory
    for topo in created:
        names = [name for pair in topo.veths for name in (pair.host, pair.peer)]
        inside = [PIN_ROOT / call_in(ns, netns_pin_key) for ns in topo.namespaces]
        topo.close()
        for name in names:  # pins a failed test left behind (the program went with the veth)
            if pin_dir_for(name).exists():
                with contextlib.suppress(BpfError), XdpProgram.open(name) as left:
                    left.detach()
        for directory in inside:  # pins made in the namespaces, whose programs went with them
            _remove_tree(directory)


def _remove_tree(directory: Path) -> None:
    if not directory.is_dir():
        return
    for pin_dir in directory.iterdir():
        for pin in pin_dir.iterdir():
            pin.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            pin_dir.rmdir()
    with contextlib.suppress(OSError):
        directory.rmdir()


@pytest.fixture
def veth_ns(make_topology: Callable[[str], Topology]) -> VethNs:
    """One namespace with a quiet veth pair (IPv6 off: the kernel sends nothing on it)."""
    topo = make_topology("t")
    namespace = topo.add_namespace()
    return VethNs(topo, namespace, topo.add_veth(namespace=namespace))


@pytest.fixture
def make_xdp() -> Iterator[Callable[..., XdpProgram]]:
    """Factory: attach floe_xdp to an interface; detached, unpinned and its handles closed at
    teardown (each handle holds ~20 map fds: left open, a long run passes FD_SETSIZE)."""
    attached: list[XdpProgram] = []

    def factory(ifname: str, mode: Literal["tap", "inline", "passthrough"] = "inline",
                prefer: Literal["native", "generic"] = "native",
                ring_bytes: int = FLOE_RING_BYTES) -> XdpProgram:
        program = XdpProgram.attach(ifname, mode=mode, prefer=prefer, ring_bytes=ring_bytes)
        attached.append(program)
        return program

    yield factory
    for program in attached:
        program.close()
        with contextlib.suppress(BpfError):  # already detached by the test
            with XdpProgram.open(program.ifname) as again:
                again.detach()
