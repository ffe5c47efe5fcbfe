"""`/healthz` of a real `floe dataplane` process: off by default, then attached, uplink
connected, last ack age and loss as the process has them, and what changes them — the control
plane going away (degraded, still 200), the program detached from outside (503), a full
uplink buffer (counted loss), a port already taken (start-up stops with one line)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dataplane.netns import Topology, VethPair, unique_prefix
from dataplane.sources.pcap import PcapWriter
from dataplane.trafficgen import FrameSpec, build_frame
from tests.e2e.conftest import ControlPlane
from tests.e2e.test_dataplane_e2e import _stop, _wait_attached
from tests.support.ports import free_port

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def veth_pair() -> Iterator[VethPair]:
    with Topology(unique_prefix("hlth")) as topology:
        yield topology.add_veth(namespace=topology.add_namespace())


def _slow_capture(path: Path, seconds: int = 120) -> Path:
    """Two frames `seconds` apart: replayed at recorded speed, the run lasts that long."""
    frame = build_frame(FrameSpec(src="10.7.0.1", dst="10.7.0.2", proto="udp", sport=1, dport=2))
    start = time.time_ns()
    with PcapWriter(path) as writer:
        writer.write(frame, start)
        writer.write(frame, start + seconds * 1_000_000_000)
    return path


def _dataplane(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "app.cli", "dataplane", *args], cwd=REPO,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def _health(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
            return answer.status, json.loads(answer.read())["data"]
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())["data"]


def _wait_health(port: int, process: subprocess.Popen[str],
                 until: Callable[[int, dict[str, Any]], bool],
                 timeout: float = 30) -> tuple[int, dict[str, Any]]:
    """Poll /healthz until `until(code, data)`; the last answer in the failure message."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        with contextlib.suppress(ConnectionError, urllib.error.URLError):
            last = _health(port)
            if until(*last):
                return last  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"/healthz never got there; last answer {last}")


def _listening_ports(pid: int) -> set[int]:
    """TCP ports process `pid` listens on (its socket inodes in /proc/net/tcp{,6})."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_off_by_default(control_plane: ControlPlane, tmp_path: Path) -> None:
    capture = _slow_capture(tmp_path / "quiet.pcap")
    process = _dataplane(dict(control_plane.server.env), "--mode", "pcap", "--pcap",
                         str(capture), "--speed", "recorded")
    try:
        _wait_attached(control_plane, "quiet.pcap")  # running and reporting
        assert _listening_ports(process.pid) == set()
    finally:
        _stop(process)


def test_a_taken_port_stops_start_up_with_one_line(tmp_path: Path) -> None:
    capture = _slow_capture(tmp_path / "taken.pcap")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOE_")}
        env.update(FLOE_DATA_DIR=str(tmp_path), FLOE_DATAPLANE_HEALTH_PORT=str(port),
                   FLOE_CONTROL_PLANE=f"127.0.0.1:{free_port()}")
        process = _dataplane(env, "--mode", "pcap", "--pcap", str(capture), "--speed",
                             "recorded")
        try:
            assert process.wait(timeout=30) == 1
        finally:
            _stop(process)
    stderr = process.stderr.read() if process.stderr else ""
    line = f"floe dataplane: cannot start: FLOE_DATAPLANE_HEALTH_PORT={port} is already in use"
    assert line in stderr.splitlines(), stderr


def test_a_full_uplink_buffer_is_reported_as_loss(tmp_path: Path) -> None:
    """No control plane: the uplink stays disconnected (degraded, yet 200: the pipeline runs)
    and, at 100 ticks a second, its 600-batch buffer overflows into counted loss."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOE_")}
    env.update(FLOE_DATA_DIR=str(tmp_path), FLOE_DATAPLANE_HEALTH_PORT=str(port),
               FLOE_CONTROL_PLANE=f"127.0.0.1:{free_port()}", FLOE_TICK_SECONDS="0.01",
               FLOE_API_KEY="floe_not_checked_nobody_listens")
    process = _dataplane(env, "--mode", "pcap", "--pcap",
                         str(_slow_capture(tmp_path / "cut.pcap")), "--speed", "recorded")
    try:
        code, data = _wait_health(
            port, process, lambda _, d: d["loss"]["by_source"]["uplink_buffer:batches"] > 0)
        assert code == 200 and data["status"] == "degraded", data
        assert data["uplink"]["connected"] is False and data["uplink"]["failures"] > 0
        assert data["uplink"]["last_ack_age_seconds"] is None  # never acknowledged
        assert data["uplink"]["buffered_batches"] == 600
        assert data["loss"]["total"] >= data["loss"]["by_source"]["uplink_buffer:batches"]
        assert (data["mode"], data["xdp"], data["attached"]) == ("pcap", False, None)
    finally:
        _stop(process)


@pytest.mark.root
def test_a_running_xdp_dataplane_reports_attach_uplink_and_ack_age(
    control_plane: ControlPlane, veth_pair: VethPair
) -> None:
    port = free_port()
    env = dict(control_plane.server.env, FLOE_DATAPLANE_HEALTH_PORT=str(port),
               FLOE_TICK_SECONDS="0.1")
    process = _dataplane(env, "--mode", "inline", "--interface", veth_pair.host)
    try:
        # "ok" comes with the Welcome; wait for the first batch's ack too
        code, data = _wait_health(port, process, lambda c, d: c == 200 and d["status"] == "ok"
                                  and d["uplink"]["acked_seq"] > 0)
        assert (data["mode"], data["interface"], data["xdp"]) == ("inline", veth_pair.host, True)
        nodes = control_plane.client.get("/api/v2/nodes").json()["data"]
        assert data["node_id"] == nodes[0]["node_id"]
        assert data["attached"] in ("native", "generic")
        assert data["uplink"]["connected"] is True and data["uplink"]["acked_seq"] > 0
        assert 0 <= data["uplink"]["last_ack_age_seconds"] < 2
        assert data["loss"]["total"] == 0 and "uplink_buffer:batches" in data["loss"]["by_source"]
        assert 0 <= data["last_tick_age_seconds"] < 2

        # The control plane goes away: degraded, but the dataplane still does its job.
        control_plane.server.stop()
        code, data = _wait_health(port, process,
                                  lambda _, d: d["uplink"]["connected"] is False)
        assert code == 200 and data["status"] == "degraded", data
        assert data["attached"] in ("native", "generic")
        stale = data["uplink"]["last_ack_age_seconds"]
        code, data = _wait_health(
            port, process, lambda _, d: d["uplink"]["last_ack_age_seconds"] > stale + 0.5)

        # Someone detaches the program from outside: failing, 503.
        detach = subprocess.run([sys.executable, "-m", "app.cli", "dataplane", "--detach",
                                 "--interface", veth_pair.host], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=30, check=False)
        assert detach.returncode == 0, detach.stderr
        code, data = _wait_health(port, process, lambda c, _: c == 503)
        assert data["status"] == "failing" and data["attached"] is None
        assert f"floe_xdp is no longer attached to {veth_pair.host}" in data["problems"]
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        _stop(process)
        subprocess.run([sys.executable, "-m", "app.cli", "dataplane", "--detach",
                        "--interface", veth_pair.host], cwd=REPO, env=env,
                       capture_output=True, check=False, timeout=30)
