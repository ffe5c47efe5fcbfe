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

* per connection, every send (each received datagram, and each HTTP/3 headers / body / end
  of a response) ran `datagrams_to_send` and restarted the connection's timer *task*
  (cancel, await the cancellation, create a task). `FloeQuicProtocol` keeps the timer as one
  `loop.call_at` handle re-armed only when the deadline moves, and (`coalesce`) sends what a
  connection has once per loop turn, so a response's three sends leave as one flight. A timer
  that falls due with nothing for hypercorn to see (an ACK or a loss probe: most of them) sends
  from its callback; only one that raises events (e.g. the idle timeout's termination) goes
  through hypercorn's event handling in a task (`timer_inline`).

* aioquic uses QPACK dynamic tables of 4 KiB both ways. For each header block that refers
  to the table, the receiving decoder owes an acknowledgement on its decoder stream: the
  server sends one as soon as it has read a request, before the response exists (a datagram
  of its own, which the client must ACK), and the client one per response.
  `TableH3Connection` offers QUIC_QPACK_TABLE bytes instead; at the default 0 its own encoder
  (`NoTableEncoder`) uses no table either, so header blocks are self-contained both ways (a
  bearer token travels as a literal, still inside one datagram). Measured side by side in
  `docs/benchmarks.md`.

`install()` makes hypercorn's asyncio worker construct these classes (it looks the names
up in `hypercorn.asyncio.run` / `hypercorn.protocol.quic` at bind time); it is called by
`app.serving.run` only.

With `floe serve --instances N`, `install_steering()` also makes hypercorn construct
`SteeredQuicConnection`, whose connection IDs name the instance (`app.serving.steering`).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Any, ClassVar, cast

import hypercorn.asyncio.run as hypercorn_run
import hypercorn.protocol.h3 as hypercorn_h3
import hypercorn.protocol.quic as hypercorn_quic
import pylsqpack
from aioquic.h3.connection import H3Connection
from aioquic.quic.connection import QuicConnection, QuicConnectionId
from hypercorn.asyncio.task_group import TaskGroup
from hypercorn.asyncio.udp_server import UDPServer
from hypercorn.events import Closed, RawData
from hypercorn.protocol.events import Event as StreamEvent
from hypercorn.protocol.events import StreamClosed
from hypercorn.protocol.h3 import H3Protocol
from hypercorn.protocol.quic import QuicProtocol, _Connection
from hypercorn.typing import ConnectionState, SingleTask
from hypercorn.utils import parse_socket_addr

from app.serving.metrics import ServingCounters
from app.serving.steering import CidLayout

log = logging.getLogger("floe.serving.quic")

