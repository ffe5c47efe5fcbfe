"""IPFIX export read back by a real collector: a known traffic set goes up a real uplink
stream into a real `floe serve`, which exports to Debian's nfcapd; `nfdump` must read back
exactly those flows, packets and bytes — and a collector that is down is counted as loss."""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from tests.integration.export.conftest import Rest
from tests.integration.export.nfdump import Nfcapd
from tests.integration.export.traffic import ended_flows, expected_row, live_update, uplink
from tests.support.server import FloeServer

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module")
async def rest(server: FloeServer) -> AsyncIterator[Rest]:
    async with httpx.AsyncClient(base_url=server.url("/api/v2"), timeout=10.0) as client:
        yield await Rest.login(server, client)


async def test_a_known_traffic_set_reads_back_exactly(
    server: FloeServer, rest: Rest, collector_port: int
) -> None:
    """Two nodes' ended flows (IPv4 and IPv6, every end reason, counters above 2**32) reach
    nfcapd as one observation domain per node; live UPDATEs are not exported; the records
    read back field for field, with no sequence failure, over many template refreshes."""
    label = f"127.0.0.1:{collector_port}"
    flows = {"edge-a": ended_flows(700, seed=1), "edge-b": ended_flows(300, seed=2, start=700)}
    with Nfcapd.start(collector_port) as collector:
        for node_id, records in flows.items():
            key = await rest.dataplane_key(node_id)
            async with uplink(server.grpc_port, key, node_id) as link:
                await link.send([live_update(r) for r in records[:100]])  # UPDATEs only
                for start in range(0, len(records), 256):
                    await link.send(records[start:start + 256])
        for node_id, records in flows.items():
            counts = await rest.wait_ipfix(node_id, label, records=len(records))
            assert counts == {"exported": len(records), "lost": 0, "pending": 0}
    rows = collector.records()
    expected = [expected_row(r) for records in flows.values() for r in records]
    assert Counter(rows) == Counter(expected)

    exporters = {e.domain: e for e in collector.exporters()}
    assert set(exporters) == {zlib.crc32(b"edge-a"), zlib.crc32(b"edge-b")}
    assert [exporters[zlib.crc32(n.encode())].flows for n in flows] == [700, 300]
    assert all(e.sequence_failures == 0 for e in exporters.values())
    summary = collector.summary()
    assert summary["Flows"] == 1000
    assert summary["Packets"] == sum(r.packets_ab + r.packets_ba for f in flows.values()
                                     for r in f)
    assert summary["Bytes"] == sum(r.bytes_ab + r.bytes_ba for f in flows.values() for r in f)
    metrics = await rest.metrics()
    messages = metrics[f'floe_ipfix_messages_total{{collector="{label}"}}']
    templates = metrics[f'floe_ipfix_template_sets_total{{collector="{label}"}}']
    assert messages == sum(e.packets for e in exporters.values())
    assert templates >= messages // 4  # FLOE_IPFIX_TEMPLATE_MESSAGES=3: every 4th message


async def test_a_collector_that_is_down_counts_as_loss_until_it_is_back(
    server: FloeServer, rest: Rest, collector_port: int
) -> None:
    """Nothing listens on the collector's port: every record is lost (ICMP port unreachable),
    in /nodes and /metrics. Then nfcapd starts there: the next records arrive, templates
    first, and read back exactly."""
    label = f"127.0.0.1:{collector_port}"
    series = f'floe_ipfix_records_lost_total{{collector="{label}",reason="refused"}}'
    before = (await rest.metrics())[series]
    down, back = ended_flows(400, seed=3, start=2000), ended_flows(150, seed=4, start=3000)
    key = await rest.dataplane_key("edge-down")
    async with uplink(server.grpc_port, key, "edge-down") as link:
        for start in range(0, len(down), 100):
            await link.send(down[start:start + 100])
        counts = await rest.wait_ipfix("edge-down", label, records=len(down))
        assert counts == {"exported": 0, "lost": len(down), "pending": 0}
        metrics = await rest.metrics()
        assert metrics[series] - before == len(down)
        assert metrics[f'floe_ipfix_collector_up{{collector="{label}"}}'] == 0

        with Nfcapd.start(collector_port) as collector:
            await link.send(back)
            counts = await rest.wait_ipfix("edge-down", label, records=len(down) + len(back))
            assert counts == {"exported": len(back), "lost": len(down), "pending": 0}
    assert Counter(collector.records()) == Counter(expected_row(r) for r in back)
    assert (await rest.metrics())[f'floe_ipfix_collector_up{{collector="{label}"}}'] == 1


async def test_a_reader_of_one_node_sees_collectors_numbered_not_their_addresses(
    server: FloeServer, rest: Rest, collector_port: int
) -> None:
    """Collector addresses are the operator's: a user whose dataplane:read holds on one node
    (an owner grant on node/<id>) sees that node's IPFIX counts under `collector-1`."""
    label = f"127.0.0.1:{collector_port}"
    key = await rest.dataplane_key("edge-limited")
    async with uplink(server.grpc_port, key, "edge-limited") as link:
        await link.send(ended_flows(5, seed=3, start=5000))
    headers = {"Authorization": f"Bearer {rest.token}"}
    created = await rest.client.post("/users", headers=headers, json={
        "email": "one-node@example.com", "password": "one-node-pass-1", "roles": []})
    assert created.status_code == 201, created.text
    user_id = created.json()["data"]["id"]
    granted = await rest.client.post(f"/users/{user_id}/grants", headers=headers, json={
        "role": "owner", "resource_type": "node", "resource_id": "edge-limited"})
    assert granted.status_code in (200, 201), granted.text
    login = await rest.client.post("/auth/login", json={"email": "one-node@example.com",
                                                        "password": "one-node-pass-1"})
    token = login.json()["data"]["access_token"]
    response = await rest.client.get("/nodes", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    nodes = response.json()["data"]
    assert [n["node_id"] for n in nodes] == ["edge-limited"]
    assert list(nodes[0]["ipfix"]["collectors"]) == ["collector-1"]
    assert label not in response.text
    assert label in (await rest.client.get("/nodes", headers=headers)).text  # the admin's view
