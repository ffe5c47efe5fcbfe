"""`floe dataplane` on a host's interfaces: one error for a missing interface in every mode,
and tap mode refusing an interface that carries the host's own traffic unless `--mirror`.

The dataplane runs as a real process (as an operator starts it); the refusal tests build the
host's interfaces in a namespace of their own and run the dataplane there with nsenter.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from app.cli import build_parser
from dataplane.bpf.loader import _query
from dataplane.netns import Topology, VethPair, call_in
from tests.e2e.test_dataplane_e2e import _stop
from tests.support.topology import make_topology, wait_until

__all__ = ["make_topology"]

REPO = Path(__file__).resolve().parents[2]
MISSING = "no interface 'nosuch0' in this network namespace"


def _live_modes() -> list[str]:
    """Every --mode that runs on an interface (all but pcap), as the CLI offers them."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    mode = next(a for a in sub.choices["dataplane"]._actions if a.dest == "mode")
    return [m for m in mode.choices or () if m != "pcap"]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOE_", "GRPC_"))}
    env.update(FLOE_ENV="development", FLOE_DATA_DIR=str(tmp_path / "data"),
               FLOE_CONTROL_PLANE="127.0.0.1:9", FLOE_API_KEY="none")  # nothing listens
    return env


def _floe(argv: list[str], env: dict[str, str],
          enter: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*(enter or []), sys.executable, "-m", "app.cli", *argv], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("mode", _live_modes())
def test_a_missing_interface_is_one_clear_error_in_every_mode(mode: str, tmp_path: Path) -> None:
    result = _floe(["dataplane", "--mode", mode, "--interface", "nosuch0"], _env(tmp_path))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"floe dataplane: {MISSING}"
    assert "Errno" not in result.stderr and "Traceback" not in result.stderr


def _host_like(topo: Topology, setup: str) -> tuple[str, VethPair]:
    """A namespace standing for a host: `pair.peer` is its interface, carrying the host's
    traffic the way `setup` says."""
    namespace = topo.add_namespace()
    pair = topo.add_veth(namespace=namespace)
    if setup == "address":
        topo.add_address(namespace, pair.peer, "10.253.0.2/24")
    elif setup == "default_route":
        topo.run(namespace, ["ip", "route", "add", "default", "dev", pair.peer])
    elif setup == "bridge_port":
        bridge = f"{topo.prefix}br"
        topo.run(namespace, ["ip", "link", "add", bridge, "type", "bridge"])
        topo.run(namespace, ["ip", "link", "set", pair.peer, "master", bridge])
        topo.run(namespace, ["ip", "link", "set", bridge, "up"])
        topo.add_address(namespace, bridge, "10.253.1.2/24")
    return namespace, pair


def _attached(namespace: str, ifname: str) -> int:
    """The XDP program id on `ifname` in `namespace` (0: none)."""
    from dataplane.interfaces import interface_facts

    def query() -> int:
        return int(_query(interface_facts(ifname).ifindex).prog_id)

    return call_in(namespace, query)


def _enter(namespace: str) -> list[str]:
    return ["nsenter", f"--net=/run/netns/{namespace}", "--"]


@pytest.mark.root
@pytest.mark.parametrize(("setup", "why"), [
    ("address", "(it has address 10.253.0.2/24)"),
    ("default_route", "(it has the default route)"),
    ("bridge_port", "which has address 10.253.1.2/24)"),
])
def test_tap_refuses_an_interface_carrying_the_hosts_traffic(
        make_topology: Callable[[str], Topology], tmp_path: Path, setup: str, why: str) -> None:
    namespace, pair = _host_like(make_topology("hi"), setup)
    result = _floe(["dataplane", "--mode", "tap", "--interface", pair.peer], _env(tmp_path),
                   _enter(namespace))
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"floe dataplane: tap mode takes every packet on {pair.peer} away")
    assert why in line and "--mirror" in line and "--mode passthrough" in line
    assert _attached(namespace, pair.peer) == 0  # refused before anything was attached


@pytest.mark.root
def test_mirror_says_it_is_a_span_port_and_tap_starts(
        make_topology: Callable[[str], Topology], tmp_path: Path) -> None:
    namespace, pair = _host_like(make_topology("hm"), "address")
    env = _env(tmp_path)
    argv = [*_enter(namespace), sys.executable, "-m", "app.cli", "dataplane", "--mode", "tap",
            "--mirror", "--interface", pair.peer]
    process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    try:
        started = wait_until(
            lambda: _attached(namespace, pair.peer) != 0 or process.poll() is not None, 30)
        assert started, "tap did not attach"
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
    finally:
        _stop(process)
        _floe(["dataplane", "--detach", "--interface", pair.peer], env, _enter(namespace))
    assert process.returncode == 0
    assert _attached(namespace, pair.peer) == 0


def test_mirror_is_for_tap_only(tmp_path: Path) -> None:
    result = _floe(["dataplane", "--mode", "inline", "--mirror", "--interface", "lo"],
                   _env(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "floe dataplane: --mirror applies to tap mode only")


@pytest.mark.root
def test_tap_refuses_loopback(make_topology: Callable[[str], Topology], tmp_path: Path) -> None:
    """In a namespace of its own: were the refusal broken, tap would swallow the loopback
    traffic of whatever namespace it ran in."""
    namespace = make_topology("lo").add_namespace()
    result = _floe(["dataplane", "--mode", "tap", "--interface", "lo"], _env(tmp_path),
                   _enter(namespace))
    assert result.returncode == 2, result.stderr
    assert "lo carries the host's own traffic (it has addresses 127.0.0.1/8" in result.stderr
    assert _attached(namespace, "lo") == 0
