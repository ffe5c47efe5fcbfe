"""Failover end to end: two real `floe serve` instances sharing one PostgreSQL database, one
real dataplane (inline XDP on a veth whose peer is in a namespace) given both addresses.
SIGKILL the instance it streams to while frames flow: it is on the other within 5 s, and the
other's totals for the node are exactly the frames sent (counters are cumulative snapshots);
in plaintext and over TLS (one certificate for both, checked at each address).

The second test does the same through one DNS name with two records (127.0.0.1 and ::1, the
instances on the same port of each): gRPC's resolver and pick_first move between records.
The name exists only in a private mount namespace of the dataplane process (a hosts file
bound over /etc/hosts there), so the machine's own /etc/hosts is never touched.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dataplane.netns import Topology, VethPair, unique_prefix
from dataplane.trafficgen import AfPacketSender
from tests.e2e.conftest import SERVE_ENV, ControlPlane, start_control_plane, wait_for_key
from tests.e2e.test_dataplane_e2e import (
    MALFORMED,
    REPO,
    TOTAL,
    _frames,
    _named_certificate,
    _stop,
)
from tests.e2e.test_dataplane_health import _wait_health
from tests.support.databases import fresh_database
from tests.support.ports import free_port
from tests.support.server import FloeServer, tcp_open

pytestmark = pytest.mark.root

ROUNDS = 40  # ROUNDS x TOTAL frames (2,800), paced over ~4 s
PPS = 700
FAILOVER_SECONDS = 5.0


@pytest.fixture
def veth() -> Iterator[VethPair]:
    with Topology(unique_prefix("fo")) as topology:
        yield topology.add_veth(namespace=topology.add_namespace())


@pytest.fixture
def shared_db(tmp_path: Path) -> Iterator[dict[str, str]]:
    """One fresh PostgreSQL database for both instances (dropped afterwards)."""
    yield from fresh_database("postgresql", tmp_path)


def _dataplane(env: dict[str, str], interface: str,
               prefix: tuple[str, ...] = ()) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*prefix, sys.executable, "-m", "app.cli", "dataplane", "--mode", "inline",
         "--interface", interface], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)


def _detach(env: dict[str, str], interface: str) -> None:
    subprocess.run([sys.executable, "-m", "app.cli", "dataplane", "--detach", "--interface",
                    interface], cwd=REPO, env=env, capture_output=True, check=False, timeout=30)


def _connected(plane: ControlPlane) -> bool:
    try:
        nodes = plane.client.get("/api/v2/nodes", timeout=2).json()["data"]
    except Exception:  # a killed instance answers nothing
        return False
    return any(node["connected"] for node in nodes)


def _traffic(pair: VethPair) -> tuple[threading.Thread, list[int]]:
    """ROUNDS x the known frames, paced: returns the sender thread and where it puts the
    count it sent."""
    sent: list[int] = []
    frames = _frames() * ROUNDS

    def send() -> None:
        sender = AfPacketSender(pair.peer, pair.namespace)
        sent.append(sender.send(frames, timeout=30, pps=PPS))

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread, sent


def _fail_over(
    veth: VethPair, process: subprocess.Popen[str], health_port: int,
    planes: dict[str, ControlPlane], victim: str, survivor: str,
    on_survivor: Callable[[int, dict[str, Any]], bool],
) -> float:
    """Send traffic, SIGKILL `victim` under it, return the seconds until the dataplane's
    healthz says `on_survivor`; then check the survivor's totals are exact."""
    thread, sent = _traffic(veth)
    time.sleep(1.5)  # mid-traffic
    planes[victim].server.signal(signal.SIGKILL)
    killed = time.monotonic()
    _wait_health(health_port, process, on_survivor, timeout=FAILOVER_SECONDS + 5)
    took = time.monotonic() - killed
    thread.join(40)
    assert not thread.is_alive() and sent == [ROUNDS * TOTAL], sent
    plane = planes[survivor]
    entry = plane.wait_packets(veth.host, ROUNDS * TOTAL, timeout=20)
    time.sleep(1.0)  # nothing more arrives: exact, not at-least
    entry = plane.interface(veth.host) or entry
    assert (entry["packets"], entry["malformed"]) == (ROUNDS * TOTAL, ROUNDS * MALFORMED)
    summary = plane.client.get("/api/v2/stats/summary").json()["data"]
    assert summary["totals"]["packets"] == ROUNDS * TOTAL, summary["totals"]
    return took


