"""Failover between control-plane addresses: the rotation policy (next address at once,
backoff per full round, stay on the instance that answered) and the real loop over it."""

from __future__ import annotations

import asyncio
import logging

import pytest

from dataplane import uplink
from dataplane.uplink import Rotation, UplinkClient
from tests.support.ports import free_port


# -- rotation ---------------------------------------------------------------------------------
def test_a_round_tries_every_address_at_once_then_backs_off() -> None:
    rotation = Rotation(("a", "b", "c"))
    steps = [(rotation.failed(), rotation.address) for _ in range(6)]
    assert steps == [(None, "b"), (None, "c"), (1, "a"), (None, "b"), (None, "c"), (2, "a")]


def test_after_a_welcome_the_next_address_is_tried_at_once_and_the_wait_starts_short() -> None:
    rotation = Rotation(("a", "b", "c"), index=1)
    rotation.failed()
    rotation.connected()  # connected to c: stays there until its stream ends
    assert rotation.address == "c"
    assert [(rotation.failed(), rotation.address) for _ in range(4)] == [
        (None, "a"), (None, "b"), (0, "c"), (None, "a")]


def test_a_single_address_backs_off_after_every_failure() -> None:
    rotation = Rotation(("only",))
    assert [rotation.failed() for _ in range(3)] == [1, 2, 3]
    rotation.connected()
    assert [rotation.failed() for _ in range(2)] == [0, 1]
    assert rotation.address == "only"
    with pytest.raises(ValueError, match="at least one"):
        Rotation(())


async def test_the_real_loop_dials_each_address_once_per_round(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two ports nobody listens on: the addresses alternate, and the backoff is asked for
    once per round of two, with a growing exponent."""
    events: list[str] = []

    def record(attempt: int, initial: float, maximum: float) -> float:
        events.append(f"wait {attempt}")
        return 0.001

    targets = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    monkeypatch.setattr(uplink, "backoff_delay", record)
    client = UplinkClient(targets, lambda: "k", lambda: None)
    real_session = client._session

    async def session() -> None:
        events.append(client.target)
        await real_session()

    monkeypatch.setattr(client, "_session", session)
    task = asyncio.create_task(client.run())
    for _ in range(500):
        if len(events) >= 9:
            break
        await asyncio.sleep(0.01)
    client.stop()
    await asyncio.wait_for(task, 5)
    a, b = targets
    assert events[:9] == [a, b, "wait 1", a, b, "wait 2", a, b, "wait 3"]
    assert client.stats.failures >= 6 and client.stats.failovers == 0
    assert not client.stats.connected and client.stats.target in targets


async def test_an_address_that_never_answers_costs_the_connect_timeout() -> None:
    """A listening socket that never completes the HTTP/2 handshake (it is never accepted
    into gRPC): the attempt ends after connect_timeout, not the 10 s Welcome timeout."""
    held: list[asyncio.StreamWriter] = []  # kept open, never read from

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = UplinkClient([f"127.0.0.1:{port}"], lambda: "k", lambda: None,
                          connect_timeout=0.5)
    try:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(TimeoutError, match=r"within 0\.5 s"):
            await client._session()
        assert loop.time() - start < 3
    finally:
        for writer in held:
            writer.close()
        server.close()


def test_a_welcome_from_another_address_is_a_failover(caplog: pytest.LogCaptureFixture) -> None:
    """Reconnecting to the same address is not a failover; another address is, and says so
    as a warning naming both."""
    caplog.set_level(logging.INFO, logger="dataplane.uplink")
    client = UplinkClient(["a:1", "b:2"], lambda: "k", lambda: None)
    client._welcomed("a:1")
    client._welcomed("a:1")
    assert (client.stats.failovers, client.stats.connects) == (0, 2)
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]
    client._welcomed("b:2")
    assert (client.stats.failovers, client.stats.target) == (1, "b:2")
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "failed over from a:1 to b:2" in warning.getMessage()
