"""Resource grants on `node/<id>`: a user without a global role sees exactly the granted nodes
in `/nodes`, `/stats/summary`, `/flows` and the `/stream` stats, nothing of the others, and
no other resource."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from quart import Quart

from app.config import Settings
from app.factory import create_app
from app.ingest import _publish, get_state
from floe.dataplane.v1 import uplink_pb2 as pb
from tests.integration.identity.conftest import FAST, bearer, login

EDGE = {"edge-1": ("10.1.0.1", 100), "edge-2": ("10.2.0.1", 200)}  # host, packets


@pytest.fixture
async def identity_app(make_settings: Callable[..., Settings],
                       db_env: dict[str, str]) -> AsyncIterator[Quart]:
    """The suite's app, on each of SQLite, PostgreSQL and MariaDB: node scopes come from
    joins whose matching (collations) differs between them."""
    application = create_app(make_settings(**db_env, **FAST))
    async with application.test_app():
        yield application


def _v4(text: str) -> bytes:
    return b"\0" * 10 + b"\xff\xff" + ipaddress.IPv4Address(text).packed


def _populate(app: Quart) -> None:
    """Two dataplanes, one interface and one flow each, as the uplink would leave them."""
    state = get_state(app)
    for node_id, (host, packets) in EDGE.items():
        state.node(node_id).connected = True
        state.interface(node_id, "eth0").apply_snapshot(
            f"epoch-{node_id}", {"packets": packets, "bytes": packets * 100, "passed": packets}, 1)
        record = pb.FlowRecord(addr_a=_v4(host), addr_b=_v4("192.0.2.1"), port_a=4000,
                               port_b=53, proto=17, interface="eth0", packets_ab=packets,
                               bytes_ab=packets * 100, first_seen_unix_ns=1, last_seen_unix_ns=2)
        state.apply_flow(node_id, record, "eth0", "new", "none")


async def _get(app: Quart, path: str, headers: dict[str, str]) -> tuple[int, Any]:
    response = await app.test_client().get(path, headers=headers)
    return response.status_code, await response.get_json()


async def _seen(app: Quart, headers: dict[str, str]) -> dict[str, Any]:
    """What the caller sees of the dataplanes, from each of the three views."""
    status, nodes = await _get(app, "/api/v2/nodes", headers)
    assert status == 200, nodes
    status, summary = await _get(app, "/api/v2/stats/summary", headers)
    assert status == 200, summary
    status, flows = await _get(app, "/api/v2/flows?limit=100", headers)
    assert status == 200, flows
    data = summary["data"]
    return {
        "nodes": [n["node_id"] for n in nodes["data"]],
        "nodes_meta": (nodes["meta"]["count"], nodes["meta"]["connected"]),
        "interfaces": [i["node_id"] for i in data["interfaces"]],
        "packets": data["totals"]["packets"],
        "known": (data["nodes"]["known"], data["nodes"]["connected"]),
        "tracked": data["flows"]["tracked"],
        "talkers": {t["host"] for t in data["top_talkers"]} - {"192.0.2.1"},
        "flows": sorted(f["node_id"] for f in flows["data"]),
    }


def _only(*nodes: str) -> dict[str, Any]:
    return {
        "nodes": list(nodes),
        "nodes_meta": (len(nodes), len(nodes)),
        "interfaces": list(nodes),
        "packets": sum(EDGE[n][1] for n in nodes),
        "known": (len(nodes), len(nodes)),
        "tracked": len(nodes),
        "talkers": {EDGE[n][0] for n in nodes},
        "flows": sorted(nodes),
    }


async def test_node_grants_limit_every_dataplane_view(identity_app: Quart) -> None:
    client = identity_app.test_client()
    admin = bearer((await login(identity_app))["access_token"])
    response = await client.post("/api/v2/users", headers=admin, json={
        "email": "edge-ops@example.com", "password": "password-1", "roles": []})
    assert response.status_code == 201
    user_id = (await response.get_json())["data"]["id"]
    user = bearer((await login(identity_app, "edge-ops@example.com", "password-1"))["access_token"])
    _populate(identity_app)

    # No global role and no grant: every dataplane view is refused.
    for path in ("/api/v2/nodes", "/api/v2/stats/summary", "/api/v2/flows"):
        status, body = await _get(identity_app, path, user)
        assert (status, body["error"]["code"]) == (403, "insufficient_scope"), path

    async def grant(role: str, node: str) -> int:
        response = await client.post(f"/api/v2/users/{user_id}/grants", headers=admin, json={
            "role": role, "resource_type": "node", "resource_id": node})
        assert response.status_code == 201, await response.get_json()
        grant_id: int = (await response.get_json())["data"]["id"]
        return grant_id

    # Only "node" grants exist, spelt exactly: MariaDB would match "Node" case-insensitively.
    for kind in ("Node", "nodes", "team", ""):
        response = await client.post(f"/api/v2/users/{user_id}/grants", headers=admin, json={
            "role": "resource_viewer", "resource_type": kind, "resource_id": "edge-1"})
        assert response.status_code == 422, kind
    first = await grant("resource_viewer", "edge-1")  # the same token sees it at once
    assert await _seen(identity_app, user) == _only("edge-1")
    # A node grant opens the dataplane views only, never another resource.
    for path in ("/api/v2/rules", "/api/v2/users", "/api/v2/roles"):
        status, _ = await _get(identity_app, path, user)
        assert status == 403, path

    await grant("editor", "edge-2")
    assert await _seen(identity_app, user) == _only("edge-1", "edge-2")

    response = await client.delete(f"/api/v2/users/{user_id}/grants/{first}", headers=admin)
    assert response.status_code == 200
    assert await _seen(identity_app, user) == _only("edge-2")

    # A grant on a node that does not report (yet) shows nothing, and is not an error.
    await grant("resource_viewer", "edge-9")
    assert await _seen(identity_app, user) == _only("edge-2")

    # A global role sees every node, whatever its grants say.
    assert await _seen(identity_app, admin) == _only("edge-1", "edge-2")
    response = await client.patch(f"/api/v2/users/{user_id}", headers=admin,
                                  json={"roles": ["viewer"]})
    assert response.status_code == 200, await response.get_json()
    assert await _seen(identity_app, user) == _only("edge-1", "edge-2")


async def _stats_message(app: Quart, token: str) -> dict[str, Any]:
    """The next `stats` message the caller's /stream delivers (published on demand)."""
    client = app.test_client()
    async with client.websocket(f"/api/v2/stream?access_token={token}") as ws:
        await asyncio.wait_for(ws.receive(), 3)  # subscribed once a heartbeat arrives
        _publish(app, get_state(app))
        for _ in range(10):
            message: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.receive(), 3))
            if message["type"] == "stats":
                return message
    raise AssertionError("no stats message")


