"""End to end: known frames → real dataplane process → real control plane → REST.

Each test starts `floe serve` (subprocess, SQLite), then `floe dataplane` (subprocess) sharing
its FLOE_DATA_DIR so it finds the locally provisioned key, sends a known set of frames, and
checks that `/api/v2/stats/summary` and `/api/v2/flows` report exactly what was sent.
"""

from __future__ import annotations

import datetime
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dataplane.bpf.loader import pin_dir_for
from dataplane.netns import Topology, VethPair, unique_prefix
from dataplane.sources.pcap import PcapWriter
from dataplane.trafficgen import AfPacketSender, FrameSpec, build_frame, malformed_frame
from tests.e2e.conftest import SERVE_ENV, ControlPlane, start_control_plane, wait_for_key
from tests.support.server import FloeServer

REPO = Path(__file__).resolve().parents[2]

# The known traffic: (frame, count). 30 + 20 + 10 + 5 well-formed, 5 malformed.
V4_TCP = FrameSpec(src="10.9.0.1", dst="10.9.0.2", proto="tcp", sport=1000, dport=80)
V6_UDP = FrameSpec(src="2001:db8::1", dst="2001:db8::2", proto="udp", sport=53, dport=5353)
VLAN_UDP = FrameSpec(src="10.9.1.1", dst="10.9.1.2", proto="udp", sport=7, dport=9, vlans=(7,))
ICMP = FrameSpec(src="10.9.2.1", dst="10.9.2.2", proto="icmp")
KNOWN: list[tuple[bytes, int]] = [
    (build_frame(V4_TCP), 30),
    (build_frame(V6_UDP), 20),
    (build_frame(VLAN_UDP), 10),
    (build_frame(ICMP), 5),
    (malformed_frame("ipv4_bad_ihl"), 3),
    (malformed_frame("l4_truncated"), 2),
]
TOTAL = sum(count for _, count in KNOWN)
MALFORMED = 5


def _frames() -> list[bytes]:
    return [frame for frame, count in KNOWN for _ in range(count)]


def _dataplane(server: FloeServer, *args: str) -> subprocess.Popen[bytes]:
    env = dict(server.env)
    env["FLOE_TICK_SECONDS"] = "0.1"
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "dataplane", *args],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _expected_flows_present(flows: list[dict[str, Any]]) -> None:
    def find(src: str, dst: str, sport: int, dport: int) -> dict[str, Any]:
        for flow in flows:
            if (flow["src"], flow["dst"], flow["src_port"], flow["dst_port"]) == (
                src, dst, sport, dport
            ):
                return flow
        raise AssertionError(f"no flow {src}:{sport} → {dst}:{dport} in {flows}")

    assert find("10.9.0.1", "10.9.0.2", 1000, 80)["packets"] == 30
    assert find("2001:db8::1", "2001:db8::2", 53, 5353)["packets"] == 20
    vlan = find("10.9.1.1", "10.9.1.2", 7, 9)
    assert vlan["packets"] == 10 and vlan["vlan"] == 7
    assert find("10.9.2.1", "10.9.2.2", 0, 0)["packets"] == 5


def _expected_traffic(entry: dict[str, Any]) -> None:
    """The interface's traffic aggregate (top hosts/ports, protocols, port bands) of KNOWN."""
    traffic = entry["traffic"]
    assert traffic is not None, entry
    size = {spec: len(build_frame(spec)) for spec in (V4_TCP, V6_UDP, VLAN_UDP, ICMP)}
    protocols = {p["name"]: (p["packets"], p["bytes"]) for p in traffic["protocols"]}
    assert protocols == {  # malformed frames have no protocol
        "tcp": (30, 30 * size[V4_TCP]),
        "udp": (30, 20 * size[V6_UDP] + 10 * size[VLAN_UDP]),
        "icmp": (5, 5 * size[ICMP]),
    }
    hosts = {h["host"]: h["packets"] for h in traffic["top_hosts_by_packets"]}
    assert hosts == {"10.9.0.1": 30, "10.9.0.2": 30, "2001:db8::1": 20, "2001:db8::2": 20,
                     "10.9.1.1": 10, "10.9.1.2": 10, "10.9.2.1": 5, "10.9.2.2": 5}
    assert [p["port"] for p in traffic["top_ports_by_packets"]] == [80, 53, 7]
    assert traffic["port_bands"] == {"well_known": 60, "registered": 0, "dynamic": 0}
    assert (traffic["packets"], traffic["malformed"]) == (TOTAL, MALFORMED)
    assert traffic["approximate"] is False


