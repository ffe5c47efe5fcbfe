"""Real parts for `floe observe`: a real `floe serve`, flows through a real uplink stream with a
dataplane key bound to node n1, and the real command run as a subprocess.

    cluster = await Cluster.start()              # serve + admin login + keys
    async with cluster.uplink() as up:           # a dataplane stream for node n1
        await up.send([flow("10.1.0.1", 40001)]) # returns once the control plane acked it
    result = await cluster.observe("--all", "-o", "json")
    follower = await cluster.spawn("-f", ...)    # a running `floe observe` to read and signal

Every wait is bounded; a running observer is killed at teardown whatever happened.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx
import pytest_asyncio

from floe.dataplane.v1 import uplink_pb2 as up
from floe.dataplane.v1 import uplink_pb2_grpc
from tests.support.server import PYTHON, REPO_ROOT, FloeServer

ADMIN = ("admin@localhost.local", "admin123")
NODE = "n1"
SERVER_ENV = {"FLOE_ENV": "development", "FLOE_ARGON2_PROFILE": "fast",
              "HTTP3_ENABLED": "false", "METRICS_ENABLED": "false"}
READER_SCOPES = ["flows:read", "stats:read", "dataplane:read"]
_BEGIN_NS = time.time_ns()  # flows' first_seen: one flow is the same record until it ends


def flow(src: str, sport: int, dst: str = "10.200.0.1", dport: int = 80, *, proto: int = 6,
         end: int = 0, packets: int = 1, flags: int = 0x12, iface: str = "eth0") -> Any:
    """One uplink FlowRecord, last seen now (addresses as the dataplane sends them); the same
    (src, sport, dst, dport, proto) is the same flow, so a second record is its UPDATE/END."""
    def packed(addr: str) -> bytes:
        ip = ipaddress.ip_address(addr)
        return (ipaddress.IPv6Address(f"::ffff:{ip}") if ip.version == 4 else ip).packed

    now = time.time_ns()
    return up.FlowRecord(addr_a=packed(src), addr_b=packed(dst), port_a=sport, port_b=dport,
                         proto=proto, interface=iface, ifindex=2, packets_ab=packets,
                         bytes_ab=packets * 60, first_seen_unix_ns=_BEGIN_NS,
                         last_seen_unix_ns=now, tcp_flags=flags, state=2, end_reason=end)


class Uplink:
    """A dataplane's uplink stream: Hello, then numbered batches each awaited until acked."""

    def __init__(self, target: str, key: str, node: str = NODE,
                 ca_pem: bytes | None = None) -> None:
        self.channel = (grpc.aio.insecure_channel(target) if ca_pem is None else
                        grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(ca_pem)))
        self.call = uplink_pb2_grpc.UplinkStub(self.channel).Connect(
            metadata=(("authorization", f"Bearer {key}"),))
        self.node = node
        self.seq = 0

    async def hello(self) -> None:
        await self.call.write(up.UplinkMessage(hello=up.Hello(
            node_id=self.node, instance_id=uuid.uuid4().hex, version="0.1.0-test",
            interfaces=[up.InterfaceInfo(name="eth0", ifindex=2, mode=up.MODE_TAP,
                                         attach_mode=up.ATTACH_MODE_NATIVE)])))
        reply = await asyncio.wait_for(self.call.read(), 10)
        assert reply.HasField("welcome"), reply

    async def send(self, flows: Sequence[Any]) -> None:
        self.seq += 1
        await self.call.write(up.UplinkMessage(batch=up.Batch(seq=self.seq, flows=list(flows))))
        while True:  # acks are cumulative; a rules/config message may come first
            reply = await asyncio.wait_for(self.call.read(), 10)
            if reply.HasField("ack") and reply.ack.seq >= self.seq:
                return

    async def close(self) -> None:
        self.call.cancel()
        await self.channel.close()


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.splitlines()]