async def test_stream_carries_only_the_granted_nodes(identity_app: Quart) -> None:
    client = identity_app.test_client()
    tokens = await login(identity_app)
    admin = bearer(tokens["access_token"])
    response = await client.post("/api/v2/users", headers=admin, json={
        "email": "edge-watch@example.com", "password": "password-1", "roles": []})
    user_id = (await response.get_json())["data"]["id"]
    # A node id with the characters a topic could trip on: it must stay one node.
    tricky = 'edge-1", "edge-1/x,edge-2'
    for node in ("edge-2", tricky):
        response = await client.post(f"/api/v2/users/{user_id}/grants", headers=admin, json={
            "role": "resource_viewer", "resource_type": "node", "resource_id": node})
        assert response.status_code == 201
    _populate(identity_app)
    user = (await login(identity_app, "edge-watch@example.com", "password-1"))["access_token"]

    seen = await _stats_message(identity_app, user)
    assert [i["node_id"] for i in seen["data"]["interfaces"]] == ["edge-2"]
    assert seen["data"]["totals"]["packets"] == EDGE["edge-2"][1]
    assert {t["host"] for t in seen["top_talkers"]} == {EDGE["edge-2"][0], "192.0.2.1"}

    everything = await _stats_message(identity_app, tokens["access_token"])
    assert [i["node_id"] for i in everything["data"]["interfaces"]] == ["edge-1", "edge-2"]
    assert everything["data"]["totals"]["packets"] == EDGE["edge-1"][1] + EDGE["edge-2"][1]


