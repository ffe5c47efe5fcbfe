from __future__ import annotations

from quart import Quart

from tests.integration.identity.conftest import bearer, login


async def test_login_and_me(identity_app: Quart) -> None:
    tokens = await login(identity_app)
    assert tokens["token_type"] == "bearer"
    client = identity_app.test_client()
    response = await client.get("/api/v2/me", headers=bearer(tokens["access_token"]))
    body = await response.get_json()
    assert response.status_code == 200, body
    assert body["data"]["email"] == "admin@localhost.local"
    assert "users:admin" in body["data"]["scopes"]


async def test_openapi_documents_identity_bodies(identity_app: Quart) -> None:
    response = await identity_app.test_client().get("/api/v2/openapi.json")
    assert response.status_code == 200
    spec = await response.get_json()
    login_body = spec["paths"]["/api/v2/auth/login"]["post"]["requestBody"]
    assert "totp_code" in login_body["content"]["application/json"]["schema"]["properties"]
    create_user = spec["paths"]["/api/v2/users"]["post"]["requestBody"]["content"][
        "application/json"
    ]
    assert create_user["schema"]["properties"]["email"]["maxLength"] == 255
    assert create_user["schema"]["additionalProperties"] is False
    assert "/api/v2/clients/{key_id}/rotate" in spec["paths"]


async def test_v1_serves_the_same_resources(identity_app: Quart) -> None:
    tokens = await login(identity_app)
    response = await identity_app.test_client().get(
        "/api/v1/me", headers=bearer(tokens["access_token"])
    )
    body = await response.get_json()
    assert response.status_code == 200 and body["meta"]["version"] == 1
