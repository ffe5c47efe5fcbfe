"""The identity policy as a table: every action by caller by target, no case missing.

Callers and targets are small, named capability sets chosen to sit on each side of the
rules (equal, strictly more, strictly less, incomparable, node-only). The expected outcome of
every (action, caller, target) cell is written out below; `test_the_table_is_complete` fails
when an action is added to the policy without its row here.
"""

from __future__ import annotations

from types import MappingProxyType

import pytest

from app.identity.policy import RULES, Action, Capabilities, decide
from app.identity.scopes import BUILTIN_ROLES, SCOPES
from app.types import Principal

_ROLE = {role.name: role.scopes for role in BUILTIN_ROLES}
ADMIN = SCOPES
USERS_WRITE = frozenset({"users:read", "users:write"})
CLIENTS_WRITE = frozenset({"clients:write"})
VIEWER = _ROLE["viewer"]
OWNER_ON_EDGE = {"edge-1": _ROLE["owner"]}

# name -> (global scopes, node scopes)
CALLERS: dict[str, tuple[frozenset[str], dict[str, frozenset[str]]]] = {
    "admin": (ADMIN, {}),
    "users_write": (USERS_WRITE, {}),  # the reviewer's custom role
    "clients_write": (CLIENTS_WRITE, {}),  # a narrow key
    "viewer": (VIEWER, {}),
    "edge_owner": (USERS_WRITE, OWNER_ON_EDGE),  # users:write + owner of node edge-1 only
}
TARGETS: dict[str, Capabilities] = {
    "admin": Capabilities(ADMIN),
    "same_as_users_write": Capabilities(USERS_WRITE),
    "nothing": Capabilities(),
    "viewer": Capabilities(VIEWER),
    "stats_on_edge": Capabilities.on_nodes({"stats:read"}, ["edge-1"]),
    "stats_on_other": Capabilities.on_nodes({"stats:read"}, ["edge-2"]),
}

# Outrank: may the caller act on the target? (rows: callers, columns: TARGETS order)
OUTRANK = {
    #               admin  same   nothing viewer edge   other
    "admin":         (1,    1,     1,      1,     1,     1),
    "users_write":   (0,    1,     1,      0,     0,     0),
    "clients_write": (0,    0,     1,      0,     0,     0),
    "viewer":        (0,    0,     1,      1,     1,     1),
    "edge_owner":    (0,    1,     1,      0,     1,     0),
}

# Grant: may the caller hand out the target's capabilities? Same sets, same answers: holding
# a capability is what both rules ask.
GRANT = OUTRANK

ROWS: dict[Action, str] = {
    Action.USER_CREATE: "grant",
    Action.USER_UPDATE: "outrank",
    Action.USER_SET_PASSWORD: "outrank",
    Action.USER_SET_ACTIVE: "outrank",
    Action.USER_SET_ROLES: "outrank+grant",
    Action.USER_DELETE: "outrank",
    Action.GRANT_ADD: "outrank+grant",
    Action.GRANT_REMOVE: "outrank",
    Action.ROLE_CREATE: "grant",
    Action.ROLE_UPDATE: "outrank+grant",
    Action.ROLE_DELETE: "outrank",
    Action.TEAM_SET_MEMBER: "outrank+grant",
    Action.TEAM_REMOVE_MEMBER: "outrank",
    Action.TEAM_ADD_RESOURCE: "grant",
    Action.TEAM_REMOVE_RESOURCE: "outrank",
    Action.TEAM_DELETE: "outrank",
    Action.KEY_CREATE: "grant",
    Action.KEY_READ: "owned+outrank",
    Action.KEY_ROTATE: "owned+outrank",
    Action.KEY_REVOKE: "owned+outrank",
    Action.NODE_CONNECT: "node",
}


def caller(name: str, *, kind: str = "user", user_id: int = 1,
           binding: str | None = None) -> Principal:
    scopes, nodes = CALLERS[name]
    return Principal(kind=kind, subject=name, scopes=scopes, user_id=user_id,  # type: ignore[arg-type]
                     node_scopes=MappingProxyType(nodes), node_binding=binding)


def test_the_table_is_complete() -> None:
    assert set(ROWS) == set(Action) == set(RULES)


CELLS = [
    (action, who, target)
    for action, kind in ROWS.items() if kind != "node"
    for who in CALLERS
    for target in TARGETS
]


