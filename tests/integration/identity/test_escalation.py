"""Issue 10, privilege escalation, driven against a real `floe serve` as an attacker would.

Each test is the review's reproduction, sent over real sockets (REST with httpx, the uplink
with a real gRPC client), with the attacker's requests fired in parallel, then checked from
the victim's side: the admin still logs in with its password and keeps its roles, the broad
key still works, nothing the revoked key sent after its revocation was acknowledged.
Items: 1 (users:write over an admin), 2 (a narrow key over its owner's broad key), 3 (any
dataplane:write principal claiming any node), 8 (a revoked key's open uplink), 9 (a
deactivated user's API key).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import httpx
import pytest

from app.ingest.service import HELLO_WAIT, MAX_HELLO_WAITS, REAUTH_SECONDS
from floe.dataplane.v1 import uplink_pb2 as pb
from floe.dataplane.v1 import uplink_pb2_grpc
from tests.support.server import FloeServer

ADMIN = ("admin@localhost.local", "admin123")
PASSWORD = "attacker-password-1"

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def server() -> Iterator[FloeServer]:
    env = {"FLOE_ENV": "development", "FLOE_ARGON2_PROFILE": "fast", "HTTP3_ENABLED": "false",
           "FLOE_SESSION_COOKIE_SECURE": "false"}
    with FloeServer.start(env=env) as running:
        yield running


@pytest.fixture
async def http(server: FloeServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url("/api/v2"), timeout=10.0) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def call(http: httpx.AsyncClient, method: str, path: str, token: str,
               body: Any = None) -> tuple[int, Any]:
    response = await http.request(method, path, headers=bearer(token), json=body)
    return response.status_code, response.json()


async def login(http: httpx.AsyncClient, email: str, password: str) -> str:
    response = await http.post("/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    token: str = response.json()["data"]["access_token"]
    return token


async def new_user(http: httpx.AsyncClient, admin: str, email: str, roles: list[str]) -> int:
    status, body = await call(http, "POST", "/users", admin,
                              {"email": email, "password": PASSWORD, "roles": roles})
    assert status == 201, body
    user_id: int = body["data"]["id"]
    return user_id


async def new_role(http: httpx.AsyncClient, admin: str, name: str, scopes: list[str]) -> None:
    status, body = await call(http, "POST", "/roles", admin, {"name": name, "scopes": scopes})
    assert status == 201, body


async def new_key(http: httpx.AsyncClient, token: str, scopes: list[str],
                  node_id: str | None = None) -> tuple[int, str]:
    body: dict[str, Any] = {"name": f"k-{uuid.uuid4().hex[:6]}", "scopes": scopes}
    if node_id is not None:
        body["node_id"] = node_id
    status, answer = await call(http, "POST", "/clients", token, body)
    assert status == 201, answer
    return answer["data"]["id"], answer["data"]["api_key"]


def refused(results: list[tuple[int, Any]], code: str) -> bool:
    return all(status == 403 and body["error"]["code"] == code for status, body in results)


async def test_a_users_write_holder_cannot_take_over_an_admin(http: httpx.AsyncClient) -> None:
    """Item 1: password, roles, deactivation, grants, deletion and team membership of a user
    holding more than the caller are all out of its reach — in parallel, as the review did."""
    admin = await login(http, *ADMIN)
    _, me = await call(http, "GET", "/me", admin)
    admin_id = me["data"]["user_id"]
    await new_role(http, admin, "user-managers", ["users:read", "users:write", "users:admin"])
    await new_user(http, admin, "mallory@example.com", ["user-managers"])
    plain = await new_user(http, admin, "plain@example.com", [])
    mallory = await login(http, "mallory@example.com", PASSWORD)

    attacks = [
        ("PATCH", f"/users/{admin_id}", {"password": "pwned-password"}),
        ("PATCH", f"/users/{admin_id}", {"roles": []}),
        ("PATCH", f"/users/{admin_id}", {"roles": ["user-managers"]}),
        ("PATCH", f"/users/{admin_id}", {"active": False}),
        ("PATCH", f"/users/{admin_id}", {"display_name": "owned"}),
        ("POST", f"/users/{admin_id}/grants",
         {"role": "resource_viewer", "resource_type": "node", "resource_id": "edge-1"}),
        ("DELETE", f"/users/{admin_id}", None),
    ]
    results = await asyncio.gather(*(call(http, m, p, mallory, b) for m, p, b in attacks))
    assert refused(list(results), "target_outranks_caller"), results
    assert all("users:admin" not in r[1]["error"]["details"]["not_held"] for r in results)

    # the victim's side: same password, same roles, still active, nothing renamed
    admin_again = await login(http, *ADMIN)
    status, victim = await call(http, "GET", f"/users/{admin_id}", admin_again)
    assert status == 200
    assert (victim["data"]["roles"], victim["data"]["active"]) == (["admin"], True)
    assert victim["data"]["display_name"] != "owned"
    status, grants = await call(http, "GET", f"/users/{admin_id}/grants", admin_again)
    assert (status, grants["data"]) == (200, [])

    # …while a user holding nothing more than mallory is hers to manage, within her scopes
    status, body = await call(http, "PATCH", f"/users/{plain}", mallory,
                              {"display_name": "managed", "active": False})
    assert status == 200, body
    status, body = await call(http, "PATCH", f"/users/{plain}", mallory, {"roles": ["admin"]})
    assert (status, body["error"]["code"]) == (403, "scope_escalation")


async def test_team_membership_follows_the_same_rule(http: httpx.AsyncClient) -> None:
    admin = await login(http, *ADMIN)
    _, me = await call(http, "GET", "/me", admin)
    admin_id = me["data"]["user_id"]
    status, team = await call(http, "POST", "/teams", admin, {"name": "ops-esc"})
    assert status == 201, team
    team_id = team["data"]["id"]
    status, _ = await call(http, "PUT", f"/teams/{team_id}/members/{admin_id}", admin,
                           {"role": "team_viewer"})
    assert status == 200
    await new_role(http, admin, "team-managers", ["teams:read", "teams:write", "teams:admin"])
    await new_user(http, admin, "trudy@example.com", ["team-managers"])
    trudy = await login(http, "trudy@example.com", PASSWORD)
    results = await asyncio.gather(
        call(http, "DELETE", f"/teams/{team_id}/members/{admin_id}", trudy),
        call(http, "PUT", f"/teams/{team_id}/members/{admin_id}", trudy, {"role": "team_admin"}),
    )
    assert refused(list(results), "target_outranks_caller"), results
    status, body = await call(http, "GET", f"/teams/{team_id}", admin)
    assert [m["user_id"] for m in body["data"]["members"]] == [admin_id]


async def test_a_narrow_key_cannot_reach_its_owners_broader_key(http: httpx.AsyncClient) -> None:
    """Item 2: rotate (which would hand over the broad key's new secret), revoke, read or list
    a broader key of the same owner — all refused; the broad key keeps working."""
    admin = await login(http, *ADMIN)
    broad_id, broad = await new_key(http, admin, ["rules:write", "clients:write"])
    narrow_id, narrow = await new_key(http, admin, ["clients:write"])

    results = await asyncio.gather(
        call(http, "POST", f"/clients/{broad_id}/rotate", narrow),
        call(http, "DELETE", f"/clients/{broad_id}", narrow),
        call(http, "GET", f"/clients/{broad_id}", narrow),
    )
    assert refused(list(results), "target_outranks_caller"), results
    assert all(r[1]["error"]["details"]["not_held"] == ["rules:write"] for r in results)
    assert all("api_key" not in r[1].get("data", {}) for r in results)

    status, listing = await call(http, "GET", "/clients", narrow)
    assert status == 200
    assert [k["id"] for k in listing["data"]] == [narrow_id]
    assert listing["meta"]["total"] == 1

    status, body = await call(http, "PUT", "/rules", broad,
                              {"default_action": "allow", "rules": []})
    assert status == 200, body  # the broad key was neither rotated nor revoked
    status, body = await call(http, "POST", f"/clients/{narrow_id}/rotate", narrow)
    assert status == 201, body  # a key may rotate itself: it covers itself


async def test_a_deactivated_users_key_stops_with_its_owner(http: httpx.AsyncClient) -> None:
    """Item 9: GET /me (which needs no scope) with the key of a deactivated user is a 401."""
    admin = await login(http, *ADMIN)
    bob_id = await new_user(http, admin, "bob@example.com", ["maintainer"])
    bob = await login(http, "bob@example.com", PASSWORD)
    _, key = await new_key(http, bob, ["stats:read"])
    assert (await call(http, "GET", "/me", key))[0] == 200

    assert (await call(http, "PATCH", f"/users/{bob_id}", admin, {"active": False}))[0] == 200
    status, body = await call(http, "GET", "/me", key)
    assert (status, body["error"]["code"]) == (401, "invalid_token")
    assert (await call(http, "GET", "/stats/summary", key))[0] == 401

    assert (await call(http, "PATCH", f"/users/{bob_id}", admin, {"active": True}))[0] == 200
    assert (await call(http, "GET", "/me", key))[0] == 200


# --- the uplink (items 3 and 8) --------------------------------------------------------------


def hello(node: str) -> Any:
    return pb.UplinkMessage(hello=pb.Hello(node_id=node, instance_id=uuid.uuid4().hex))


def batch(seq: int) -> Any:
    snapshot = pb.CounterSnapshot(interface="veth0", counter_epoch="e1",
                                  values={"packets": seq}, taken_unix_ns=time.time_ns())
    return pb.UplinkMessage(batch=pb.Batch(seq=seq, counters=[snapshot]))


async def next_of(stream: Any, kind: str) -> Any:
    """The next downlink message of `kind` (rule sets and config may come first)."""
    while True:
        message = await asyncio.wait_for(stream.read(), 10.0)
        assert message is not grpc.aio.EOF
        if message.WhichOneof("body") == kind:
            return message


async def refused_with(stream: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await asyncio.wait_for(next_of(stream, "ack"), 10.0)
    return caught.value


async def test_only_a_key_bound_to_the_node_opens_its_uplink(
    server: FloeServer, http: httpx.AsyncClient
) -> None:
    """Item 3: a dataplane key names its node; it cannot claim another, and no user login —
    not a maintainer's, not an admin's — opens an uplink at all."""
    admin = await login(http, *ADMIN)
    status, body = await call(http, "POST", "/clients", admin,
                              {"name": "unbound", "scopes": ["dataplane:write"]})
    assert (status, body["error"]["code"]) == (422, "node_id_required")
    _, edge_key = await new_key(http, admin, ["dataplane:write"], node_id="edge-1")
    _, fleet_key = await new_key(http, admin, ["dataplane:write"], node_id="fleet-*")
    await new_user(http, admin, "maint@example.com", ["maintainer"])
    maintainer = await login(http, "maint@example.com", PASSWORD)

    async def connect(token: str, node: str) -> tuple[grpc.StatusCode | None, str]:
        target = f"127.0.0.1:{server.grpc_port}"
        async with grpc.aio.insecure_channel(target) as channel:
            stream = uplink_pb2_grpc.UplinkStub(channel).Connect(
                metadata=(("authorization", f"Bearer {token}"),))
            try:
                await stream.write(hello(node))
                await next_of(stream, "welcome")
            except grpc.aio.AioRpcError as error:
                return error.code(), error.details() or ""
            stream.cancel()
            return None, ""

    outcomes = await asyncio.gather(
        connect(edge_key, "edge-2"),
        connect(fleet_key, "edge-1"),
        connect(maintainer, "edge-1"),
        connect(admin, "edge-1"),
        connect(edge_key, "edge-1"),
        connect(fleet_key, "fleet-7"),
    )
    denied = grpc.StatusCode.PERMISSION_DENIED
    assert outcomes[0] == (denied, "The API key may speak for node 'edge-1', not 'edge-2'")
    assert outcomes[1][0] == denied and "'fleet-*'" in outcomes[1][1]
    assert outcomes[2][0] == denied and "not a user login" in outcomes[2][1]
    assert outcomes[3][0] == denied and "not a user login" in outcomes[3][1]
    assert outcomes[4:] == [(None, ""), (None, "")]
    _, nodes = await call(http, "GET", "/nodes", admin)
    assert {"edge-2", "fleet-*"}.isdisjoint(n["node_id"] for n in nodes["data"])


async def test_refused_streams_held_for_their_hello_are_bounded(
    server: FloeServer, http: httpx.AsyncClient
) -> None:
    """A login that may not connect opens MAX_HELLO_WAITS + 16 uplink streams and never sends
    a Hello. Each is refused; at most MAX_HELLO_WAITS are held for the Hello wait (2 s), the
    rest are refused at once, so a caller cannot hold streams open by opening more."""
    admin = await login(http, *ADMIN)
    extra = 16
    started = time.monotonic()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = uplink_pb2_grpc.UplinkStub(channel)

        async def open_silent() -> tuple[grpc.StatusCode, float]:
            stream = stub.Connect(metadata=(("authorization", f"Bearer {admin}"),))
            error = await refused_with(stream)
            return error.code(), time.monotonic() - started

        outcomes = await asyncio.gather(*(open_silent() for _ in range(MAX_HELLO_WAITS + extra)))
    assert {code for code, _ in outcomes} == {grpc.StatusCode.PERMISSION_DENIED}
    at_once = sorted(seconds for _, seconds in outcomes)[:extra]
    assert at_once[-1] < HELLO_WAIT / 2, at_once  # not held for the wait
    assert max(seconds for _, seconds in outcomes) < HELLO_WAIT + 3


async def test_a_revoked_key_loses_its_open_uplink(
    server: FloeServer, http: httpx.AsyncClient
) -> None:
    """Item 8: after DELETE /clients/{id}, the open stream acknowledges nothing more: the next
    batch ends it with UNAUTHENTICATED; an idle stream ends within REAUTH_SECONDS."""
    admin = await login(http, *ADMIN)
    busy_id, busy_key = await new_key(http, admin, ["dataplane:write"], node_id="revoke-busy")
    idle_id, idle_key = await new_key(http, admin, ["dataplane:write"], node_id="revoke-idle")
    target = f"127.0.0.1:{server.grpc_port}"
    async with grpc.aio.insecure_channel(target) as channel:
        stub = uplink_pb2_grpc.UplinkStub(channel)
        busy = stub.Connect(metadata=(("authorization", f"Bearer {busy_key}"),))
        idle = stub.Connect(metadata=(("authorization", f"Bearer {idle_key}"),))
        await busy.write(hello("revoke-busy"))
        await idle.write(hello("revoke-idle"))
        await busy.write(batch(1))
        assert (await next_of(busy, "ack")).ack.seq == 1
        await next_of(idle, "welcome")

        for key_id in (busy_id, idle_id):
            assert (await call(http, "DELETE", f"/clients/{key_id}", admin))[0] == 200
        revoked_at = time.monotonic()
        await busy.write(batch(2))
        error = await refused_with(busy)
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        error = await refused_with(idle)
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert time.monotonic() - revoked_at < REAUTH_SECONDS + 3

    _, nodes = await call(http, "GET", "/nodes", admin)
    by_id = {n["node_id"]: n for n in nodes["data"]}
    assert by_id["revoke-busy"]["last_applied_seq"] == 1  # batch 2 was never applied
    assert not by_id["revoke-busy"]["connected"] and not by_id["revoke-idle"]["connected"]


async def test_a_forged_cookie_logout_is_refused(server: FloeServer) -> None:
    """Item 18: a cross-site form can make the browser send the session cookie to
    /auth/logout; without the CSRF token (which a foreign page cannot read) nothing ends."""
    async with httpx.AsyncClient(base_url=server.url("/api/v2"), timeout=10.0) as browser:
        response = await browser.post("/auth/login", json={
            "email": ADMIN[0], "password": ADMIN[1], "session": True})
        assert response.status_code == 200
        csrf = browser.cookies["floe_csrf"]
        forged = await browser.post("/auth/logout", json={},
                                    headers={"Origin": "https://evil.example"})
        assert (forged.status_code, forged.json()["error"]["code"]) == (403, "csrf_failed")
        assert (await browser.get("/me")).json()["data"]["kind"] == "session"  # still logged in
        session = browser.cookies["floe_session"]
        response = await browser.post("/auth/logout", json={}, headers={"X-CSRF-Token": csrf})
        assert response.status_code == 200
    async with httpx.AsyncClient(base_url=server.url("/api/v2"), timeout=10.0) as replay:
        response = await replay.get("/me", headers={"Cookie": f"floe_session={session}"})
        assert response.status_code == 401  # the old cookie value is dead


async def test_a_node_bound_key_cannot_mint_or_rotate_a_wider_key(
        http: httpx.AsyncClient) -> None:
    """Security review: a dataplane key that may also manage keys stays within its node."""
    admin = await login(http, *ADMIN)
    _, bound = await new_key(http, admin, ["dataplane:write", "clients:write"], node_id="edge-b")
    wide_id, _ = await new_key(http, admin, ["dataplane:write"], node_id="*")
    status, body = await call(http, "POST", "/clients", bound, {
        "name": "wider", "scopes": ["dataplane:write"], "node_id": "*"})
    assert (status, body["error"]["code"]) == (403, "binding_escalation")
    status, body = await call(http, "POST", f"/clients/{wide_id}/rotate", bound)
    assert (status, body["error"]["code"]) == (403, "binding_escalation")
    status, body = await call(http, "POST", "/clients", bound, {
        "name": "same", "scopes": ["dataplane:write"], "node_id": "edge-b"})
    assert status == 201, body  # within its own binding: fine
