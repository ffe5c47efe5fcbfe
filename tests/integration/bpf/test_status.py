"""`floe dataplane --status`: counters, config and every rule with its hits, from the pins."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from dataplane.bpf import Rule, RuleSet, XdpProgram
from dataplane.bpf.layout import MAPS
from dataplane.bpf.loader import pin_dir_for
from dataplane.netns import Topology
from dataplane.trafficgen import AfPacketSender, FrameSpec, build_frame, malformed_frame
from tests.support.topology import VethNs, wait_until

pytestmark = pytest.mark.root

ROOT = Path(__file__).resolve().parents[3]
RULES = RuleSet([
    Rule(1, "deny", src="192.0.2.0/24"),
    Rule(2, "allow", dst="2001:db8::/32"),
    Rule(3, "deny", port=23),  # tcp and udp: two map entries, one rule
    Rule(4, "deny", proto="icmp"),
])
FRAMES = (
    [build_frame(FrameSpec(src="192.0.2.9", dst="10.4.0.1", proto="udp"))] * 4
    + [build_frame(FrameSpec(src="10.4.0.2", dst="10.4.0.1", proto="tcp", dport=23))] * 3
    + [build_frame(FrameSpec(src="10.4.0.2", dst="10.4.0.1", proto="icmp"))] * 2
    + [build_frame(FrameSpec(src="10.4.0.2", dst="10.4.0.1", proto="udp", dport=53))] * 5
    + [malformed_frame("ipv4_bad_ihl")]
)


def _status(ifname: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", "dataplane", "--status",
                           "--interface", ifname, *extra], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False)


def test_status_shows_counters_config_and_rule_hits(
        veth_ns: VethNs, make_xdp: Callable[..., XdpProgram]) -> None:
    ifname = veth_ns.pair.host
    prog = make_xdp(ifname, mode="inline")
    prog.rules.apply(RULES)
    AfPacketSender(veth_ns.pair.peer, veth_ns.namespace).send(FRAMES, timeout=10)
    assert wait_until(lambda: prog.counters().packets == len(FRAMES))

    answer = _status(ifname, "--json")
    assert answer.returncode == 0, answer.stderr
    status = json.loads(answer.stdout)
    assert status["attached"] == "native" and status["mode"] == "inline"
    assert status["default_action"] == "allow"
    counters = status["counters"]
    assert counters["packets"] == 15 and counters["dropped_rule"] == 9
    dropped_bytes = sum(len(frame) for frame in FRAMES[:9])  # the first nine hit deny rules
    assert counters["dropped_bytes"] == dropped_bytes
    assert counters["passed"] == 6 and status["malformed_by_reason"] == {"ipv4_bad_ihl": 1}
    rules = {r["id"]: (r["action"], r["match"], r["packets"]) for r in status["rules"]}
    assert rules == {
        1: ("deny", ["src 192.0.2.0/24"], 4),
        2: ("allow", ["dst 2001:db8::/32"], 0),
        3: ("deny", ["dst port 23/tcp", "dst port 23/udp"], 3),
        4: ("deny", ["proto icmp"], 2),
    }

    text = _status(ifname)
    assert text.returncode == 0, text.stderr
    assert f"floe_xdp on {ifname}" in text.stdout and "rules 4" in text.stdout
    assert "src 192.0.2.0/24" in text.stdout and "malformed 1: ipv4_bad_ihl 1" in text.stdout
    assert f"dropped_rule 9  dropped_default 0  dropped_malformed 0  (dropped bytes " \
           f"{dropped_bytes:,})" in text.stdout


def test_status_of_an_interface_without_floe_says_so(veth_ns: VethNs) -> None:
    answer = _status(veth_ns.pair.host)
    assert answer.returncode == 1
    assert "no pinned floe maps" in answer.stderr
    assert _status("").returncode == 2


def test_status_of_pins_whose_interface_is_gone(
        make_topology: Callable[[str], Topology], make_xdp: Callable[..., XdpProgram]) -> None:
    topo = make_topology("sg")
    namespace = topo.add_namespace()
    pair = topo.add_veth(namespace=namespace)
    prog = make_xdp(pair.host, mode="inline")
    AfPacketSender(pair.peer, namespace).send(FRAMES[:4], timeout=10)
    assert wait_until(lambda: prog.counters().packets == 4)
    prog.close()
    topo.run(None, ["ip", "link", "del", pair.host])  # the program goes, the pins stay
    topo.veths.remove(pair)
    status = json.loads(_status(pair.host, "--json").stdout)
    assert status["ifindex"] == 0 and status["attached"] is None
    assert status["programs"] == [] and status["counters"]["packets"] == 4
    assert "not attached: pins only" in _status(pair.host).stdout


def _fake_pins(name: str, *, shrink_counters: bool, skip: str = "") -> Path:
    """Pins made with bpftool: this release's map sizes, optionally floe_counters 8 words
    shorter (as before the fast path's pairs) or one map missing (a loader killed while
    pinning)."""
    pin_dir = pin_dir_for(name)
    pin_dir.mkdir(parents=True)
    for map_name, (key_type, value_type, _percpu) in MAPS.items():
        if map_name == skip:
            continue
        key = ctypes.sizeof(key_type) if key_type is not None else 4
        value = ctypes.sizeof(value_type) if value_type is not None else 4
        if map_name == "floe_counters" and shrink_counters:
            value -= 8 * 8
        kind = "array" if key == 4 else "hash"
        entries = 1
        if key == value == 0:  # the ring buffer: no key or value, a size in pages
            kind, entries = "ringbuf", 4096
        subprocess.run(["bpftool", "map", "create", str(pin_dir / map_name), "type", kind,
                        "key", str(key), "value", str(value), "entries", str(entries),
                        "name", map_name[:15]], check=True, capture_output=True)
    return pin_dir


def _detach(name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", "dataplane", "--detach",
                           "--interface", name], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.mark.parametrize(("shrink", "skip", "message"), [
    (True, "", "layout changed"),  # an older release's pins
    (False, "floe_flows", "is missing"),  # a loader killed while pinning
])
def test_pins_that_cannot_be_read_are_refused_yet_detach_clears_them(
        shrink: bool, skip: str, message: str) -> None:
    """Pins never decoded with the wrong offsets, and never stuck: --status refuses them
    (naming the command that clears them, for another layout); --detach removes them."""
    name = f"flold{os.getpid() % 100000}"
    pin_dir = pin_dir_for(name)
    try:
        _fake_pins(name, shrink_counters=shrink, skip=skip)
        answer = _status(name)
        assert answer.returncode == 1, answer
        assert message in answer.stderr
        assert f"floe dataplane --detach --interface {name}" in answer.stderr
        detach = _detach(name)
        assert detach.returncode == 0, detach.stderr
        assert not pin_dir.exists()
    finally:
        if pin_dir.exists():
            for pin in pin_dir.iterdir():
                pin.unlink()
            pin_dir.rmdir()
        with contextlib.suppress(OSError):  # the namespace's directory, when now empty
            pin_dir.parent.rmdir()
