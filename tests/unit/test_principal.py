"""Principal: global scopes, node-scoped grants and their read ⊂ write ⊂ admin levels."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from app.identity.records import UserState
from app.types import Principal


def test_nodes_for_follows_levels_and_global_scopes() -> None:
    p = Principal("user", "u", frozenset({"flows:read"}), node_scopes={
        "a": frozenset({"stats:read"}), "b": frozenset({"dataplane:admin"}),
        "c": frozenset({"rules:write"})})
    assert p.nodes_for("flows:read") is None  # global: every node
    assert p.nodes_for("stats:read") == {"a"}
    assert p.nodes_for("dataplane:read") == {"b"} and p.nodes_for("dataplane:write") == {"b"}
    assert p.nodes_for("rules:read") == {"c"} and p.nodes_for("rules:admin") == frozenset()
    assert p.nodes_for("users:read") == frozenset()  # empty, not None: nothing at all
    assert not p.has("stats:read")  # a node grant never counts as a global scope


def test_principal_stays_hashable_and_its_grants_read_only() -> None:
    state = UserState(1, "u@example.org", True, frozenset({"stats:read"}), frozenset(),
                      {"a": frozenset({"flows:read"})}, "stamp")
    principal = state.principal("user")
    assert hash(principal) == hash(state.principal("user"))
    assert isinstance(principal.node_scopes, MappingProxyType)
    with pytest.raises(TypeError):
        principal.node_scopes["b"] = frozenset()  # type: ignore[index]
    assert principal.nodes_for("flows:read") == {"a"}
