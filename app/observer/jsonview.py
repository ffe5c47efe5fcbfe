"""Observer events as JSON, for the WebSocket flow subscription (and the dashboard).

A flow event has the keys of a `GET /api/v2/flows` record (so one table renders both), plus
`cursor`, `kind` (new | update | end) and the deltas; lost and node events say
what they are. Made once per batch, on first demand, and kept on the batch.
"""

from __future__ import annotations

from typing import Any

import orjson

from app.observer.ring import EventBatch
from floe.observer.v1 import observer_pb2 as pb

__all__ = ["batch_json", "event_json"]


def _names(enum: Any, prefix: str) -> dict[int, str]:
    return {value: name.removeprefix(prefix).lower() for name, value in enum.items()}


_KIND = _names(pb.EventKind, "EVENT_KIND_")
_STATE = _names(pb.FlowState, "FLOW_STATE_")
_END = _names(pb.EndReason, "END_REASON_")
_VERDICT = _names(pb.Verdict, "VERDICT_")
_LOST = _names(pb.LostEventSource, "LOST_EVENT_SOURCE_")
_NODE = _names(pb.NodeState, "NODE_STATE_")


def event_json(event: Any) -> dict[str, Any]:
    """One `Event` as the WebSocket sends it."""
    out: dict[str, Any] = {"cursor": event.cursor, "node_id": event.node_id,
                           "time_unix_ns": event.time.ToNanoseconds()}
    which = event.WhichOneof("event")
    if which == "flow":
        f = event.flow.flow
        out.update({
            "type": "flow", "kind": _KIND.get(event.flow.kind, "unspecified"),
            "interface": f.interface, "src": f.source_ip, "dst": f.destination_ip,
            "src_port": f.source_port, "dst_port": f.destination_port, "proto": f.protocol,
            "ip_version": 4 if f.ip_version == pb.IP_VERSION_IPV4 else 6, "vlan": f.vlan,
            "packets_ab": f.packets, "bytes_ab": f.bytes, "packets_ba": f.reply_packets,
            "bytes_ba": f.reply_bytes, "packets": f.packets + f.reply_packets,
            "bytes": f.bytes + f.reply_bytes,
            "delta_packets": f.delta_packets + f.delta_reply_packets,
            "delta_bytes": f.delta_bytes + f.delta_reply_bytes,
            "first_seen_unix_ns": f.first_seen.ToNanoseconds(),
            "last_seen_unix_ns": f.last_seen.ToNanoseconds(), "tcp_flags": f.tcp_flags,
            "state": _STATE.get(f.state, "unspecified"),
            "end_reason": _END.get(f.end_reason, "none"),
            "verdict": _VERDICT.get(f.verdict, "unknown"), "rule_id": f.rule_id,
            "sample_weight": f.sample_weight,
        })
    elif which == "lost_events":
        lost = event.lost_events
        out.update({"type": "lost", "source": _LOST.get(lost.source, "unspecified"),
                    "count": lost.num_events_lost, "interface": lost.interface,
                    "detail": lost.detail})
    else:
        node = event.node_status
        out.update({"type": "node", "state": _NODE.get(node.state, "unspecified"),
                    "version": node.version})
    return out


def batch_json(batch: EventBatch) -> list[bytes]:
    """Every event of `batch` as JSON bytes, in row order (cached on the batch)."""
    if batch.json is None:
        events = pb.GetFlowsResponse.FromString(b"".join(batch.entries)).events
        batch.json = [orjson.dumps(event_json(event)) for event in events]
    return batch.json
