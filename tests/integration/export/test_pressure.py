"""A collector slower than the flows: the exporter refuses what its queue cannot hold and
counts it; the dataplane's batches are acknowledged as fast as without export."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio

from tests.integration.export.conftest import BASE_ENV, Rest
from tests.integration.export.traffic import ended_flows, uplink
from tests.support.server import FloeServer

pytestmark = pytest.mark.asyncio(loop_scope="module")

RATE = 20  # messages a second: ~380 IPv4 records a second
QUEUE = 1024


@pytest.fixture(scope="module")
def sink() -> Iterator[socket.socket]:
    """A collector that accepts datagrams (no refusal) and never reads them."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


@pytest.fixture(scope="module")
def server(sink: socket.socket) -> Iterator[FloeServer]:
    env = {**BASE_ENV, "FLOE_IPFIX_COLLECTORS": f"127.0.0.1:{sink.getsockname()[1]}",
           "FLOE_IPFIX_MESSAGES_PER_SECOND": str(RATE), "FLOE_IPFIX_QUEUE_RECORDS": str(QUEUE)}
    with FloeServer.start(env=env) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def rest(server: FloeServer) -> AsyncIterator[Rest]:
    async with httpx.AsyncClient(base_url=server.url("/api/v2"), timeout=10.0) as client:
        yield await Rest.login(server, client)


async def test_a_slow_collector_never_holds_the_dataplane_back(
    server: FloeServer, rest: Rest, sink: socket.socket
) -> None:
    label = f"127.0.0.1:{sink.getsockname()[1]}"
    batches, per_batch = 10, 2000
    flows = ended_flows(batches * per_batch, seed=7)
    key = await rest.dataplane_key("edge-busy")
    acks: list[float] = []
    started = time.monotonic()
    async with uplink(server.grpc_port, key, "edge-busy") as link:
        for i in range(batches):
            sent = time.monotonic()
            await link.send(flows[i * per_batch:(i + 1) * per_batch], timeout=10.0)
            acks.append(time.monotonic() - sent)
    ingest_seconds = time.monotonic() - started
    metrics = await rest.metrics()
    messages = metrics[f'floe_ipfix_messages_total{{collector="{label}"}}']
    # Paced: the exporter sent no more than its rate allows (+ its 32-message burst) while
    # the ingest went on at its own speed.
    assert messages <= RATE * (ingest_seconds + 1) + 32
    assert max(acks) < 5.0, acks

    total = batches * per_batch
    counts = await rest.wait_ipfix("edge-busy", label, records=total, timeout=30.0)
    assert counts["pending"] == 0 and counts["exported"] + counts["lost"] == total
    assert counts["lost"] > 0 and counts["exported"] >= QUEUE
    metrics = await rest.metrics()
    queue_full = metrics[f'floe_ipfix_records_lost_total{{collector="{label}",'
                         f'reason="queue_full"}}']
    assert queue_full == counts["lost"]
    assert metrics["floe_ipfix_queue_records"] == 0
