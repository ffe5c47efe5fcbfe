"""What a node id may be: it names a dataplane in Hello, in grants (`node/<id>`, the grant's
128-character resource_id) and in hub topics. Shared by the control plane and the dataplane,
so a bad FLOE_NODE_ID is a configuration error at start, not a refused stream later."""

from __future__ import annotations

__all__ = ["MAX_NODE_ID", "valid_node_id"]

MAX_NODE_ID = 128


def valid_node_id(node_id: str) -> bool:
    """Printable, 1-128 characters."""
    return 0 < len(node_id) <= MAX_NODE_ID and node_id.isprintable()
