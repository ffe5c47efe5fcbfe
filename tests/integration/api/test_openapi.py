"""The OpenAPI document a real `floe serve` answers: valid OpenAPI 3.1, and true to the routes
(responses, security, query parameters). Schemathesis checks the answers against it
(test_schemathesis.py); these tests pin what the document must say."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator, ValidationError
from openapi_spec_validator import OpenAPIV31SpecValidator

from tests.integration.api.conftest import login
from tests.support.server import FloeServer

METHODS = ("get", "put", "post", "delete", "patch")


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def params(operation: dict[str, Any], where: str = "query") -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in operation.get("parameters", []) if p["in"] == where}


def test_document_is_valid_openapi_31(document: dict[str, Any]) -> None:
    errors = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message[:200]}"
        for error in OpenAPIV31SpecValidator(document).iter_errors()
    ]
    assert not errors, f"{len(errors)} errors, first: {errors[:5]}"
    assert document["openapi"].startswith("3.1")


def test_operation_ids_are_unique(document: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


def test_every_operation_lists_its_real_responses(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert {"Envelope", "ErrorEnvelope"} <= set(schemas)
    for path, method, operation in operations(document):
        where = f"{method.upper()} {path}"
        responses = operation["responses"]
        assert responses, where
        assert any(code.startswith("2") for code in responses), where
        for code, response in responses.items():
            assert response["description"], (where, code)
            if int(code) >= 400 and path.startswith("/api/"):
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorEnvelope"}, (where, code)
        if path.startswith("/api/v2/") and path != "/api/v2/docs" and "openapi" not in path:
            success = next(r for c, r in responses.items() if c.startswith("2"))
            text = str(success["content"]["application/json"]["schema"])
            assert "#/components/schemas/Envelope" in text, where
        if "{" in path:
            assert "404" in responses, where
        if "requestBody" in operation:
            assert {"400", "413", "415", "422"} <= set(responses), where
        if operation["security"]:
            assert "401" in responses, where
            if operation["x-required-scopes"]["any_of"] or method != "get":
                assert "403" in responses, where  # a scope, or CSRF on a cookie write


def test_success_statuses_are_the_real_ones(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert "201" in paths["/api/v2/users"]["post"]["responses"]
    assert "200" not in paths["/api/v2/users"]["post"]["responses"]
    assert "202" in paths["/api/v2/auth/password-reset"]["post"]["responses"]
    assert "201" in paths["/api/v2/clients/{key_id}/rotate"]["post"]["responses"]
    assert "409" in paths["/api/v2/users"]["post"]["responses"]
    assert "409" in paths["/api/v2/users/{user_id}"]["delete"]["responses"]
    for route in ("/api/v2/auth/login", "/api/v2/auth/register", "/api/v2/auth/password-reset"):
        assert "429" in paths[route]["post"]["responses"], route
    readyz = paths["/readyz"]["get"]["responses"]
    assert {"200", "503"} <= set(readyz)
    assert "text/plain" in paths["/metrics"]["get"]["responses"]["200"]["content"]


def test_security_follows_the_access_marks(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {
        "type": "http", "scheme": "bearer", "description": schemes["bearer"]["description"]
    }
    assert schemes["session"]["type"] == "apiKey"
    assert (schemes["session"]["in"], schemes["session"]["name"]) == ("cookie", "floe_session")
    assert "X-CSRF-Token" in schemes["session"]["description"]
    for _, _, operation in operations(document):
        assert "security" in operation, operation["operationId"]
    paths = document["paths"]
    for public in ("/api/v2/ping", "/api/v2/auth/login", "/healthz", "/api/v2/openapi.json"):
        assert paths[public]["get" if "login" not in public else "post"]["security"] == []
    users = paths["/api/v2/users"]["get"]
    assert users["security"] == [{"bearer": ["users:read"]}, {"session": ["users:read"]}]
    assert users["x-required-scopes"]["any_of"] == ["users:read"]
    assert set(users["x-required-scopes"]["satisfied_by"]) == {
        "users:read", "users:write", "users:admin"}
    assert "users:read" in users["description"]
    me = paths["/api/v2/me"]["get"]
    assert me["security"] == [{"bearer": []}, {"session": []}]
    flows = paths["/api/v2/flows"]["get"]
    assert flows["x-required-scopes"]["per_node"] is True


def test_flows_documents_its_filters(document: dict[str, Any]) -> None:
    query = params(document["paths"]["/api/v2/flows"]["get"])
    assert set(query) == {"limit", "ip", "port", "proto", "node", "interface", "state",
                          "end_reason", "verdict"}
    assert set(query["verdict"]["schema"]["items"]["enum"]) == {"unknown", "forwarded",
                                                                 "dropped"}
    assert query["limit"]["schema"] == {
        "type": "integer", "minimum": 1, "maximum": 1000, "default": 100,
    } | {k: v for k, v in query["limit"]["schema"].items() if k == "title"}
    assert query["port"]["schema"]["maximum"] == 65535
    state = query["state"]
    assert state["schema"]["type"] == "array"
    assert {"new", "established", "closing", "closed"} <= set(state["schema"]["items"]["enum"])
    assert (state["style"], state["explode"]) == ("form", False)
    assert "tcp_rst" in query["end_reason"]["schema"]["items"]["enum"]
    assert "tcp" in str(query["proto"]["schema"])
    for parameter in query.values():
        assert not parameter.get("required"), parameter
        assert parameter.get("description"), parameter["name"]


def test_required_query_parameters_are_marked(document: dict[str, Any]) -> None:
    token = params(document["paths"]["/api/v2/auth/confirm"]["get"])["token"]
    assert token["required"] is True
    users = params(document["paths"]["/api/v2/users"]["get"])
    assert not users["limit"].get("required")
    # An absent parameter is "not sent", never null: no `null` branch in a query schema.
    assert "null" not in str(users["active"]["schema"])


def test_v1_operations_are_deprecated(document: dict[str, Any]) -> None:
    for path, _, operation in operations(document):
        assert operation.get("deprecated", False) is path.startswith("/api/v1/"), path
    v1 = document["paths"]["/api/v1/users"]["get"]["responses"]["200"]
    assert {"Deprecation", "Sunset", "Link"} <= set(v1["headers"])


def conforms(document: dict[str, Any], path: str, method: str, status: int,
             body: Any) -> None:
    """Validate `body` against the documented schema, its $refs resolved in the document."""
    pointer = "/".join(("#/paths", path.replace("/", "~1"), method, "responses", str(status),
                        "content/application~1json/schema"))
    Draft202012Validator({**document, "$ref": pointer}).validate(body)


def test_documented_data_schemas_match_real_answers(server: FloeServer,
                                                    document: dict[str, Any]) -> None:
    login_200 = document["paths"]["/api/v2/auth/login"]["post"]["responses"]["200"]
    assert "access_token" in str(login_200["content"]["application/json"]["schema"])
    url = server.url("/api/v2/auth/login")
    good = httpx.post(url, json={"email": "admin@localhost.local", "password": "admin123"},
                      timeout=10)
    conforms(document, "/api/v2/auth/login", "post", 200, good.json())
    bad = httpx.post(url, json={"email": "nobody@localhost.local", "password": "x"}, timeout=10)
    assert bad.status_code == 401
    conforms(document, "/api/v2/auth/login", "post", 401, bad.json())
    me = httpx.get(server.url("/api/v2/me"), timeout=10,
                   headers={"Authorization": f"Bearer {good.json()['data']['access_token']}"})
    conforms(document, "/api/v2/me", "get", 200, me.json())
    with pytest.raises(ValidationError):  # the schema does constrain `data`
        conforms(document, "/api/v2/me", "get", 200, {**me.json(), "data": {"kind": "robot"}})


def test_flows_filters_still_answer_422_naming_the_parameter(server: FloeServer) -> None:
    headers = {"Authorization": f"Bearer {login(server)}"}
    url = server.url("/api/v2/flows")
    for name, value in (("ip", "nope"), ("limit", "0"), ("limit", "x"), ("port", "70000"),
                        ("proto", "bogus"), ("state", "open"), ("end_reason", "timeout")):
        response = httpx.get(url, params={name: value}, headers=headers, timeout=10)
        assert response.status_code == 422, (name, value)
        error = response.json()["error"]
        assert error["details"] == {"param": name}, error
    ok = httpx.get(url, params={"limit": "", "ip": "", "state": "new,CLOSED", "proto": "TCP",
                                "unknown": "x"}, headers=headers, timeout=10)
    assert ok.status_code == 200, ok.text
    assert ok.json()["meta"]["limit"] == 100


def test_docs_page_renders_from_the_document(server: FloeServer) -> None:
    page = httpx.get(server.url("/api/v2/docs"), timeout=10)
    assert page.status_code == 200 and "/api/v2/openapi.json" in page.text