@pytest.mark.parametrize("transport", ["plaintext", "tls"])
def test_sigkill_of_the_instance_in_use_fails_over_with_exact_totals(
    veth: VethPair, shared_db: dict[str, str], capsys: pytest.CaptureFixture[str],
    tmp_path: Path, transport: str,
) -> None:
    """With TLS both instances have one certificate naming only cp.floe.test (as a real
    pair behind one name would); the dataplane trusts it by FLOE_CONTROL_PLANE_CA and
    expects that name at each address (FLOE_CONTROL_PLANE_NAME)."""
    tls = _named_certificate(tmp_path, "cp.floe.test") if transport == "tls" else {}
    with contextlib.ExitStack() as stack:
        a = stack.enter_context(start_control_plane({**shared_db, **tls}))
        b = stack.enter_context(start_control_plane({**shared_db, **tls}))
        target_a = f"127.0.0.1:{a.server.grpc_port}"
        target_b = f"127.0.0.1:{b.server.grpc_port}"
        health_port = free_port()
        env = dict(a.server.env, FLOE_TICK_SECONDS="0.1",
                   FLOE_CONTROL_PLANE=f"{target_a},{target_b}",
                   FLOE_API_KEY=(a.server.data_dir / "dataplane.key").read_text().strip(),
                   FLOE_DATAPLANE_HEALTH_PORT=str(health_port))
        if tls:
            env.update(FLOE_CONTROL_PLANE_TLS="true", FLOE_CONTROL_PLANE_CA=tls["TLS_CERT_FILE"],
                       FLOE_CONTROL_PLANE_NAME="cp.floe.test")
        process = _dataplane(env, veth.host)
        try:
            _, data = _wait_health(health_port, process,
                                   lambda c, d: c == 200 and d["uplink"]["connected"])
            assert data["uplink"]["target"] == target_a  # the first address first
            assert data["uplink"]["targets"] == [target_a, target_b]
            assert data["uplink"]["failovers"] == 0
            assert _connected(a) and not _connected(b)

            took = _fail_over(
                veth, process, health_port, {"a": a, "b": b}, "a", "b",
                lambda _, d: d["uplink"]["connected"] and d["uplink"]["target"] == target_b)
            assert took < FAILOVER_SECONDS, took
            _, data = _wait_health(health_port, process, lambda c, d: True)
            assert data["uplink"]["failovers"] == 1 and _connected(b)
            with capsys.disabled():
                print(f"\nfailover ({transport}) to the second address took {took:.3f} s")
        finally:
            _stop(process)
            _detach(env, veth.host)
        stderr = process.stderr.read() if process.stderr else ""
        assert f"failed over from {target_a} to {target_b}" in stderr, stderr[-3000:]


def _start_on(host: str, env: dict[str, str], grpc_port: int) -> FloeServer:
    """`floe serve` bound to `host` only (127.0.0.1 or ::1), gRPC on `grpc_port`."""
    server = FloeServer.start({**SERVE_ENV, **env, "BIND_HOST": host,
                               "GRPC_PORT": str(grpc_port)}, wait=False)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    deadline = time.monotonic() + 60
    while True:
        assert server.process.poll() is None, server.output()[-3000:]
        with socket.socket(family) as probe:
            probe.settimeout(0.3)
            if probe.connect_ex((host, server.http_port)) == 0 and (
                    host != "127.0.0.1" or tcp_open(grpc_port)):
                break
        assert time.monotonic() < deadline, server.output()[-3000:]
        time.sleep(0.1)
    wait_for_key(server)
    return server


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1)")
def test_one_name_with_two_records_fails_over_between_them(
    veth: VethPair, shared_db: dict[str, str], tmp_path: Path
) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n127.0.0.1 floe-cp.test\n::1 floe-cp.test\n")
    port = free_port()
    with contextlib.ExitStack() as stack:
        servers = {}
        for name, host in (("v4", "127.0.0.1"), ("v6", "::1")):
            server = _start_on(host, shared_db, port)
            stack.callback(server.cleanup)
            stack.callback(server.stop)
            servers[name] = server
        planes = {name: ControlPlane(server, "::1" if name == "v6" else "127.0.0.1")
                  for name, server in servers.items()}
        for plane in planes.values():
            stack.callback(plane.close)
        health_port = free_port()
        env = dict(servers["v4"].env, FLOE_TICK_SECONDS="0.1",
                   FLOE_CONTROL_PLANE=f"floe-cp.test:{port}",
                   FLOE_API_KEY=(servers["v4"].data_dir / "dataplane.key").read_text().strip(),
                   FLOE_DATAPLANE_HEALTH_PORT=str(health_port))
        private_hosts = ("unshare", "--mount", "--propagation", "private", "sh", "-c",
                         f'mount --bind "{hosts}" /etc/hosts && exec "$@"', "sh")
        process = _dataplane(env, veth.host, private_hosts)
        try:
            _wait_health(health_port, process,
                         lambda c, d: c == 200 and d["uplink"]["connected"])
            deadline = time.monotonic() + 10
            while not (in_use := [n for n, p in planes.items() if _connected(p)]):
                assert time.monotonic() < deadline, "no instance has the dataplane"
                time.sleep(0.1)
            (victim,) = in_use
            (survivor,) = set(planes) - {victim}
            took = _fail_over(veth, process, health_port, planes, victim, survivor,
                              lambda _, d: _connected(planes[survivor]))
            assert took < FAILOVER_SECONDS, took
            print(f"\nDNS failover {victim} → {survivor} took {took:.3f} s")
        finally:
            _stop(process)
            _detach(env, veth.host)