def test_pcap_replay_reports_exact_counts(control_plane: ControlPlane, tmp_path: Path) -> None:
    capture = tmp_path / "known.pcap"
    start = time.time_ns()
    with PcapWriter(capture) as writer:
        for i, frame in enumerate(_frames()):
            writer.write(frame, start + i * 1000)
    process = _dataplane(control_plane.server, "--mode", "pcap", "--pcap", str(capture))
    assert process.wait(timeout=60) == 0, process.stderr.read() if process.stderr else ""
    entry = control_plane.wait_packets("known.pcap", TOTAL)
    assert entry["packets"] == TOTAL
    assert entry["malformed"] == MALFORMED
    _expected_flows_present(control_plane.flows("known.pcap"))
    _expected_traffic(entry)


def test_pcap_replay_of_many_flows_arrives_whole(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    """60,000 flows: the final flush is ~5 MB of records, more than one gRPC message may carry
    (4 MiB), so it must go as several batches; every packet and every record arrives."""
    n = 60_000
    capture = tmp_path / "many.pcap"
    start = time.time_ns()
    with PcapWriter(capture) as writer:
        for i in range(n):
            spec = FrameSpec(src=f"10.50.{i >> 8 & 255}.{i & 255}", dst="10.60.0.1",
                             proto="udp", sport=1024 + (i >> 16), dport=53)
            writer.write(build_frame(spec), start + i * 1000)
    process = _dataplane(control_plane.server, "--mode", "pcap", "--pcap", str(capture))
    assert process.wait(timeout=120) == 0, process.stderr.read() if process.stderr else ""
    entry = control_plane.wait_packets("many.pcap", n)
    assert entry["packets"] == n and entry["malformed"] == 0
    summary = control_plane.client.get("/api/v2/stats/summary").json()["data"]
    flows = summary["flows"]
    assert flows["tracked"] == 10_000  # the control plane's recent-flows window is full...
    assert flows["tracked"] + flows["evicted"] >= n  # ...and every record reached it
    newest = control_plane.flows("many.pcap")
    assert len(newest) == 1000
    assert all(f["packets"] == 1 and f["end_reason"] == "shutdown" for f in newest)


def _named_certificate(folder: Path, name: str) -> dict[str, str]:
    """TLS_CERT_FILE/TLS_KEY_FILE naming only `name` (no loopback address), like a real one."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return {"TLS_CERT_FILE": str(cert_file), "TLS_KEY_FILE": str(key_file)}


@pytest.mark.parametrize("certificate", ["development", "named"])
def test_uplink_over_tls(tmp_path: Path, certificate: str) -> None:
    """GRPC_TLS: the gRPC port speaks only TLS (the HTTPS certificate); a dataplane sharing
    the environment trusts that certificate by itself — the development one, or a real one
    that does not name the loopback address the dataplane dials."""
    env = ({"GRPC_TLS": "true"} if certificate == "development"
           else _named_certificate(tmp_path, "cp.floe.test"))
    with start_control_plane(env) as plane:
        server = plane.server
        target = f"127.0.0.1:{server.grpc_port}"
        cert_file = Path(env.get("TLS_CERT_FILE") or server.data_dir / "tls" / "dev-cert.pem")
        options = [] if certificate == "development" else [
            ("grpc.ssl_target_name_override", "cp.floe.test")]
        request = health_pb2.HealthCheckRequest()
        credentials = grpc.ssl_channel_credentials(cert_file.read_bytes())
        with grpc.secure_channel(target, credentials, options=options) as channel:
            answer = health_pb2_grpc.HealthStub(channel).Check(request, timeout=10)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
        with grpc.insecure_channel(target) as channel, pytest.raises(grpc.RpcError):
            health_pb2_grpc.HealthStub(channel).Check(request, timeout=3)

        capture = tmp_path / "tls.pcap"
        with PcapWriter(capture) as writer:
            for i, frame in enumerate(_frames()):
                writer.write(frame, time.time_ns() + i * 1000)
        process = _dataplane(server, "--mode", "pcap", "--pcap", str(capture))
        assert process.wait(timeout=60) == 0, process.stderr.read() if process.stderr else ""
        assert plane.wait_packets("tls.pcap", TOTAL)["packets"] == TOTAL


@pytest.fixture
def veth() -> Iterator[VethPair]:
    with Topology(unique_prefix("e2e")) as topology:
        namespace = topology.add_namespace()
        yield topology.add_veth(namespace=namespace)


def _send(pair: VethPair, frames: list[bytes]) -> None:
    sender = AfPacketSender(pair.peer, pair.namespace)
    assert sender.send(frames, timeout=20) == len(frames)


def _wait_attached(plane: ControlPlane, name: str) -> None:
    deadline = time.monotonic() + 30
    while plane.interface(name) is None:
        assert time.monotonic() < deadline, "dataplane never reported"
        time.sleep(0.1)


@pytest.mark.root
@pytest.mark.parametrize("mode", ["tap", "inline", "afpacket"])
def test_live_modes_report_exact_counts(
    control_plane: ControlPlane, veth: VethPair, mode: str
) -> None:
    process = _dataplane(control_plane.server, "--mode", mode, "--interface", veth.host)
    try:
        _wait_attached(control_plane, veth.host)
        _send(veth, _frames())
        entry = control_plane.wait_packets(veth.host, TOTAL)
        time.sleep(0.5)  # nothing more arrives: exact, not at-least
        entry = control_plane.interface(veth.host) or entry
        assert entry["packets"] == TOTAL
        assert entry["malformed"] == MALFORMED
        expected_attach = ("none",) if mode == "afpacket" else ("native", "generic")
        assert entry["attach_mode"] in expected_attach
        if mode == "inline":  # no frames in user space: no traffic aggregate
            assert entry["traffic"] is None
        else:  # kernel counters can lead the tap pipeline by a tick
            deadline = time.monotonic() + 10
            while True:
                try:
                    _expected_traffic(control_plane.interface(veth.host) or entry)
                    break
                except AssertionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                _expected_flows_present(control_plane.flows(veth.host))
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        _stop(process)
        subprocess.run([sys.executable, "-m", "app.cli", "dataplane", "--detach",
                        "--interface", veth.host], env=dict(control_plane.server.env),
                       cwd=REPO, capture_output=True, check=False)


def _put_rules(plane: ControlPlane, body: dict[str, Any]) -> int:
    response = plane.client.put("/api/v2/rules", json=body)
    assert response.status_code == 200, response.text
    generation: int = response.json()["data"]["generation"]
    return generation


def _wait_generation(plane: ControlPlane, generation: int) -> None:
    deadline = time.monotonic() + 10
    while True:
        nodes = plane.client.get("/api/v2/nodes").json()["data"]
        applied = [n.get("rules_generation_applied") for n in nodes]
        if generation in applied:
            return
        assert time.monotonic() < deadline, f"rules generation {generation} not applied: {nodes}"
        time.sleep(0.1)


@pytest.mark.root
def test_rules_change_drops_and_survive_a_dataplane_kill(
    control_plane: ControlPlane, veth: VethPair
) -> None:
    frames = [build_frame(V4_TCP)] * 40 + [build_frame(V6_UDP)] * 20
    process = _dataplane(control_plane.server, "--mode", "inline", "--interface", veth.host)
    try:
        _wait_attached(control_plane, veth.host)
        generation = _put_rules(control_plane, {"rules": [
            {"id": 7, "action": "deny", "src": "10.9.0.0/24"}]})
        _wait_generation(control_plane, generation)
        _send(veth, frames)
        entry = control_plane.wait_packets(veth.host, 60)
        deadline = time.monotonic() + 10
        while entry["dropped"] < 40 and time.monotonic() < deadline:
            time.sleep(0.1)
            entry = control_plane.interface(veth.host) or entry
        assert entry["dropped"] == 40
        assert entry["rule_hits"]["7"]["packets"] == 40

        # SIGKILL the dataplane mid-traffic: the pinned program keeps filtering and counting.
        process.kill()
        process.wait()
        _send(veth, frames)
        process = _dataplane(control_plane.server, "--mode", "inline", "--interface", veth.host)
        entry = control_plane.wait_packets(veth.host, 120)
        time.sleep(0.5)
        entry = control_plane.interface(veth.host) or entry
        assert entry["packets"] == 120  # no gap, no double count across the restart
        assert entry["dropped"] == 80

        # Removing the rule restores pass.
        generation = _put_rules(control_plane, {"rules": []})
        _wait_generation(control_plane, generation)
        _send(veth, frames)
        entry = control_plane.wait_packets(veth.host, 180)
        time.sleep(0.5)
        entry = control_plane.interface(veth.host) or entry
        assert entry["packets"] == 180
        assert entry["dropped"] == 80
    finally:
        _stop(process)
        subprocess.run([sys.executable, "-m", "app.cli", "dataplane", "--detach",
                        "--interface", veth.host], env=dict(control_plane.server.env),
                       cwd=REPO, capture_output=True, check=False)


@pytest.mark.root
def test_control_plane_restart_keeps_totals_exact(veth: VethPair) -> None:
    server = FloeServer.start(SERVE_ENV, timeout=60)
    process = None
    try:
        wait_for_key(server)
        process = _dataplane(server, "--mode", "tap", "--interface", veth.host)
        plane = ControlPlane(server)
        _wait_attached(plane, veth.host)
        _send(veth, _frames())
        plane.wait_packets(veth.host, TOTAL)
        plane.close()

        restarted = restart(server)
        _send(veth, _frames())  # sent while the control plane may still be starting
        plane = ControlPlane(restarted)
        entry = plane.wait_packets(veth.host, 2 * TOTAL, timeout=40)
        time.sleep(0.5)
        entry = plane.interface(veth.host) or entry
        assert entry["packets"] == 2 * TOTAL
        plane.close()
        server = restarted
    finally:
        if process is not None:
            _stop(process)
        server.stop()
        subprocess.run([sys.executable, "-m", "app.cli", "dataplane", "--detach",
                        "--interface", veth.host], env=dict(os.environ), cwd=REPO,
                       capture_output=True, check=False)


def restart(server: FloeServer) -> FloeServer:
    """Stop `server` and start a new one on the same ports and data directory."""
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(timeout=15)
    env = dict(server.env)
    log = server.log_path.open("ab")
    process = subprocess.Popen([sys.executable, "-m", "app.cli", "serve"], cwd=str(
        server.data_dir.parent), env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    server.process = process
    server.wait_ready(60)
    return server



@pytest.mark.root
def test_demo_shows_live_data_and_leaves_nothing_behind(control_plane: ControlPlane) -> None:
    env = dict(control_plane.server.env)
    before_ns = set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                                   check=True).stdout.split())
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "demo", "--duration", "3", "--pps", "1000"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=90, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    data = control_plane.client.get("/api/v2/stats/summary").json()["data"]
    demo = [i for i in data["interfaces"] if i["interface"].startswith("demo")]
    assert demo and demo[0]["packets"] > 500 and demo[0]["mode"] == "tap"
    assert control_plane.flows(demo[0]["interface"]), "demo traffic produced no flows"
    after_ns = set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                                  check=True).stdout.split())
    assert not {n for n in after_ns - before_ns if n.startswith("demo")}
    assert not pin_dir_for(demo[0]["interface"]).exists()
    assert not Path(f"/sys/class/net/{demo[0]['interface']}").exists()


@pytest.mark.root
def test_tap_overload_engages_xdp_sampling_and_reports_ring_loss(
    control_plane: ControlPlane, veth: VethPair
) -> None:
    """Freeze the dataplane so its AF_XDP ring overflows: the loss is reported by source and
    the next tick asks XDP to redirect 1 in N (kernel counters stay exact meanwhile)."""
    from dataplane.bpf.loader import XdpProgram

    process = _dataplane(control_plane.server, "--mode", "tap", "--interface", veth.host)
    frames = [build_frame(V4_TCP)] * 30_000
    try:
        _wait_attached(control_plane, veth.host)
        process.send_signal(signal.SIGSTOP)
        try:
            _send(veth, frames)  # far more than the 4096-slot ring can hold
        finally:
            process.send_signal(signal.SIGCONT)
        entry = control_plane.wait_packets(veth.host, len(frames))
        assert entry["packets"] == len(frames)  # the kernel counted every frame
        deadline = time.monotonic() + 10
        sample_n = 0
        while time.monotonic() < deadline:
            program = XdpProgram.open(veth.host)
            try:
                sample_n = int(program.config().sample_n)
            finally:
                program.close()
            entry = control_plane.interface(veth.host) or entry
            if sample_n >= 2 and entry["loss"]:
                break
            time.sleep(0.05)
        assert sample_n >= 2, "ring loss did not engage XDP sampling"
        ring_loss = {k: v for k, v in entry["loss"].items() if "afxdp" in k or "fill" in k}
        assert sum(ring_loss.values()) > 0, entry["loss"]
    finally:
        _stop(process)
        subprocess.run([sys.executable, "-m", "app.cli", "dataplane", "--detach",
                        "--interface", veth.host], env=dict(control_plane.server.env),
                       cwd=REPO, capture_output=True, check=False)
