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
    assert local_key_pattern({}) == socket.gethostname() + "*"
    assert not node_matches(local_key_pattern({"FLOE_NODE_ID": "edge-1"}), "core-1")


def test_an_id_too_long_to_extend_stays_as_it_is() -> None:
    longest = {"FLOE_NODE_ID": "n" * MAX_NODE_ID}
    assert demo_node_id(longest) == local_key_pattern(longest) == "n" * MAX_NODE_ID
    near = {"FLOE_NODE_ID": "n" * (MAX_NODE_ID - 1)}
    assert len(local_key_pattern(near)) == MAX_NODE_ID and demo_node_id(near) == near[
        "FLOE_NODE_ID"]