async def test_a_team_holding_a_node_gives_its_members_their_team_role_there(
        identity_app: Quart) -> None:
    client = identity_app.test_client()
    admin = bearer((await login(identity_app))["access_token"])

    async def new_user(email: str, roles: list[str]) -> tuple[int, dict[str, str]]:
        response = await client.post("/api/v2/users", headers=admin, json={
            "email": email, "password": "password-1", "roles": roles})
        assert response.status_code == 201, await response.get_json()
        token = (await login(identity_app, email, "password-1"))["access_token"]
        return (await response.get_json())["data"]["id"], bearer(token)

    member_id, member = await new_user("member@example.com", [])
    _populate(identity_app)
    team = (await (await client.post("/api/v2/teams", headers=admin, json={
        "name": "edge-team"})).get_json())["data"]["id"]
    response = await client.put(f"/api/v2/teams/{team}/members/{member_id}", headers=admin,
                                json={"role": "team_viewer"})
    assert response.status_code == 200
    status, _ = await _get(identity_app, "/api/v2/stats/summary", member)
    assert status == 403  # a team that holds nothing gives nothing

    async def add(node: str, headers: dict[str, str] = admin) -> tuple[int, Any]:
        response = await client.post(f"/api/v2/teams/{team}/resources", headers=headers,
                                     json={"resource_type": "node", "resource_id": node})
        return response.status_code, await response.get_json()

    status, body = await add("edge-1")
    assert status == 201, body
    resource = body["data"]["id"]
    assert await _seen(identity_app, member) == _only("edge-1")
    assert (await add("edge-1"))[0] == 409
    for bad in ({"resource_type": "Node", "resource_id": "x"}, {"resource_type": "node"},
                {"resource_type": "node", "resource_id": ""}):
        response = await client.post(f"/api/v2/teams/{team}/resources", headers=admin, json=bad)
        assert response.status_code == 422, bad
    response = await client.post("/api/v2/teams/9999/resources", headers=admin,
                                 json={"resource_type": "node", "resource_id": "edge-1"})
    assert response.status_code == 404
    status, body = await _get(identity_app, f"/api/v2/teams/{team}/resources", admin)
    assert [(r["resource_type"], r["resource_id"]) for r in body["data"]] == [("node", "edge-1")]

    # No escalation through a team: a team manager without dataplane/stats scopes can neither
    # give the team a node nor hand a member a team role carrying scopes it lacks.
    response = await client.post("/api/v2/roles", headers=admin, json={
        "name": "team-manager", "scopes": ["teams:read", "teams:write"]})
    assert response.status_code == 201, await response.get_json()
    _, manager = await new_user("manager@example.com", ["team-manager"])
    status, body = await add("edge-2", manager)
    assert (status, body["error"]["code"]) == (403, "scope_escalation")
    # (the member already reads stats on edge-1 through the team, which the manager cannot:
    # the member outranks the manager before any role is looked at)
    response = await client.put(f"/api/v2/teams/{team}/members/{member_id}", headers=manager,
                                json={"role": "team_admin"})
    assert (response.status_code, (await response.get_json())["error"]["code"]) == (
        403, "target_outranks_caller")

    # Taking the node away, the membership away, or the team away each ends the access.
    response = await client.delete(f"/api/v2/teams/{team}/resources/{resource}", headers=admin)
    assert response.status_code == 200
    assert (await _get(identity_app, "/api/v2/flows", member))[0] == 403
    assert (await add("edge-2"))[0] == 201
    assert await _seen(identity_app, member) == _only("edge-2")
    response = await client.delete(f"/api/v2/teams/{team}/members/{member_id}", headers=admin)
    assert response.status_code == 200
    assert (await _get(identity_app, "/api/v2/nodes", member))[0] == 403
    response = await client.put(f"/api/v2/teams/{team}/members/{member_id}", headers=admin,
                                json={"role": "team_viewer"})
    assert response.status_code == 200
    assert await _seen(identity_app, member) == _only("edge-2")
    assert (await client.delete(f"/api/v2/teams/{team}", headers=admin)).status_code == 200
    assert (await _get(identity_app, "/api/v2/stats/summary", member))[0] == 403

    # The other order: a team that holds a node first, the member joining after.
    other = (await (await client.post("/api/v2/teams", headers=admin, json={
        "name": "late-team"})).get_json())["data"]["id"]
    response = await client.post(f"/api/v2/teams/{other}/resources", headers=admin,
                                 json={"resource_type": "node", "resource_id": "edge-1"})
    assert response.status_code == 201
    assert (await _get(identity_app, "/api/v2/nodes", member))[0] == 403
    response = await client.put(f"/api/v2/teams/{other}/members/{member_id}", headers=admin,
                                json={"role": "team_maintainer"})
    assert response.status_code == 200
    assert await _seen(identity_app, member) == _only("edge-1")


async def _closed_within(ws: Any, seconds: float) -> bool:
    """True once the server has closed the socket, False if heartbeats (every 0.1 s here)
    still arrive after `seconds`. Quart's test client either raises or goes silent on a close."""
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        try:
            await asyncio.wait_for(ws.receive(), 0.5)
        except TimeoutError:
            return True
        except Exception:  # the test client raises its own disconnect types
            return True
    return False


@pytest.fixture
async def live_app(make_settings: Callable[..., Settings],
                   sqlite_env: dict[str, str]) -> AsyncIterator[Quart]:
    """Heartbeats every 0.1 s, so a closed stream shows as silence within half a second."""
    application = create_app(make_settings(**sqlite_env, **FAST, WS_HEARTBEAT_INTERVAL="0.1"))
    async with application.test_app():
        yield application


