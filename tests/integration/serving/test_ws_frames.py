"""Pre-built WebSocket frames (app/serving/wsframes.py) against the real hypercorn and clients.

The stream's hub messages bypass Quart, ASGI and wsproto when the transport attaches a frame
sender. If a hypercorn upgrade changes what `attach` recognises, the stream silently falls
back to the slower path: the first test says so. The others check that the frames reach real
clients intact over HTTP/1.1 (the `websockets` client) and h2 (RFC 8441 extended CONNECT),
at every header size, and that a closed socket ends the sender with ClientDisconnectedError.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest
import websockets
from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart.wrappers.base import ClientDisconnectedError
from wsproto.frame_protocol import FrameProtocol, Opcode

from app.config import load_settings
from app.serving.admission import AdmissionMiddleware
from app.serving.metrics import ServingCounters
from app.serving.wsframes import attach, text_frame
from app.types import WS_FRAMES
from tests.support.ports import free_port

# a frame header of each size: 7-bit, 16-bit and 64-bit lengths, and text that is not ASCII
TEXTS = ["", "x" * 125, "é" * 63, "y" * 126, "z" * 65535, "ü" * 40000, "w" * 70000]


@contextlib.asynccontextmanager
async def _server(app: Any, max_message: int | None = None) -> AsyncIterator[int]:
    port = free_port()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    if max_message is not None:
        config.websocket_max_message_size = max_message
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    try:
        for _ in range(100):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        yield port
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def _frames_app(seen: list[Any], after_close: list[str]) -> Any:
    """An ASGI app that sends TEXTS through the attached sender, then closes and tries once more."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        attach(scope, send)
        frames = scope.get(WS_FRAMES)
        seen.append(frames)
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        if frames is None:
            return
        for text in TEXTS:
            await frames.send_text(text)
        await send({"type": "websocket.close", "code": 1000})
        try:
            await frames.send_text("after close")
        except ClientDisconnectedError:
            after_close.append("refused")

    return app


async def test_hypercorn_gets_a_frame_sender_and_http11_clients_read_every_size() -> None:
    seen: list[Any] = []
    after_close: list[str] = []
    async with _server(_frames_app(seen, after_close)) as port:
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws", max_size=2**20) as ws:
            got = [await asyncio.wait_for(ws.recv(), 5) for _ in TEXTS]
            with pytest.raises(websockets.ConnectionClosedOK):
                await asyncio.wait_for(ws.recv(), 5)
    assert seen and seen[0] is not None, "attach() no longer recognises hypercorn's WSStream"
    assert got == TEXTS
    assert after_close == ["refused"]


async def test_h2_extended_connect_carries_the_same_frames() -> None:
    seen: list[Any] = []
    async with _server(_frames_app(seen, [])) as port:
        payload = await asyncio.to_thread(_h2_websocket, port)
    assert seen and seen[0] is not None
    parser = FrameProtocol(client=True, extensions=[])
    parser.receive_bytes(payload)
    texts: list[str] = []
    buffered = ""
    for frame in parser.received_frames():
        if frame.opcode is Opcode.CLOSE:
            break
        assert isinstance(frame.payload, str)
        buffered += frame.payload  # wsproto may hand a long frame over in pieces
        if frame.frame_finished:
            texts.append(buffered)
            buffered = ""
    assert texts == TEXTS


def _h2_websocket(port: int) -> bytes:
    """Open a WebSocket over h2c (RFC 8441) and return every DATA byte until the stream ends."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.update_settings({h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL: 1})
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(conn.data_to_send())
        stream_id = conn.get_next_available_stream_id()
        sent_request = False
        data = bytearray()
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return bytes(data)
            for event in conn.receive_data(chunk):
                if isinstance(event, h2.events.RemoteSettingsChanged) and not sent_request:
                    conn.send_headers(stream_id, [
                        (":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"),
                        (":path", "/ws"), (":authority", f"127.0.0.1:{port}"),
                        ("sec-websocket-version", "13")])
                    sent_request = True
                elif isinstance(event, h2.events.DataReceived):
                    data += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
                elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                    return bytes(data)
            sock.sendall(conn.data_to_send())


async def test_no_data_frame_follows_the_servers_close() -> None:
    """A client message past the size bound makes hypercorn send Close 1009 while the app still
    runs; a client that never answers the Close must get no data frame after it (RFC 6455
    §5.5.1), and the sender must tell the app the socket is done."""
    outcome: list[str] = []
    sent_in: set[str] = set()  # wsproto's state at each send the sender let through

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        attach(scope, send)
        frames = scope[WS_FRAMES]
        await receive()
        await send({"type": "websocket.accept"})
        try:
            for _ in range(400):  # bounded: 2 s of ticks
                state = frames._stream.connection.state.name
                await frames.send_text("tick")
                sent_in.add(state)
                await asyncio.sleep(0.005)
            outcome.append("never stopped")
        except ClientDisconnectedError:
            outcome.append("stopped")

    async with _server(app, max_message=1024) as port:
        opcodes = await asyncio.to_thread(_oversized_then_silent, port)
    assert Opcode.CLOSE in opcodes and opcodes[0] is Opcode.TEXT
    assert opcodes[opcodes.index(Opcode.CLOSE) + 1:] == [], opcodes
    assert outcome == ["stopped"]
    assert sent_in == {"OPEN"}  # hypercorn wrote its Close: the next send was refused


def _oversized_then_silent(port: int) -> list[Opcode]:
    """Handshake, read a few ticks, send a 2 KiB message, then only read for 0.5 s."""
    parser = FrameProtocol(client=True, extensions=[])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        assert head.startswith(b"HTTP/1.1 101"), head
        parser.receive_bytes(head.split(b"\r\n\r\n", 1)[1])
        time.sleep(0.05)
        payload, mask = b"x" * 2048, os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        sock.sendall(bytes([0x81, 0x80 | 126]) + len(payload).to_bytes(2, "big") + mask + masked)
        deadline = time.monotonic() + 0.5
        sock.settimeout(0.1)
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                break
            parser.receive_bytes(chunk)
    return [frame.opcode for frame in parser.received_frames()]


async def test_the_admission_middleware_attaches_the_sender_and_removes_it() -> None:
    """Floe's own outermost layer under hypercorn: the stream finds the sender in its scope,
    and the scope no longer holds it once the app has returned (no reference cycle)."""
    seen: list[Any] = []
    scopes: list[dict[str, Any]] = []

    async def inner(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        scopes.append(scope)
        seen.append(scope.get(WS_FRAMES))
        await receive()
        await send({"type": "websocket.accept"})
        await scope[WS_FRAMES].send_text("through the middleware")
        await send({"type": "websocket.close", "code": 1000})

    middleware = AdmissionMiddleware(inner, load_settings({}), ServingCounters())
    async with _server(middleware) as port:
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
            assert await asyncio.wait_for(ws.recv(), 5) == "through the middleware"
        for _ in range(100):  # the app returns just after the close
            if WS_FRAMES not in scopes[0]:
                break
            await asyncio.sleep(0.02)
    assert seen and seen[0] is not None
    assert WS_FRAMES not in scopes[0]


def test_text_frame_header_sizes() -> None:
    assert text_frame(b"hi") == b"\x81\x02hi"
    assert text_frame(b"a" * 126)[:4] == b"\x81\x7e\x00\x7e"
    assert text_frame(b"a" * 65536)[:10] == b"\x81\x7f" + (65536).to_bytes(8, "big")
