"""`GET /nodes`: the dataplanes this control plane knows, connected or not."""

from __future__ import annotations

from quart import Blueprint, Response

from app.api.access import require_scope, visible_nodes
from app.api.envelope import ok
from app.export import get_exporter
from app.ingest import get_state

__all__ = ["bp"]

bp = Blueprint("nodes", __name__)


@bp.get("/nodes")
@require_scope("dataplane:read", per_node=True)
async def list_nodes() -> Response:
    state = get_state()
    allowed = await visible_nodes("dataplane:read")
    nodes = [
        node.describe(state.node_interfaces(node_id))
        for node_id, node in sorted(state.nodes.items())
        if allowed is None or node_id in allowed
    ]
    exporter = get_exporter()
    if exporter is not None:  # IPFIX export on: each node's domain and records per collector
        for node in nodes:
            node["ipfix"] = exporter.describe_node(node["node_id"],
                                                   name_collectors=allowed is None)
    connected = sum(1 for node in nodes if node["connected"])
    return ok(nodes, meta={"count": len(nodes), "connected": connected})
