"""Schemathesis against a real `floe serve`: no 5xx, and every answer as the document says.

Every operation of /api/v2 and the probes (/api/v1 serves the very same views) gets
MAX_EXAMPLES generated requests that fit the document and MAX_EXAMPLES that do not
(derandomized, so a run is reproducible), plus, for routes with path ids, MAX_EXAMPLES valid
ones aimed at objects that exist (`Seeded`; random ids almost always miss). Each answer is
checked: no server error, a documented status, content type and headers, a body matching the
documented schema.

Who calls: routes that need a credential run as a disposable admin ("fuzzer") created for
the run; the public ones (/auth/*, ping, probes, docs) run anonymously. What the fuzzer must
not do to its own credential, so is never sent with it:
- POST /auth/logout would revoke the fuzzer's token family: it runs anonymously (public);
- POST /auth/refresh never sees the fuzzer's refresh token: anonymous too;
- PATCH /users/{the fuzzer's id} could deactivate it, change its roles or reset its password:
  those cases are rejected (every other id is fuzzed). DELETE /users/{its id} is sent: the
  server must refuse it (409 self_delete);
- POST /me/password needs the current password, which generated data does not guess;
- POST /me/logout-everywhere ends every session of the caller, the fuzzer's token included:
  it is not fuzzed (the authorization matrix calls it with a user of its own).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, reject, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.api.conftest import SERVER_ENV, login
from tests.support.server import FloeServer

MAX_EXAMPLES = 30  # per operation and pass; the two runs take ~40 s on this 2-core machine
REQUEST_TIMEOUT = 10.0

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: the first failure is reported
    suppress_health_check=list(HealthCheck),
)

FUZZER = ("fuzzer@localhost.local", "fuzzer-password-1")
TARGET = ("target@localhost.local", "target-password-1")


@dataclass(slots=True, frozen=True)
class Fuzzer:
    base_url: str
    token: str
    user_id: int
    seeded: dict[str, int]  # path parameter name -> the id of an object that exists

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[FloeServer]:
    with FloeServer.start(env={**SERVER_ENV, "REGISTRATION_ENABLED": "true"}) as started:
        yield started


def _post(server: FloeServer, headers: dict[str, str], path: str, body: dict[str, Any],
          method: str = "POST") -> dict[str, Any]:
    response = httpx.request(method, server.url(f"/api/v2{path}"), headers=headers, json=body,
                             timeout=10)
    assert response.status_code in (200, 201), (path, response.text)
    data: dict[str, Any] = response.json()["data"]
    return data


@pytest.fixture(scope="module")
def fuzzer(fuzz_server: FloeServer) -> Fuzzer:
    """A disposable admin, and one object of each kind a path can name (a target user with a
    grant, a custom role, a team holding a node with the target as member, an API key)."""
    admin = {"Authorization": f"Bearer {login(fuzz_server)}"}
    me = _post(fuzz_server, admin, "/users",
               {"email": FUZZER[0], "password": FUZZER[1], "roles": ["admin"]})
    target = _post(fuzz_server, admin, "/users",
                   {"email": TARGET[0], "password": TARGET[1], "roles": ["viewer"]})["id"]
    role = _post(fuzz_server, admin, "/roles",
                 {"name": "fuzz-role", "scopes": ["stats:read"], "level": "resource"})["id"]
    grant = _post(fuzz_server, admin, f"/users/{target}/grants",
                  {"role": "fuzz-role", "resource_type": "node", "resource_id": "node-a"})["id"]
    team = _post(fuzz_server, admin, "/teams", {"name": "fuzz-team"})["id"]
    _post(fuzz_server, admin, f"/teams/{team}/members/{target}", {"role": "team_viewer"}, "PUT")
    resource = _post(fuzz_server, admin, f"/teams/{team}/resources",
                     {"resource_type": "node", "resource_id": "node-a"})["id"]
    key = _post(fuzz_server, admin, "/clients", {"name": "fuzz-key", "scopes": ["stats:read"]})
    seeded = {"user_id": target, "role_id": role, "grant_id": grant, "team_id": team,
              "resource": resource, "key_id": key["id"]}
    return Fuzzer(fuzz_server.url(""), login(fuzz_server, *FUZZER), me["id"], seeded)


@pytest.fixture(scope="module")
def api_schema(fuzz_server: FloeServer, fuzzer: Fuzzer) -> Any:
    # After `fuzzer`: the anonymous run may exhaust the login throttle of 127.0.0.1.
    config = schemathesis.Config.from_dict({"request-timeout": REQUEST_TIMEOUT})
    return schemathesis.openapi.from_url(fuzz_server.url("/api/v2/openapi.json"), config=config)


@dataclass(slots=True)
class Run:
    """What a fuzz run saw: failed checks (with their reproduction), and the statuses each
    operation answered (so a run that only ever got 401s cannot pass for a good one)."""

    failures: list[str] = field(default_factory=list)
    statuses: dict[str, Counter[int]] = field(default_factory=dict)

    def report(self) -> str:
        return f"{len(self.failures)} failed:\n" + "\n\n".join(self.failures)


def _fuzz(
    schema: Any,
    select: Callable[[Any], bool],
    base_url: str,
    headers: dict[str, str] | None = None,
    skip: Callable[[Any], bool] = lambda case: False,
    seeded: dict[str, int] | None = None,
) -> Run:
    """Send generated cases of every selected operation, checking each answer."""
    run = Run()
    transport = {"base_url": base_url, "headers": headers}

    def send(case: Any) -> None:
        if skip(case):
            reject()
        response = case.call(base_url=base_url, headers=headers)
        run.statuses[case.operation.label][response.status_code] += 1
        case.validate_response(response, checks=CHECKS, headers=headers,
                               transport_kwargs=transport)

    operations = [result.ok() for result in schema.get_all_operations()]  # Err: bad document
    selected = [op for op in operations if not op.path.startswith("/api/v1/") and select(op)]
    # Deletions last and deepest first, so every other operation finds the seeded objects.
    def order(op: Any) -> tuple[bool, int, str]:
        return op.method.upper() == "DELETE", -op.path.count("/"), op.path

    for operation in sorted(selected, key=order):
        run.statuses[operation.label] = Counter()
        names = [p.name for p in operation.path_parameters]
        passes: list[tuple[str, Any]] = [
            (mode.value, operation.as_strategy(generation_mode=mode))
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        ]
        if seeded and names:
            fixed = {name: seeded[name] for name in names}
            passes.insert(0, ("seeded", operation.as_strategy(path_parameters=fixed)))
        for label, strategy in passes:
            test = FUZZ_SETTINGS(given(case=strategy)(send))
            try:
                test()
            except Unsatisfiable:
                assert label == "negative", operation.label  # nothing there to get wrong
            except (Exception, BaseExceptionGroup) as error:  # a failed check, with a repro
                run.failures.append(f"{operation.label} ({label}): {error}")
    assert run.statuses, "no operation selected"
    return run


def _is_public(operation: Any) -> bool:
    return bool(operation.definition.raw.get("security") == [])


def test_credentialed_operations(api_schema: Any, fuzzer: Fuzzer) -> None:
    def locks_out(case: Any) -> bool:
        """PATCH /users/{the fuzzer}: could deactivate it or change its password or roles."""
        return bool(case.operation.method.upper() == "PATCH"
                    and case.operation.path == "/api/v2/users/{user_id}"
                    and case.path_parameters.get("user_id") == fuzzer.user_id)

    def ends_own_token(op: Any) -> bool:
        """POST /me/logout-everywhere: every call ends the fuzzer's own sessions."""
        return bool(op.method.upper() == "POST" and op.path == "/api/v2/me/logout-everywhere")

    run = _fuzz(api_schema, lambda op: not _is_public(op) and not ends_own_token(op),
                fuzzer.base_url, fuzzer.headers, locks_out, fuzzer.seeded)
    assert not run.failures, run.report()
    # The credential worked all along, and the seeded pass reached real objects: every
    # operation answered something other than 401 and 404, most of them a success.
    # (The seeded key was rotated, so revoked, before DELETE /clients/{key_id} runs.)
    missed = [label for label, seen in run.statuses.items() if set(seen) <= {401, 404}
              and label != "DELETE /api/v2/clients/{key_id}"]
    assert not missed, (missed, run.statuses)
    succeeded = [label for label, seen in run.statuses.items() if any(s < 300 for s in seen)]
    assert len(succeeded) >= 0.8 * len(run.statuses), run.statuses


def test_public_operations(api_schema: Any, fuzzer: Fuzzer) -> None:
    run = _fuzz(api_schema, _is_public, fuzzer.base_url)
    assert not run.failures, run.report()
    assert set(run.statuses["GET /api/v2/ping"]) == {200}
    assert "POST /api/v2/auth/login" in run.statuses


def test_invalid_utf8_body_is_a_400(fuzz_server: FloeServer) -> None:
    for route in ("/api/v2/auth/confirm", "/api/v2/auth/login"):
        response = httpx.post(fuzz_server.url(route), content=b'{"token": "\xff"}',
                              headers={"Content-Type": "application/json"}, timeout=10)
        assert response.status_code == 400, (route, response.status_code)
