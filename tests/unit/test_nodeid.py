"""Node ids this host picks and the pattern the local dataplane key is bound to agree."""

from __future__ import annotations

import socket

from app.nodeid import (
    MAX_NODE_ID,
    default_node_id,
    demo_node_id,
    local_key_pattern,
    node_matches,
    valid_node_id,
)


def test_the_local_key_pattern_covers_the_default_and_demo_ids() -> None:
    for env in ({}, {"FLOE_NODE_ID": "edge-1"}):
        pattern = local_key_pattern(env)
        ids = {demo_node_id(env) for _ in range(20)}
        assert len(ids) == 20  # every demo run is a node of its own
        for node in (default_node_id(env), *ids):
            assert valid_node_id(node) and node_matches(pattern, node)
    host = socket.gethostname()
    assert local_key_pattern({}) == f"{host},{host}-demo-*"
    edge = local_key_pattern({"FLOE_NODE_ID": "edge-1"})
    # this host and its demos, not every id starting with the host's name (security review)
    for other in ("core-1", "edge-10", "edge-1x", "edge-1-demo"):
        assert not node_matches(edge, other), other


def test_an_id_too_long_to_extend_stays_as_it_is() -> None:
    longest = {"FLOE_NODE_ID": "n" * MAX_NODE_ID}
    assert demo_node_id(longest) == local_key_pattern(longest) == "n" * MAX_NODE_ID
    near = {"FLOE_NODE_ID": "n" * 61}  # room for the demo suffix, not for the two patterns
    assert local_key_pattern(near) == "n" * 61


def test_bindings_list_patterns_and_node_ids_cannot_contain_their_syntax() -> None:
    from app.nodeid import binding_within, valid_binding

    assert node_matches("a,b-*", "a") and node_matches("a,b-*", "b-9")
    assert not node_matches("a,b-*", "ab") and not node_matches("a,b-*", "b")
    assert not valid_node_id("a,b") and not valid_node_id("a*")
    assert valid_binding("a,b-*") and not valid_binding("a,,b") and not valid_binding(",")
    assert binding_within("edge-*", "edge-7") and binding_within("edge-*", "edge-*")
    assert binding_within("a,b", "b") and binding_within("*", "edge-1")
    assert binding_within("*", "edge-*") and binding_within("x,*", "*")
    assert not binding_within("edge-1", "*") and not binding_within("edge-1", "edge-*")
    assert not binding_within("edge-*", "edge-1,core-1")
