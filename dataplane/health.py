"""`GET /healthz` of a running `floe dataplane`: attached, uplink connected, last ack age, loss.

Off unless FLOE_DATAPLANE_HEALTH_PORT is set; it listens on FLOE_DATAPLANE_HEALTH_ADDRESS
(loopback by default), for a container health check or a node agent on the same host. It is a
few dozen lines of asyncio streams rather than an HTTP framework: one path, one answer per
connection, then close.

The status code says whether restarting this process could help: 200 while the pipeline
ticks and (XDP modes) floe_xdp with its pins is still attached to the interface; 503 before
the first tick, when no tick has finished for `stall_seconds`, or when the program is gone.
The uplink does not change the code — a dataplane cut off from its control plane keeps
counting and filtering and buffers its batches — but makes the body's status `degraded`:
disconnected, or connected with no ack for `ack_stale_seconds`.

Bounds (the port is local, but still bounded): MAX_CONNECTIONS at a time (more are closed at
once), a request head of at most MAX_REQUEST_BYTES read within REQUEST_TIMEOUT seconds (else
closed); both refusals are counted and shown in the body. The attachment query (netlink) runs
in a worker thread at most once per ATTACH_CHECK_SECONDS, however many requests come.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from floe.dataplane.v1 import uplink_pb2 as pb

if TYPE_CHECKING:
    from dataplane.runner import Runner

__all__ = [
    "ATTACH_CHECK_SECONDS",
    "MAX_CONNECTIONS",
    "MAX_REQUEST_BYTES",
    "REQUEST_TIMEOUT",
    "HealthServer",
    "loss_by_source",
]

MAX_CONNECTIONS = 8
MAX_REQUEST_BYTES = 4096
REQUEST_TIMEOUT = 2.0
ATTACH_CHECK_SECONDS = 1.0
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


def loss_by_source(reports: list[Any]) -> dict[str, int]:
    """LossReports as `source:detail` → count: the names /metrics uses (afxdp_ring:rx_ring_full)."""
    out: dict[str, int] = {}
    for report in reports:
        source = pb.LossSource.Name(report.source).removeprefix("LOSS_SOURCE_").lower()
        key = f"{source}:{report.detail}" if report.detail else source
        out[key] = out.get(key, 0) + int(report.count)
    return out


def _timestamp() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


@dataclass(slots=True)
class _Refused:
    connections: int = 0  # over MAX_CONNECTIONS
    requests: int = 0  # head too long, too slow, or not HTTP


class HealthServer:
    """The listener; `report()` is the body's data and the status code."""

    def __init__(self, runner: Runner, address: str, port: int) -> None:
        self.runner = runner
        self.address = address
        self.port = port
        tick = runner.config.tick_seconds
        self.stall_seconds = max(5.0, 20 * tick)
        self.ack_stale_seconds = max(10.0, 50 * tick)
        self.refused = _Refused()
        self._active = 0
        self._server: asyncio.Server | None = None
        self._attach_lock = asyncio.Lock()
        self._attached: tuple[float, str | None] = (0.0, None)  # (checked at, mode)

    async def start(self) -> None:
        """Bind (OSError when the port is taken); port 0 picks a free one (tests)."""
        self._server = await asyncio.start_server(self._handle, self.address, self.port,
                                                  limit=MAX_REQUEST_BYTES, backlog=16)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    # -- the answer ------------------------------------------------------------------------
    async def _attach_mode(self) -> str | None:
        program = self.runner.program
        if program is None:
            return None
        async with self._attach_lock:
            checked, mode = self._attached
            if time.monotonic() - checked >= ATTACH_CHECK_SECONDS:
                mode = await asyncio.to_thread(program.attached_now)
                self._attached = (time.monotonic(), mode)
            return mode

    async def report(self) -> tuple[int, dict[str, Any]]:
        runner, now = self.runner, time.monotonic()
        stats = runner.uplink.stats
        xdp = runner.program is not None
        attached = await self._attach_mode()
        problems: list[str] = []
        if not runner.last_tick_monotonic:
            problems.append("starting: no tick finished yet")
        elif now - runner.last_tick_monotonic > self.stall_seconds:
            problems.append(f"stalled: no tick for {now - runner.last_tick_monotonic:.1f} s")
        if xdp and attached is None:
            problems.append(f"floe_xdp is no longer attached to {runner.interface}")
        ack_age = round(now - stats.last_ack_monotonic, 3) if stats.last_ack_monotonic else None
        warnings: list[str] = []
        if not stats.connected:
            warnings.append("uplink disconnected" + (f": {stats.last_error}"
                                                      if stats.last_error else ""))
        elif ack_age is None or ack_age > self.ack_stale_seconds:
            warnings.append(f"no ack for more than {self.ack_stale_seconds:g} s")
        loss = loss_by_source([*runner.last_losses, *runner.uplink.loss_reports()])
        status = "failing" if problems else "degraded" if warnings else "ok"
        data = {
            "status": status,
            "problems": problems + warnings,
            "node_id": runner.config.node_id,
            "mode": runner.mode,
            "interface": runner.interface,
            "xdp": xdp,
            "attached": attached,  # native/generic; null when not attached or not XDP
            "last_tick_age_seconds": (round(now - runner.last_tick_monotonic, 3)
                                      if runner.last_tick_monotonic else None),
            "uplink": {
                "target": stats.target,  # the address in use, or being tried
                "targets": list(runner.uplink.targets),
                "connected": stats.connected,
                "last_ack_age_seconds": ack_age,
                "acked_seq": stats.acked_seq,
                "buffered_batches": runner.uplink.buffered,
                "connects": stats.connects,
                "failures": stats.failures,
                "failovers": stats.failovers,
                "last_error": stats.last_error,
            },
            "loss": {"total": sum(loss.values()), "by_source": loss},
            "refused": {"connections": self.refused.connections,
                        "requests": self.refused.requests},
        }
        return (503 if problems else 200), data

    # -- HTTP ------------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._active >= MAX_CONNECTIONS:
            self.refused.connections += 1
            writer.close()
            return
        self._active += 1
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT)
                method, target, version = head.split(b"\r\n", 1)[0].decode("ascii").split(" ")
                if not version.startswith("HTTP/1."):
                    raise ValueError(version)
            except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    ConnectionError, UnicodeDecodeError, ValueError):
                self.refused.requests += 1
                return
            status, body = await self._answer(method, target.split("?", 1)[0])
            payload = json.dumps(body, separators=(",", ":")).encode()
            head_out = (f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
                        "Content-Type: application/json\r\n"
                        f"Content-Length: {len(payload)}\r\n"
                        "Cache-Control: no-store\r\nConnection: close\r\n"
                        + ("Allow: GET, HEAD\r\n" if status == 405 else "") + "\r\n")
            writer.write(head_out.encode() + (b"" if method == "HEAD" else payload))
            with contextlib.suppress(TimeoutError, ConnectionError):
                await asyncio.wait_for(writer.drain(), REQUEST_TIMEOUT)
        finally:
            self._active -= 1
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), REQUEST_TIMEOUT)

    async def _answer(self, method: str, path: str) -> tuple[int, dict[str, Any]]:
        """The envelopes of the control plane's API (docs/api.md), without its framework."""
        meta = {"version": 2, "timestamp": _timestamp()}
        if path != "/healthz":
            return 404, {"status": "error", "error": {
                "code": "not_found", "message": "only /healthz is served here"}, "meta": meta}
        if method not in ("GET", "HEAD"):
            return 405, {"status": "error", "error": {
                "code": "method_not_allowed", "message": "use GET or HEAD"}, "meta": meta}
        status, data = await self.report()
        return status, {"status": "success", "data": data, "meta": meta}
