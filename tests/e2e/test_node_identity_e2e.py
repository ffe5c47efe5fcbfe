"""One node, one identity, with real processes: two `floe dataplane` with the same node id,
and `floe demo` beside a dataplane already running under this host's default node id.

The issue's symptom was a second dataplane silently taking the first one's session: /nodes
then said disconnected, /readyz 0 of 1, and new rule sets never reached the running one.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from dataplane.netns import Topology, VethPair, unique_prefix
from tests.e2e.conftest import ControlPlane
from tests.e2e.test_dataplane_e2e import REPO, _put_rules, _stop, _wait_generation
from tests.support.server import FloeServer

pytestmark = pytest.mark.root


@pytest.fixture
def two_veths() -> Iterator[tuple[VethPair, VethPair]]:
    with Topology(unique_prefix("id")) as topology:
        namespace = topology.add_namespace()
        yield (topology.add_veth("a", "x", namespace=namespace),
               topology.add_veth("b", "y", namespace=namespace))


def _dataplane(server: FloeServer, *args: str,
               env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "dataplane", *args], cwd=REPO,
        env={**server.env, "FLOE_TICK_SECONDS": "0.1", **(env or {})},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _node(plane: ControlPlane, node_id: str) -> dict[str, Any] | None:
    nodes = plane.client.get("/api/v2/nodes").json()["data"]
    return next((n for n in nodes if n["node_id"] == node_id), None)


def _until(predicate: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, what
        time.sleep(0.1)
    return value


def _ready(plane: ControlPlane) -> str:
    url = f"http://127.0.0.1:{plane.server.http_port}/readyz"
    detail: str = httpx.get(url, timeout=10).json()["checks"]["dataplane"]["detail"]
    return detail


def _detach(plane: ControlPlane, ifname: str) -> None:
    subprocess.run([sys.executable, "-m", "app.cli", "dataplane", "--detach", "--interface",
                    ifname], env=dict(plane.server.env), cwd=REPO, capture_output=True,
                   timeout=60, check=False)


def test_a_second_dataplane_with_the_same_node_id_is_refused_and_the_first_keeps_its_rules(
        control_plane: ControlPlane, two_veths: tuple[VethPair, VethPair]) -> None:
    first_if, second_if = (pair.host for pair in two_veths)
    key = control_plane.client.post("/api/v2/clients", json={
        "name": "edge-same", "scopes": ["dataplane:write"], "node_id": "edge-same"})
    assert key.status_code == 201, key.text
    same = ("--mode", "inline", "--node-id", "edge-same")
    env = {"FLOE_API_KEY": key.json()["data"]["api_key"]}  # one key, as two copies of a host
    first = _dataplane(control_plane.server, *same, "--interface", first_if, env=env)
    second = None
    try:
        _until(lambda: (_node(control_plane, "edge-same") or {}).get("connected"),
               "the first dataplane never connected")
        before = _node(control_plane, "edge-same")
        assert before is not None
        second = _dataplane(control_plane.server, *same, "--interface", second_if, env=env)
        _until(lambda: (_node(control_plane, "edge-same") or {}).get("refused"),
               "the second dataplane was never refused")
        generation = _put_rules(control_plane, {"rules": [
            {"id": 9, "action": "deny", "src": "198.51.100.0/24"}]})
        _wait_generation(control_plane, generation)  # reached the first one
        time.sleep(1.0)  # a few of the second's retries (backoff 0.2 s → 10 s)
        after = _node(control_plane, "edge-same")
        assert after is not None and after["connected"] is True
        assert (after["instance_id"], after["peer"], after["connected_since"]) == (
            before["instance_id"], before["peer"], before["connected_since"])
        assert after["takeovers"] == 0 and after["refused"]["node_in_use"] >= 1
        assert after["rules_generation_applied"] == generation
        assert [i["name"] for i in after["interfaces"]] == [first_if]
        assert _ready(control_plane) == "1 dataplane(s) connected of 1 known"
        assert second.poll() is None  # it waits its turn, retrying
    finally:
        for process in (first, second):
            if process is not None:
                _stop(process)
        for ifname in (first_if, second_if):
            _detach(control_plane, ifname)
    assert second is not None and second.stderr is not None
    log = second.stderr.read().decode()
    assert "control plane refused this dataplane" in log
    assert "node 'edge-same' is already connected from " + before["peer"] in log


def test_the_demo_beside_a_running_dataplane_is_a_node_of_its_own(
        control_plane: ControlPlane, two_veths: tuple[VethPair, VethPair]) -> None:
    """The issue's `make dev` twice: the demo used to take this host's node over."""
    host = socket.gethostname()
    running = _dataplane(control_plane.server, "--mode", "afpacket", "--interface",
                         two_veths[0].host)  # this host's default node id
    try:
        _until(lambda: (_node(control_plane, host) or {}).get("connected"),
               "the host's dataplane never connected")
        before = _node(control_plane, host)
        assert before is not None
        demo = subprocess.run(
            [sys.executable, "-m", "app.cli", "demo", "--duration", "3", "--pps", "500"],
            cwd=REPO, env=dict(control_plane.server.env), capture_output=True, text=True,
            timeout=90, check=False)
        assert demo.returncode == 0, demo.stderr[-2000:]
        nodes = control_plane.client.get("/api/v2/nodes").json()["data"]
        demos = [n for n in nodes if n["node_id"].startswith(f"{host}-demo-")]
        assert len(demos) == 1 and demos[0]["batches_applied"] > 0, nodes
        assert f"node {demos[0]['node_id']}" in demo.stderr
        after = _node(control_plane, host)
        assert after is not None and after["connected"] is True
        assert after["instance_id"] == before["instance_id"] and after["takeovers"] == 0
        assert not after["refused"]
    finally:
        _stop(running)