@pytest.mark.parametrize(("action", "who", "target"), CELLS)
def test_every_cell(action: Action, who: str, target: str) -> None:
    kind = ROWS[action]
    column = list(TARGETS).index(target)
    can_outrank = bool(OUTRANK[who][column])
    can_grant = bool(GRANT[who][column])
    actor = caller(who)
    capabilities = TARGETS[target]

    if kind == "grant":
        decision = decide(actor, action, granting=capabilities)
        assert decision.allowed is can_grant
        if not can_grant:
            assert decision.code == "scope_escalation" and decision.not_held
    elif kind == "outrank":
        decision = decide(actor, action, target=capabilities)
        assert decision.allowed is can_outrank
        if not can_outrank:
            assert decision.code == "target_outranks_caller" and decision.not_held
    elif kind == "outrank+grant":
        # the target as it is, handing it nothing more: only outrank matters
        assert decide(actor, action, target=capabilities,
                      granting=Capabilities()).allowed is can_outrank
        # a target the caller outranks (nothing), handed the capabilities: only grant matters
        assert decide(actor, action, target=Capabilities(),
                      granting=capabilities).allowed is can_grant
        both = decide(actor, action, target=capabilities, granting=capabilities)
        assert both.allowed is (can_outrank and can_grant)
        if not can_outrank:  # the target is looked at first
            assert both.code == "target_outranks_caller"
    else:
        assert kind == "owned+outrank"
        own = decide(actor, action, target=capabilities, owner_user_id=actor.user_id)
        assert own.allowed is can_outrank
        other = decide(actor, action, target=capabilities, owner_user_id=99)
        # someone else's key: only clients:admin reaches it at all
        assert other.allowed is (can_outrank and actor.has("clients:admin"))
        if not actor.has("clients:admin"):
            assert other.code == "not_owner"
        ownerless = decide(actor, action, target=capabilities, owner_user_id=None)
        assert ownerless.allowed is other.allowed


@pytest.mark.parametrize("action", list(Action))
def test_the_system_itself_is_always_allowed(action: Action) -> None:
    everything = Capabilities(ADMIN, {"n": ADMIN})
    assert decide(None, action, target=everything, granting=everything, node="n").allowed


def test_a_key_acting_through_its_owner_is_only_as_strong_as_the_key() -> None:
    """Item 2 of issue 10: a clients:write key of an admin cannot touch the admin's broader key."""
    narrow = Principal(kind="api_key", subject="client:2", scopes=CLIENTS_WRITE, user_id=1,
                       client_id=2)
    broad_key = Capabilities(frozenset({"rules:write", "clients:write"}))
    for action in (Action.KEY_READ, Action.KEY_ROTATE, Action.KEY_REVOKE):
        decision = decide(narrow, action, target=broad_key, owner_user_id=1)
        assert (decision.allowed, decision.code, decision.not_held) == (
            False, "target_outranks_caller", ("rules:write",))
        assert decide(narrow, action, target=Capabilities(CLIENTS_WRITE), owner_user_id=1).allowed


@pytest.mark.parametrize(
    ("kind", "scopes", "binding", "node", "allowed", "code"),
    [
        ("api_key", {"dataplane:write"}, "edge-1", "edge-1", True, ""),
        ("api_key", {"dataplane:write"}, "edge-1", None, True, ""),  # before Hello
        ("api_key", {"dataplane:admin"}, "edge-*", "edge-7", True, ""),
        ("api_key", {"dataplane:write"}, "*", "anything", True, ""),
        ("api_key", {"dataplane:write"}, "edge-1", "edge-2", False, "node_mismatch"),
        ("api_key", {"dataplane:write"}, "edge-*", "core-1", False, "node_mismatch"),
        ("api_key", {"dataplane:write"}, None, "edge-1", False, "node_unbound"),
        ("api_key", {"dataplane:write"}, None, None, False, "node_unbound"),
        ("api_key", {"dataplane:read", "stats:read"}, "edge-1", "edge-1", False,
         "insufficient_scope"),
        ("user", {"dataplane:write"}, None, "edge-1", False, "key_required"),
        ("user", ADMIN, None, "edge-1", False, "key_required"),  # even an admin's login
        ("session", ADMIN, None, None, False, "key_required"),
    ],
)
def test_node_connect(kind: str, scopes: frozenset[str], binding: str | None, node: str | None,
                      allowed: bool, code: str) -> None:
    actor = Principal(kind=kind, subject="x", scopes=frozenset(scopes),  # type: ignore[arg-type]
                      node_binding=binding)
    decision = decide(actor, Action.NODE_CONNECT, node=node)
    assert (decision.allowed, decision.code) == (allowed, code)


@pytest.mark.parametrize(("action", "binding", "allowed"), [
    (Action.KEY_CREATE, "edge-1", True),
    (Action.KEY_CREATE, "*", False),
    (Action.KEY_CREATE, "edge-*", False),
    (Action.KEY_CREATE, "edge-1,core-1", False),
    (Action.KEY_CREATE, None, True),  # a key without dataplane:write has no binding
    (Action.KEY_ROTATE, "*", False),
    (Action.KEY_READ, "*", False),
    (Action.KEY_REVOKE, "edge-1", True),
])
def test_a_node_bound_key_reaches_no_key_bound_wider(action: Action, binding: str | None,
                                                     allowed: bool) -> None:
    """Security review: a dataplane key with clients:write bound to edge-1 could mint or
    rotate a key bound to `*` (and read its plaintext)."""
    bound = Principal(kind="api_key", subject="client:5", user_id=1, client_id=5,
                      scopes=frozenset({"dataplane:write", "clients:write"}),
                      node_binding="edge-1")
    scopes = Capabilities(frozenset({"dataplane:write"}))
    decision = decide(bound, action, target=scopes, granting=scopes, owner_user_id=1,
                      binding=binding)
    assert decision.allowed is allowed
    if not allowed:
        assert decision.code == "binding_escalation"