__all__ = [
    "BoundedUDPServer", "ClosingH3Protocol", "FloeQuicProtocol", "NoTableEncoder", "QuicTimer",
    "SteeredQuicConnection", "TableH3Connection", "install", "install_steering",
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


class QuicTimer:
    """A connection's QUIC timer as one `call_at` handle; stands in for hypercorn's SingleTask
    (`stop()` is what hypercorn calls on it when the connection terminates)."""

    __slots__ = ("_handle", "_when")

    def __init__(self) -> None:
        self._handle: asyncio.TimerHandle | None = None
        self._when: float | None = None

    def arm(self, when: float | None, fire: Callable[[], None]) -> None:
        if when == self._when:
            return
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._when = when
        if when is not None:
            self._handle = asyncio.get_running_loop().call_at(when, self._fired, fire)

    def _fired(self, fire: Callable[[], None]) -> None:
        self._handle, self._when = None, None
        fire()

    async def stop(self) -> None:
        self.arm(None, lambda: None)


class FloeQuicProtocol(QuicProtocol):
    """hypercorn's QuicProtocol with a cheap timer and sends coalesced per loop turn."""

    coalesce: bool = True
    call_at_timer: bool = True
    timer_inline: bool = True

    def __init__(self, *args: Any, sendto: Callable[[bytes, Any], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sendto = sendto
        self._pending: dict[int, _Connection] = {}

    async def send_all(self, connection: _Connection) -> None:
        if not self.call_at_timer:
            await super().send_all(connection)
        elif not self.coalesce:
            self.flush(connection)
        else:
            if not self._pending:
                asyncio.get_running_loop().call_soon(self._flush_pending)
            self._pending[id(connection)] = connection

    def _flush_pending(self) -> None:
        pending, self._pending = self._pending, {}
        for connection in pending.values():
            self._flush_logged(connection)

    def _flush_logged(self, connection: _Connection) -> None:
        """flush(), from a loop callback: one broken connection must not stop the others."""
        try:
            self.flush(connection)
        except Exception:
            log.exception("QUIC send failed for one connection")

    def flush(self, connection: _Connection) -> None:
        """Send what the connection has now and re-arm its timer."""
        for data, address in connection.quic.datagrams_to_send(now=self.context.time()):
            self.sendto(data, address)
        timer: QuicTimer | None = (
            connection.task if isinstance(connection.task, QuicTimer) else None
        )
        if timer is None:  # hypercorn's SingleTask, never started: replaced once
            timer = QuicTimer()
            connection.task = cast("SingleTask", timer)
        timer.arm(connection.quic.get_timer(), lambda: self._timer_fired(connection))

    def _timer_fired(self, connection: _Connection) -> None:
        quic = connection.quic
        quic.handle_timer(now=self.context.time())
        if self.timer_inline and not quic._events:
            # The common case (an ACK or a loss probe due): nothing for hypercorn or HTTP/3 to
            # see, so the connection sends from this callback instead of from a new task.
            self._flush_logged(connection)
            return
        self.task_group.spawn(self._handle_events, connection, None)


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
            if isinstance(self.protocol, FloeQuicProtocol) and self.protocol.call_at_timer:
                self.protocol.flush(connection)  # now, not on the next loop turn
            else:
                await self.protocol.send_all(connection)
            await connection.task.stop()
        self.protocol.connections.clear()
        self.protocol_queue.put_nowait(Closed())

    async def run(self) -> None:
        assert self.transport is not None
        sock = self.transport.get_extra_info("socket")
        server = parse_socket_addr(sock.family, sock.getsockname())
        async with TaskGroup(self.loop) as task_group:
            self.protocol = FloeQuicProtocol(
                self.app,
                self.config,
                self.context,
                task_group,
                ConnectionState(self.state.copy()),
                server,
                self.protocol_send,
                sendto=self.transport.sendto,
            )
            watcher = self.loop.create_task(self._wake_on_shutdown())
            try:
                while not self.context.terminated.is_set() or not self.protocol.idle:
                    event = await self.protocol_queue.get()
                    await self.protocol.handle(event)
            finally:
                watcher.cancel()


class NoTableEncoder:
    """pylsqpack's encoder (a type that cannot be subclassed) that uses no dynamic table,
    whatever the peer offers: every header block is self-contained, so the peer's decoder never
    has to acknowledge one. (With a table, lsqpack must take the peer's capacity unchanged: it
    derives the insert-count wrap from it, RFC 9204 §4.5.1.1.)"""

    __slots__ = ("_inner",)

    def __init__(self) -> None:
        self._inner = pylsqpack.Encoder()

    def apply_settings(self, max_table_capacity: int, blocked_streams: int) -> bytes:
        return self._inner.apply_settings(max_table_capacity=0, blocked_streams=0)

    def encode(self, stream_id: int, headers: list[tuple[bytes, bytes]]) -> tuple[bytes, bytes]:
        return self._inner.encode(stream_id, headers)

    def feed_decoder(self, data: bytes) -> None:
        self._inner.feed_decoder(data)


class TableH3Connection(H3Connection):
    """H3Connection whose SETTINGS offer the peer's encoder a QPACK dynamic table of `table`
    bytes; at 0 its own encoder uses no table either (at more, the one the peer offers)."""

    table: ClassVar[int] = 0

    def _init_connection(self) -> None:
        # aioquic's __init__ built the codec from its own default; this runs next, before
        # the SETTINGS frame is written, so the decoder and the settings agree.
        self._max_table_capacity = self.table
        if not self.table:
            self._blocked_streams = 0
            self._encoder = NoTableEncoder()  # type: ignore[assignment]
        self._decoder = pylsqpack.Decoder(self._max_table_capacity, self._blocked_streams)
        super()._init_connection()


def install(queue_size: int, counters: ServingCounters, drain: float,
            qpack_table: int = 0) -> None:
    """Make hypercorn's asyncio worker use `BoundedUDPServer` with these limits, and its
    HTTP/3 connections offer a QPACK table of `qpack_table` bytes."""
    BoundedUDPServer.queue_size = queue_size
    BoundedUDPServer.counters = counters
    BoundedUDPServer.drain = drain
    TableH3Connection.table = qpack_table
    hypercorn_h3.H3Connection = TableH3Connection  # type: ignore[attr-defined,misc]
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
