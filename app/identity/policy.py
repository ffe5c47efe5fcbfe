"""Who may act on whom: the one authorization policy of the identity use cases.

The route marks (`require_scope`) say which scope lets a caller *reach* an operation. This
module decides whether the caller may do it *to this target*: every use case that touches
another user, role, team, grant, key or node asks `decide` (or `authorize`, which raises) —
in the spirit of Kubernetes' RBAC authorizer ("you cannot grant or act beyond what you hold").

Two rules, applied per action (see `RULES`):

* **outrank**: the caller may act on a target only when everything the target can do, the
  caller can do too — its global scopes and, node by node, its scopes on single nodes
  (`Capabilities.covers`). A target holding one scope more than the caller is out of reach:
  an admin cannot be changed, deactivated, demoted or deleted by a `users:write` holder, and
  a narrow API key cannot rotate, revoke or list a broader key of the same owner.
* **grant**: the scopes an action hands out (roles assigned, a key's scopes, what a team
  confers on a node) must all be held by the caller.

Keys also have an owner: only the owner or a `clients:admin` holder reaches them at all.
A dataplane uplink (`node.connect`) is opened only by an API key holding `dataplane:write`
and bound to the node id it names (a user login never speaks for a node).
`actor=None` is the system itself (start-up provisioning, the operator CLI): always allowed.
The decision is pure (no I/O): the use case loads the target inside its unit of work.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from app.api.envelope import ApiError
from app.nodeid import binding_within, node_matches
from app.types import Principal, covers

__all__ = [
    "REAUTH_SECONDS",
    "RULES",
    "Action",
    "Capabilities",
    "Decision",
    "Rule",
    "authorize",
    "decide",
]


class Action(StrEnum):
    """Every identity action one principal can take on another principal or its power."""

    USER_CREATE = "user.create"
    USER_UPDATE = "user.update"  # display name
    USER_SET_PASSWORD = "user.set_password"  # noqa: S105 - an action name, not a secret
    USER_SET_ACTIVE = "user.set_active"
    USER_SET_ROLES = "user.set_roles"
    USER_DELETE = "user.delete"
    GRANT_ADD = "grant.add"
    GRANT_REMOVE = "grant.remove"
    ROLE_CREATE = "role.create"
    ROLE_UPDATE = "role.update"
    ROLE_DELETE = "role.delete"
    TEAM_SET_MEMBER = "team.set_member"
    TEAM_REMOVE_MEMBER = "team.remove_member"
    TEAM_ADD_RESOURCE = "team.add_resource"
    TEAM_REMOVE_RESOURCE = "team.remove_resource"
    TEAM_DELETE = "team.delete"
    KEY_CREATE = "key.create"
    KEY_READ = "key.read"
    KEY_ROTATE = "key.rotate"
    KEY_REVOKE = "key.revoke"
    NODE_CONNECT = "node.connect"  # a dataplane uplink speaking for a node


@dataclass(slots=True, frozen=True)
class Rule:
    outrank: bool  # the caller must cover the target's capabilities
    grant: bool  # the caller must hold every scope the action hands out
    owned: bool = False  # an API key: its owner, or a clients:admin holder
    bound: bool = False  # a node-bound caller reaches only keys bound within its binding
    node_bound: bool = False  # a dataplane key bound to the node it speaks for


RULES: Mapping[Action, Rule] = {
    Action.USER_CREATE: Rule(outrank=False, grant=True),
    Action.USER_UPDATE: Rule(outrank=True, grant=False),
    Action.USER_SET_PASSWORD: Rule(outrank=True, grant=False),
    Action.USER_SET_ACTIVE: Rule(outrank=True, grant=False),
    Action.USER_SET_ROLES: Rule(outrank=True, grant=True),
    Action.USER_DELETE: Rule(outrank=True, grant=False),
    Action.GRANT_ADD: Rule(outrank=True, grant=True),
    Action.GRANT_REMOVE: Rule(outrank=True, grant=False),
    Action.ROLE_CREATE: Rule(outrank=False, grant=True),
    # A role's holders lose what is taken out of it: the caller must hold the old scopes
    # (target) and the new ones (granted).
    Action.ROLE_UPDATE: Rule(outrank=True, grant=True),
    Action.ROLE_DELETE: Rule(outrank=True, grant=False),
    Action.TEAM_SET_MEMBER: Rule(outrank=True, grant=True),
    Action.TEAM_REMOVE_MEMBER: Rule(outrank=True, grant=False),
    # Target: what the team confers on the node(s) concerned.
    Action.TEAM_ADD_RESOURCE: Rule(outrank=False, grant=True),
    Action.TEAM_REMOVE_RESOURCE: Rule(outrank=True, grant=False),
    Action.TEAM_DELETE: Rule(outrank=True, grant=False),
    Action.KEY_CREATE: Rule(outrank=False, grant=True, bound=True),
    Action.KEY_READ: Rule(outrank=True, grant=False, owned=True, bound=True),
    Action.KEY_ROTATE: Rule(outrank=True, grant=False, owned=True, bound=True),
    Action.KEY_REVOKE: Rule(outrank=True, grant=False, owned=True, bound=True),
    Action.NODE_CONNECT: Rule(outrank=False, grant=False, node_bound=True),
}

_DATAPLANE_WRITE = "dataplane:write"


@dataclass(slots=True, frozen=True)
class Capabilities:
    """What a principal (or a role, a key, a team's conferral) lets its holder do: scopes
    everywhere, plus scopes on single nodes (resource and team grants on `node/<id>`)."""

    scopes: frozenset[str] = frozenset()
    node_scopes: Mapping[str, frozenset[str]] = field(default_factory=dict, hash=False)

    @classmethod
    def of(cls, principal: Principal) -> Capabilities:
        return cls(principal.scopes, principal.node_scopes)

    @classmethod
    def on_nodes(cls, scopes: Iterable[str], nodes: Iterable[str]) -> Capabilities:
        """`scopes` on each of `nodes` only (what a team confers on the nodes it holds)."""
        held = frozenset(scopes)
        return cls(frozenset(), {node: held for node in nodes})

    def holds(self, scope: str, node: str | None = None) -> bool:
        """`scope` everywhere, or (with `node`) on that node."""
        if covers(self.scopes, scope):
            return True
        return node is not None and covers(self.node_scopes.get(node, frozenset()), scope)

    def lacking(self, other: Capabilities) -> list[str]:
        """What `other` can do and this cannot: `scope` or `node/<id>:scope`, sorted."""
        out = {scope for scope in other.scopes if not self.holds(scope)}
        for node, scopes in other.node_scopes.items():
            out.update(f"node/{node}:{scope}" for scope in scopes if not self.holds(scope, node))
        return sorted(out)

    def covers(self, other: Capabilities) -> bool:
        return not self.lacking(other)


@dataclass(slots=True, frozen=True)
class Decision:
    allowed: bool
    code: str = ""
    reason: str = ""
    not_held: tuple[str, ...] = ()


ALLOW = Decision(True)

# How often a live stream (WebSocket, the observer's gRPC streams, a dataplane uplink) checks
# its credential again: a revoked key, a deactivated user or changed grants end it this soon.
REAUTH_SECONDS = 5.0


def decide(
    actor: Principal | None,
    action: Action,
    *,
    target: Capabilities | None = None,
    granting: Capabilities | None = None,
    owner_user_id: int | None = None,
    node: str | None = None,
    binding: str | None = None,
) -> Decision:
    """Allow or deny `actor` doing `action`; `target` is what the object acted on can do,
    `granting` what the action hands out, `owner_user_id` the owner of a key (keys only),
    `node` the node an uplink speaks for (None: not known yet, binding not checked),
    `binding` the node binding of the key acted on or made (keys only)."""
    if actor is None:
        return ALLOW
    rule = RULES[action]
    caller = Capabilities.of(actor)
    if rule.node_bound:
        return _node_decision(actor, caller, node)
    if rule.owned and not caller.holds("clients:admin") and (
        actor.user_id is None or owner_user_id != actor.user_id
    ):
        return Decision(False, "not_owner", "Only the key's owner or clients:admin may do this")
    if rule.bound and actor.node_binding is not None and binding is not None and \
            not binding_within(actor.node_binding, binding):
        return Decision(False, "binding_escalation", f"The API key may speak for nodes "
                        f"{actor.node_binding!r} only, not {binding!r}", ("node_binding",))
    if rule.outrank and target is not None:
        beyond = caller.lacking(target)
        if beyond:
            return Decision(
                False,
                "target_outranks_caller",
                "The target holds scopes you do not hold, so you cannot act on it",
                tuple(beyond),
            )
    if rule.grant and granting is not None:
        beyond = caller.lacking(granting)
        if beyond:
            return Decision(
                False, "scope_escalation", "Cannot hand out scopes you do not hold", tuple(beyond)
            )
    return ALLOW


def _node_decision(actor: Principal, caller: Capabilities, node: str | None) -> Decision:
    if actor.kind != "api_key":
        return Decision(False, "key_required", "A dataplane uplink needs an API key created for "
                        "its node (POST /clients with node_id), not a user login")
    if not caller.holds(_DATAPLANE_WRITE):
        return Decision(False, "insufficient_scope",
                        f"The API key lacks the {_DATAPLANE_WRITE} scope", (_DATAPLANE_WRITE,))
    binding = actor.node_binding
    if binding is None:
        return Decision(False, "node_unbound", "The API key is bound to no node: create a "
                        "dataplane key with node_id (POST /clients)")
    if node is not None and not node_matches(binding, node):
        return Decision(False, "node_mismatch",
                        f"The API key may speak for node {binding!r}, not {node!r}")
    return ALLOW


def authorize(
    actor: Principal | None,
    action: Action,
    *,
    target: Capabilities | None = None,
    granting: Capabilities | None = None,
    owner_user_id: int | None = None,
    binding: str | None = None,
) -> None:
    """`decide`, raising 403 in the error envelope (code, reason, the scopes not held)."""
    decision = decide(actor, action, target=target, granting=granting,
                      owner_user_id=owner_user_id, binding=binding)
    if not decision.allowed:
        details: dict[str, object] = {"action": str(action)}
        if decision.not_held:
            details["not_held"] = list(decision.not_held)
        raise ApiError(403, decision.code, decision.reason, details)
