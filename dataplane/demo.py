"""`floe demo`: live data on any Linux box with root, and nothing left behind.

Uses a running `floe serve` (same environment: GRPC_PORT, FLOE_DATA_DIR) or starts one as a
child process; creates a network namespace and a veth pair; runs the dataplane in tap mode
on the host end under a node id of its own (`<host>-demo-<hex>`: a demo never takes the node
of a dataplane already running here, nor another demo's); sends a mixed, bounded-rate
traffic pattern (TCP/UDP/ICMP, IPv4 and IPv6, a few heavy hitters, some VLAN-tagged) from
the namespace end until interrupted or
`--duration` runs out; then detaches the program, removes its pins and the namespace, and
stops the control plane it started.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from app.config import Settings
from app.grpc.lifetime import pin_grpc_aio
from app.nodeid import demo_node_id
from dataplane.config import KEY_FILE, load_dataplane_config

__all__ = ["run_demo"]

log = logging.getLogger(__name__)


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _start_control_plane(settings: Settings) -> subprocess.Popen[bytes]:
    """`floe serve` as a child with our environment; waits until gRPC listens and the
    locally provisioned dataplane key exists."""
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve"], env=dict(os.environ)
    )
    deadline = time.monotonic() + 60
    key = settings.data_dir / KEY_FILE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"floe serve exited with {process.returncode}")
        if _port_open(settings.grpc_port) and key.exists():
            return process
        time.sleep(0.2)
    process.terminate()
    raise RuntimeError("floe serve did not become ready within 60 s")


def _traffic(ifname: str, namespace: str, pps: int, stop: threading.Event) -> None:
    """Loop over the mixed pattern at `pps` until `stop`; each pass is bounded in time."""
    from dataplane.trafficgen import AfPacketSender, mixed_frames

    sender = AfPacketSender(ifname, namespace)
    started, sent, rounds = time.monotonic(), 0, 0
    while not stop.is_set():
        frames = mixed_frames(seed=1 + rounds % 8)
        for start in range(0, len(frames), 64):  # small bursts, paced by the clock
            if stop.is_set():
                return
            sent += sender.send(frames[start : start + 64], timeout=1.0)
            ahead = started + sent / pps - time.monotonic()
            if ahead > 0:
                stop.wait(ahead)
        rounds += 1


async def _run(args: argparse.Namespace, settings: Settings, stop: asyncio.Event) -> int:
    from dataplane.bpf.loader import XdpProgram
    from dataplane.netns import Topology, unique_prefix
    from dataplane.runner import Runner

    with Topology(unique_prefix("demo")) as topology:
        namespace = topology.add_namespace()
        pair = topology.add_veth(namespace=namespace)
        config = load_dataplane_config(settings, node_id=demo_node_id(settings.extra))
        runner = Runner(config, "tap", pair.host)
        halt = threading.Event()
        sender = threading.Thread(
            target=_traffic, args=(pair.peer, namespace, max(1, args.pps), halt), daemon=True
        )
        runner_task = asyncio.create_task(runner.run(stop))
        try:
            await asyncio.sleep(1.0)  # the program is attached before traffic starts
            sender.start()
            print(
                f"floe demo: traffic {namespace}/{pair.peer} → {pair.host} (tap, node "
                f"{config.node_id}) at {args.pps} pps; dashboard/API on "
                f"http://127.0.0.1:{settings.http_port}  (Ctrl-C stops)",
                file=sys.stderr,
            )
            if args.duration > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), args.duration)
                stop.set()
            return await runner_task
        finally:
            stop.set()
            halt.set()
            if sender.is_alive():
                sender.join(timeout=5)
            if not runner_task.done():
                with contextlib.suppress(Exception):
                    await runner_task
            with contextlib.suppress(Exception):
                XdpProgram.open(pair.host, for_detach=True).detach()


def run_demo(args: argparse.Namespace, settings: Settings) -> int:
    if os.geteuid() != 0:
        print("floe demo: needs root (network namespaces, XDP); run `floe serve` instead",
              file=sys.stderr)
        return 2
    child = None
    if not _port_open(settings.grpc_port):
        child = _start_control_plane(settings)
    pin_grpc_aio()

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await _run(args, settings, stop)

    try:
        return asyncio.run(main())
    finally:
        if child is not None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