@pytest.mark.parametrize("change", ["grant_removed", "user_deactivated", "grant_added"])
async def test_a_live_stream_ends_when_its_access_changes(
        live_app: Quart, monkeypatch: pytest.MonkeyPatch, change: str) -> None:
    from app.api import stream

    monkeypatch.setattr(stream, "REAUTH_SECONDS", 0.2)
    identity_app = live_app
    client = identity_app.test_client()
    admin = bearer((await login(identity_app))["access_token"])
    response = await client.post("/api/v2/users", headers=admin, json={
        "email": "live@example.com", "password": "password-1", "roles": []})
    user_id = (await response.get_json())["data"]["id"]
    response = await client.post(f"/api/v2/users/{user_id}/grants", headers=admin, json={
        "role": "resource_viewer", "resource_type": "node", "resource_id": "edge-1"})
    grant = (await response.get_json())["data"]["id"]
    token = (await login(identity_app, "live@example.com", "password-1"))["access_token"]
    async with client.websocket(f"/api/v2/stream?access_token={token}") as ws:
        await asyncio.wait_for(ws.receive(), 3)
        assert not await _closed_within(ws, 1.0)  # unchanged access: the stream goes on
        if change == "grant_removed":
            response = await client.delete(f"/api/v2/users/{user_id}/grants/{grant}",
                                           headers=admin)
        elif change == "user_deactivated":
            response = await client.patch(f"/api/v2/users/{user_id}", headers=admin,
                                          json={"active": False})
        else:  # a wider view needs a new subscription: reconnect
            response = await client.post(f"/api/v2/users/{user_id}/grants", headers=admin,
                                         json={"role": "resource_viewer",
                                               "resource_type": "node", "resource_id": "edge-2"})
        assert response.status_code in (200, 201), await response.get_json()
        assert await _closed_within(ws, 3.0)


async def test_a_live_stream_ends_when_only_its_flows_access_changes(
        live_app: Quart, monkeypatch: pytest.MonkeyPatch) -> None:
    """stats:read unchanged, flows:read taken away: the stream (and its flow subscriptions)
    ends too — the re-check compares both scopes' node sets (security review, 2026-12-07)."""
    from app.api import stream

    monkeypatch.setattr(stream, "REAUTH_SECONDS", 0.2)
    client = live_app.test_client()
    admin = bearer((await login(live_app))["access_token"])
    for name, scopes in (("stats-flows", ["stats:read", "flows:read"]),
                         ("stats-only", ["stats:read"])):
        response = await client.post("/api/v2/roles", headers=admin,
                                     json={"name": name, "scopes": scopes})
        assert response.status_code == 201
    response = await client.post("/api/v2/users", headers=admin, json={
        "email": "flows@example.com", "password": "password-1", "roles": ["stats-flows"]})
    user_id = (await response.get_json())["data"]["id"]
    token = (await login(live_app, "flows@example.com", "password-1"))["access_token"]
    async with client.websocket(f"/api/v2/stream?access_token={token}") as ws:
        await ws.send('{"type":"subscribe","id":"f","topic":"flows"}')
        await asyncio.wait_for(ws.receive(), 3)
        assert not await _closed_within(ws, 1.0)
        response = await client.patch(f"/api/v2/users/{user_id}", headers=admin,
                                      json={"roles": ["stats-only"]})
        assert response.status_code == 200
        assert await _closed_within(ws, 3.0)


@pytest.mark.parametrize("how", ["bearer", "cookie"])
async def test_a_live_stream_outlasts_a_database_hiccup_then_still_ends(
        live_app: Quart, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    """A re-check that needs the database while it is gone (closed under the app, as
    tests/integration/rules does) keeps the stream and asks again; the watcher must survive it, so a
    deactivation afterwards still ends the stream, for bearer and cookie sessions alike."""
    from app.api import stream
    from app.identity import get_identity

    monkeypatch.setattr(stream, "REAUTH_SECONDS", 0.2)
    client = live_app.test_client()
    admin = bearer((await login(live_app))["access_token"])
    response = await client.post("/api/v2/users", headers=admin, json={
        "email": "hiccup@example.com", "password": "password-1", "roles": ["viewer"]})
    user_id = (await response.get_json())["data"]["id"]
    watcher = live_app.test_client()
    if how == "cookie":
        response = await watcher.post("/api/v2/auth/login", json={
            "email": "hiccup@example.com", "password": "password-1", "session": True})
        assert response.status_code == 200
        headers: dict[str, str] = {"Origin": "http://localhost"}  # cookie upgrades: own origin
    else:
        headers = bearer((await login(live_app, "hiccup@example.com",
                                      "password-1"))["access_token"])
    identity = get_identity(live_app)
    async with watcher.websocket("/api/v2/stream", headers=headers) as ws:
        await asyncio.wait_for(ws.receive(), 3)
        identity.cache.users.clear()  # the next re-check must ask the database...
        await identity.db.close()  # ...which is gone: every unit of work is refused
        try:
            assert not await _closed_within(ws, 1.0)
        finally:
            await identity.db.start()
        response = await client.patch(f"/api/v2/users/{user_id}", headers=admin,
                                      json={"active": False})
        assert response.status_code == 200
        assert await _closed_within(ws, 3.0), "the stream outlived the deactivation"