@dataclass
class Observer:
    """A running `floe observe`: lines are read as they come, so the test can wait for
    them, then signal it."""

    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)
    _readers: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        async def read(stream: asyncio.StreamReader, into: list[str]) -> None:
            while line := await stream.readline():
                into.append(line.decode())

        assert self.process.stdout is not None and self.process.stderr is not None
        self._readers = [asyncio.create_task(read(self.process.stdout, self.lines)),
                         asyncio.create_task(read(self.process.stderr, self.err))]

    async def wait_for(self, predicate: Any, timeout: float = 20.0, what: str = "") -> None:
        """Until `predicate(self)` holds (polled; bounded by `timeout`)."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if self.process.returncode is not None or time.monotonic() > deadline:
                raise AssertionError(f"not reached: {what} (exit {self.process.returncode})\n"
                                     f"stdout: {''.join(self.lines)}\nstderr: {''.join(self.err)}")
            await asyncio.sleep(0.05)

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]

    async def stop(self, sig: int = signal.SIGINT, timeout: float = 10.0) -> int:
        if self.process.returncode is None:
            self.process.send_signal(sig)
        code = await asyncio.wait_for(self.process.wait(), timeout)
        await asyncio.wait_for(asyncio.gather(*self._readers), timeout)
        return code

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()


@dataclass
class Cluster:
    server: FloeServer
    admin_token: str
    writer_key: str  # dataplane:write bound to node n1
    reader_key: str  # flows:read, stats:read, dataplane:read
    observers: list[Observer] = field(default_factory=list)

    @classmethod
    async def start(cls, env: dict[str, str] | None = None) -> Cluster:
        server = await asyncio.to_thread(FloeServer.start, env={**SERVER_ENV, **(env or {})})
        try:
            async with httpx.AsyncClient(base_url=server.url("/api/v2"), timeout=10) as http:
                login = await http.post("/auth/login",
                                        json={"email": ADMIN[0], "password": ADMIN[1]})
                assert login.status_code == 200, login.text
                token = login.json()["data"]["access_token"]
                writer = await _key(http, token, ["dataplane:write"], NODE)
                reader = await _key(http, token, READER_SCOPES)
        except BaseException:
            server.stop()
            server.cleanup()
            raise
        return cls(server, token, writer, reader)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server.grpc_port}"

    async def key(self, scopes: list[str]) -> str:
        async with httpx.AsyncClient(base_url=self.server.url("/api/v2"), timeout=10) as http:
            return await _key(http, self.admin_token, scopes)

    @asynccontextmanager
    async def uplink(self) -> AsyncIterator[Uplink]:
        async with self._uplink(None) as link:
            yield link

    @asynccontextmanager
    async def uplink_tls(self) -> AsyncIterator[Uplink]:
        """The uplink over TLS (GRPC_TLS on), trusting the server's certificate."""
        async with self._uplink(self.server.cert_file.read_bytes()) as link:
            yield link

    @asynccontextmanager
    async def _uplink(self, ca_pem: bytes | None) -> AsyncIterator[Uplink]:
        link = Uplink(self.target, self.writer_key, ca_pem=ca_pem)
        try:
            await link.hello()
            yield link
        finally:
            await link.close()

    def env(self, **extra: str) -> dict[str, str]:
        """The observer's environment: this server's port and data dir, the reader key, UTC;
        nothing of the developer's FLOE_*/GRPC*/TLS_* settings."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("FLOE_", "DB_", "HTTP", "GRPC", "TLS_"))}
        env.update({"FLOE_TOKEN": self.reader_key, "GRPC_PORT": str(self.server.grpc_port),
                    "GRPC_TLS": self.server.env.get("GRPC_TLS", "false"),
                    "FLOE_DATA_DIR": str(self.server.data_dir), "TZ": "UTC",
                    "PYTHONPATH": str(REPO_ROOT)})
        env.update(extra)
        return env

    async def spawn(self, *args: str, env: dict[str, str] | None = None) -> Observer:
        process = await asyncio.create_subprocess_exec(
            str(PYTHON), "-m", "app.cli", "observe", *args, cwd=str(REPO_ROOT),
            env=env or self.env(), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        observer = Observer(process)
        self.observers.append(observer)
        return observer

    async def observe(self, *args: str, env: dict[str, str] | None = None,
                      timeout: float = 30.0) -> Result:
        """Run `floe observe ARGS` to the end."""
        observer = await self.spawn(*args, env=env)
        try:
            code = await asyncio.wait_for(observer.process.wait(), timeout)
            await asyncio.wait_for(asyncio.gather(*observer._readers), timeout)
        finally:
            observer.kill()
        return Result(code, "".join(observer.lines), "".join(observer.err))

    async def close(self) -> None:
        for observer in self.observers:
            observer.kill()
            if observer.process.returncode is None:
                await asyncio.wait_for(observer.process.wait(), 10)
        await asyncio.to_thread(self.server.stop)
        self.server.cleanup()


async def _key(http: httpx.AsyncClient, token: str, scopes: list[str],
               node_id: str | None = None) -> str:
    body: dict[str, Any] = {"name": f"observe-{uuid.uuid4().hex[:6]}", "scopes": scopes}
    if node_id is not None:
        body["node_id"] = node_id
    response = await http.post("/clients", json=body,
                               headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.text
    key: str = response.json()["data"]["api_key"]
    return key


def restart(server: FloeServer, env: dict[str, str] | None = None) -> FloeServer:
    """A new `floe serve` on the same ports and data directory (the old one stopped)."""
    same = {name: server.env[name] for name in ("HTTP_PORT", "HTTPS_PORT", "GRPC_PORT",
                                                "METRICS_PORT", "FLOE_DATA_DIR")}
    return FloeServer.start(env={**SERVER_ENV, **(env or {}), **same})


def since_now() -> str:
    """A --since that includes everything from now on (RFC 3339, a second of slack)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))


async def running_cluster() -> AsyncIterator[Cluster]:
    """A started Cluster, closed at teardown whatever happened."""
    running = await Cluster.start()
    try:
        yield running
    finally:
        await running.close()


# One control plane per module for tests that only read; test_follow.py, whose tests restart
# the server, overrides it with one per test.
cluster = pytest_asyncio.fixture(loop_scope="module", scope="module", name="cluster")(
    running_cluster)
