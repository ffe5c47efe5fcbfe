"""FloeQuicProtocol: one timer handle per connection, sends coalesced per loop turn.

The end-to-end HTTP/3 behaviour is covered by tests/integration/serving/test_protocols.py;
these pin the two properties the change is for (issue 13 measured them: hypercorn restarted a
timer task and built packets on every send).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from app.serving.quic import FloeQuicProtocol, QuicTimer


class FakeQuic:
    def __init__(self, timer: float | None) -> None:
        self.timer = timer
        self.transmits = 0
        self.timer_handled = 0
        self._events: deque[object] = deque()  # aioquic's QuicConnection keeps its events here
        self.timer_events: list[object] = []  # what the next handle_timer() raises

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Any]]:
        self.transmits += 1
        return [(b"d%d" % self.transmits, ("127.0.0.1", 1))]

    def get_timer(self) -> float | None:
        return self.timer

    def handle_timer(self, now: float) -> None:
        self.timer_handled += 1
        self.timer = None
        self._events.extend(self.timer_events)

    def next_event(self) -> object | None:
        return self._events.popleft() if self._events else None


class FakeConnection:
    def __init__(self, timer: float | None) -> None:
        self.quic = FakeQuic(timer)
        self.task: Any = object()  # hypercorn's SingleTask, never started
        self.h3 = None
        self.cids: set[bytes] = set()


class Context:
    @staticmethod
    def time() -> float:
        return asyncio.get_running_loop().time()


def protocol(sent: list[bytes], coalesce: bool = True) -> FloeQuicProtocol:
    """The protocol without hypercorn's constructor (which loads a certificate)."""
    proto = FloeQuicProtocol.__new__(FloeQuicProtocol)
    proto.sendto = lambda data, address: sent.append(data)
    proto._pending = {}
    proto.context = Context()  # type: ignore[assignment]
    proto.coalesce = coalesce
    proto.spawned = []  # type: ignore[attr-defined]
    proto.task_group = type("TG", (), {"spawn": lambda self, f, *a: proto.spawned.append(  # type: ignore[attr-defined]
        asyncio.get_running_loop().create_task(f(*a)))})()  # type: ignore[assignment]
    return proto


async def test_sends_in_one_loop_turn_leave_together() -> None:
    sent: list[bytes] = []
    proto = protocol(sent)
    one, two = FakeConnection(None), FakeConnection(None)
    for connection in (one, two, one, one):  # e.g. ACK, then headers, body, end of a response
        await proto.send_all(connection)  # type: ignore[arg-type]
    assert sent == []  # nothing until the loop turns
    await asyncio.sleep(0)
    assert (one.quic.transmits, two.quic.transmits) == (1, 1)
    assert len(sent) == 2


async def test_without_coalescing_each_send_transmits() -> None:
    sent: list[bytes] = []
    proto = protocol(sent, coalesce=False)
    connection = FakeConnection(None)
    for _ in range(3):
        await proto.send_all(connection)  # type: ignore[arg-type]
    assert connection.quic.transmits == 3 and len(sent) == 3


async def test_timer_is_one_handle_rearmed_only_when_the_deadline_moves() -> None:
    loop = asyncio.get_running_loop()
    fired: list[int] = []
    timer = QuicTimer()
    when = loop.time() + 0.05
    timer.arm(when, lambda: fired.append(1))
    handle = timer._handle
    timer.arm(when, lambda: fired.append(2))
    assert timer._handle is handle  # same deadline: untouched
    timer.arm(when + 0.01, lambda: fired.append(3))
    assert handle is not None and handle.cancelled()
    await asyncio.sleep(0.1)
    assert fired == [3]
    timer.arm(loop.time() + 0.01, lambda: fired.append(4))
    await timer.stop()  # what hypercorn calls when the connection terminates
    await asyncio.sleep(0.05)
    assert fired == [3]


async def test_connection_timer_fires_handle_timer() -> None:
    sent: list[bytes] = []
    proto = protocol(sent, coalesce=False)
    connection = FakeConnection(asyncio.get_running_loop().time() + 0.02)
    await proto.send_all(connection)  # type: ignore[arg-type]
    assert isinstance(connection.task, QuicTimer)
    await asyncio.sleep(0.1)
    assert connection.quic.timer_handled == 1
    assert connection.quic.transmits == 2  # after the timer: events handled, sent again


async def test_a_timer_with_nothing_to_report_sends_without_a_task() -> None:
    """An ACK or loss probe falling due (most timer firings) sends from the timer callback."""
    sent: list[bytes] = []
    proto = protocol(sent, coalesce=False)
    connection = FakeConnection(asyncio.get_running_loop().time() + 0.02)
    await proto.send_all(connection)  # type: ignore[arg-type]
    await asyncio.sleep(0.1)
    assert connection.quic.timer_handled == 1 and connection.quic.transmits == 2
    assert proto.spawned == []  # type: ignore[attr-defined]


async def test_a_timer_that_raises_events_hands_them_to_hypercorn_in_a_task() -> None:
    """E.g. the idle timeout's ConnectionTerminated: hypercorn's event handling still sees it."""
    sent: list[bytes] = []
    proto = protocol(sent, coalesce=False)
    connection = FakeConnection(asyncio.get_running_loop().time() + 0.02)
    event = object()
    connection.quic.timer_events = [event]
    await proto.send_all(connection)  # type: ignore[arg-type]
    await asyncio.sleep(0.1)
    assert len(proto.spawned) == 1  # type: ignore[attr-defined]
    assert not connection.quic._events  # consumed by hypercorn's _handle_events
    assert connection.quic.transmits == 2


def test_aioquic_keeps_its_events_where_the_timer_looks() -> None:
    """`_timer_fired` reads aioquic's private `_events` (aioquic is pinned): an upgrade that
    moves it must fail here, not send every timer through a task or skip events."""
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.connection import QuicConnection

    quic = QuicConnection(configuration=QuicConfiguration(is_client=True))
    assert isinstance(quic._events, deque) and not quic._events
    event = object()
    quic._events.append(event)  # type: ignore[arg-type]
    assert quic.next_event() is event and quic.next_event() is None  # the queue next_event reads
