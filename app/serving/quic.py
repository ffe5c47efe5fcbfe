"""hypercorn's QUIC (HTTP/3) UDP server, fixed for Floe without editing site-packages.

hypercorn 0.18 `UDPServer` has two problems measured on this platform:

* its receive queue holds 10 datagrams and silently throws the rest away: at 4 concurrent
  QUIC connections ~50% were dropped. `BoundedUDPServer` uses QUIC_QUEUE_SIZE and counts
  every dropped datagram (`floe_quic_datagrams_dropped`);
* its loop only re-checks "shutdown" after the next datagram arrives, so an idle HTTP/3
  listener kept the process alive for the whole graceful timeout. Here a watcher wakes the
  loop when hypercorn marks the worker terminated, waits up to `drain` seconds for open
  QUIC connections to finish, then closes them (CONNECTION_CLOSE) and returns.

* its HTTP/3 protocol drops a finished stream without telling the ASGI app
  (`http.disconnect` never arrives), so with Quart the app call of *every* HTTP/3 request
  never returns: one leaked task per request, and Floe's in-flight count (admission
  control) only ever grew. `ClosingH3Protocol` forwards the close to the stream, as
  hypercorn's HTTP/1.1 and HTTP/2 protocols do.

`install()` makes hypercorn's asyncio worker construct these classes (it looks the names
up in `hypercorn.asyncio.run` / `hypercorn.protocol.quic` at bind time); it is called by
`app.serving.run` only.

With `floe serve --instances N`, `install_steering()` also makes hypercorn construct
`SteeredQuicConnection`, whose connection IDs name the instance (`app.serving.steering`).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, ClassVar

import hypercorn.asyncio.run as hypercorn_run
import hypercorn.protocol.quic as hypercorn_quic
from aioquic.quic.connection import QuicConnection, QuicConnectionId
from hypercorn.asyncio.task_group import TaskGroup
from hypercorn.asyncio.udp_server import UDPServer
from hypercorn.events import Closed, RawData
from hypercorn.protocol.events import Event as StreamEvent
from hypercorn.protocol.events import StreamClosed
from hypercorn.protocol.h3 import H3Protocol
from hypercorn.typing import ConnectionState
from hypercorn.utils import parse_socket_addr

from app.serving.metrics import ServingCounters
from app.serving.steering import CidLayout

__all__ = [
    "BoundedUDPServer", "ClosingH3Protocol", "SteeredQuicConnection", "install",
    "install_steering",
]


class ClosingH3Protocol(H3Protocol):
    """H3Protocol that lets the stream (and so the ASGI app) see its own close."""

    async def stream_send(self, event: StreamEvent) -> None:
        if isinstance(event, StreamClosed):
            stream = self.streams.pop(event.stream_id, None)
            if stream is not None:
                await stream.handle(StreamClosed(stream_id=event.stream_id))
            return
        await super().stream_send(event)


class BoundedUDPServer(UDPServer):
    """UDPServer with a configurable, counted receive bound and a prompt shutdown."""

    queue_size: int = 1024
    drain: float = 0.5
    counters: ServingCounters = ServingCounters()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Unbounded asyncio queue; the bound is enforced (and counted) in datagram_received.
        self.protocol_queue = asyncio.Queue()

    def datagram_received(self, data: bytes, address: tuple[bytes, str]) -> None:  # type: ignore[override]
        counters = self.counters
        counters.quic_datagrams_received += 1
        if self.protocol_queue.qsize() >= self.queue_size:
            counters.quic_datagrams_dropped += 1
            return
        self.protocol_queue.put_nowait(RawData(data=data, address=address))  # type: ignore[arg-type]

    async def _wake_on_shutdown(self) -> None:
        await self.context.terminated.wait()
        self.protocol_queue.put_nowait(Closed())  # QuicProtocol ignores Closed: a pure wake-up
        deadline = self.loop.time() + self.drain
        while not self.protocol.idle and self.loop.time() < deadline:  # noqa: ASYNC110 (no idle event in hypercorn)
            await asyncio.sleep(0.05)
        for connection in {id(c): c for c in self.protocol.connections.values()}.values():
            connection.quic.close(error_code=0, reason_phrase="server shutting down")
            await self.protocol.send_all(connection)
            await connection.task.stop()
        self.protocol.connections.clear()
        self.protocol_queue.put_nowait(Closed())

    async def run(self) -> None:
        from hypercorn.protocol.quic import QuicProtocol

        assert self.transport is not None
        sock = self.transport.get_extra_info("socket")
        server = parse_socket_addr(sock.family, sock.getsockname())
        async with TaskGroup(self.loop) as task_group:
            self.protocol = QuicProtocol(
                self.app,
                self.config,
                self.context,
                task_group,
                ConnectionState(self.state.copy()),
                server,
                self.protocol_send,
            )
            watcher = self.loop.create_task(self._wake_on_shutdown())
            try:
                while not self.context.terminated.is_set() or not self.protocol.idle:
                    event = await self.protocol_queue.get()
                    await self.protocol.handle(event)
            finally:
                watcher.cancel()


def install(queue_size: int, counters: ServingCounters, drain: float) -> None:
    """Make hypercorn's asyncio worker use `BoundedUDPServer` with these limits."""
    BoundedUDPServer.queue_size = queue_size
    BoundedUDPServer.counters = counters
    BoundedUDPServer.drain = drain
    hypercorn_run.UDPServer = BoundedUDPServer  # type: ignore[attr-defined,misc]
    hypercorn_quic.H3Protocol = ClosingH3Protocol  # type: ignore[attr-defined,misc]


class SteeredQuicConnection(QuicConnection):
    """QuicConnection whose every host connection ID starts with this instance's index.

    aioquic 1.7 draws host CIDs with `os.urandom` in two places: the first one (sequence 0)
    in `__init__`, the rest in `_replenish_connection_ids` (sent as NEW_CONNECTION_ID). The
    first is replaced right after construction — before hypercorn reads `host_cid` or any
    packet is sent — and the second is overridden with the same loop.
    """

    layout: ClassVar[CidLayout] = CidLayout(0, 1)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        first = self._host_cids[0]
        first.cid = self.layout.initial_cid()
        self.host_cid = first.cid
        self._local_initial_source_connection_id = first.cid

    def _replenish_connection_ids(self) -> None:
        while len(self._host_cids) < min(8, self._remote_active_connection_id_limit):
            self._host_cids.append(
                QuicConnectionId(
                    cid=self.layout.cid(),
                    sequence_number=self._host_cid_seq,
                    stateless_reset_token=os.urandom(16),
                )
            )
            self._host_cid_seq += 1


def install_steering(layout: CidLayout) -> None:
    """Make hypercorn's QUIC server create `SteeredQuicConnection`s for instance `layout`."""
    SteeredQuicConnection.layout = layout
    hypercorn_quic.QuicConnection = SteeredQuicConnection  # type: ignore[attr-defined,misc]
