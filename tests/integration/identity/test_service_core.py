"""The identity service's shared plumbing on a real SQLite database: the unit-of-work helper
turns a unique-constraint race into 409 and drops cached scopes after the commit; audit rows
carry the acting principal."""

from __future__ import annotations

from typing import Any

import pytest
from quart import Quart

from app.api.envelope import ApiError
from app.db.errors import IntegrityError
from app.identity import IdentityService, get_identity
from app.identity._service_core import audit, audit_self
from app.identity.records import UserState, utcnow
from app.types import Principal


@pytest.fixture
def service(identity_app: Quart) -> IdentityService:
    return get_identity(identity_app)


def _insert_team_twice(dal: Any) -> None:
    """Skips the in-transaction name check, as a concurrent writer would."""
    for _ in range(2):
        dal.team.insert(name="race", description="", created_at=utcnow())


async def test_commit_maps_integrity_error_to_409_only_when_asked(
    service: IdentityService,
) -> None:
    with pytest.raises(ApiError) as raised:
        await service._commit(_insert_team_twice, conflict="A team with this name already exists")
    assert raised.value.status == 409
    assert raised.value.code == "conflict"
    assert raised.value.message == "A team with this name already exists"
    with pytest.raises(IntegrityError):
        await service._commit(_insert_team_twice)
    # Both units rolled back: no team was left behind.
    assert await service._commit(lambda dal: dal(dal.team.name == "race").count()) == 0


async def test_commit_forgets_cached_scopes_only_after_success(service: IdentityService) -> None:
    state = UserState(4242, "x@example.org", True, frozenset(), frozenset(), {}, "s")
    service.cache.users[4242] = state
    with pytest.raises(IntegrityError):
        await service._commit(_insert_team_twice, forget_user=4242)
    assert service.cache.users.get(4242) is state
    assert await service._commit(lambda dal: 7, forget_user=4242) == 7
    assert 4242 not in service.cache.users


async def test_audit_rows_name_the_actor(service: IdentityService) -> None:
    key = Principal("api_key", "client:9", frozenset(), client_id=9)
    user = Principal("user", "user:3", frozenset(), user_id=3)

    def work(dal: Any) -> list[tuple[Any, ...]]:
        audit(dal, "t_key", key, "10.0.0.1", "team:1", details={"a": 1})
        audit(dal, "t_user", user, "10.0.0.2", "role:x")
        audit(dal, "t_anon", None, "10.0.0.3", "client:2")
        audit_self(dal, "t_self", 5, "10.0.0.4", success=False)
        rows = dal(dal.audit_log.action.startswith("t_")).select(orderby=dal.audit_log.id)
        return [
            (r.action, r.actor_user_id, r.actor_client_id, r.target, r.ip, r.success, r.details)
            for r in rows
        ]

    assert await service._commit(work) == [
        ("t_key", None, 9, "team:1", "10.0.0.1", True, '{"a": 1}'),
        ("t_user", 3, None, "role:x", "10.0.0.2", True, "{}"),
        ("t_anon", None, None, "client:2", "10.0.0.3", True, "{}"),
        ("t_self", 5, None, "user:5", "10.0.0.4", False, "{}"),
    ]
