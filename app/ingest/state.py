"""The in-memory telemetry aggregate fed by dataplane batches.

Counters and losses arrive as cumulative snapshots (see proto/floe/dataplane/v1/uplink.proto):
for each (node, interface, counter epoch) only the newest snapshot is kept, value by value
as a maximum, so a resent or duplicated batch changes nothing and a missing one is healed by
the next. Totals are the sum over epochs. Sequence numbers are still tracked per
(node, instance) so a batch is applied at most once and its flow records are not replayed.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.ingest.traffic import TrafficWindow

__all__ = [
    "DROP_FIELDS",
    "IngestState",
    "InterfaceState",
    "NodeState",
    "address_text",
]

# Counter names (struct floe_if_counters) summed into "dropped".
DROP_FIELDS = ("dropped_rule", "dropped_default", "dropped_malformed")

# Flow record fields copied from the proto message, in answer order.
_FLOW_FIELDS = (
    "packets_ab",
    "bytes_ab",
    "packets_ba",
    "bytes_ba",
    "first_seen_unix_ns",
    "last_seen_unix_ns",
    "tcp_flags",
)


_V4_MAPPED = bytes(10) + b"\xff\xff"


@functools.lru_cache(maxsize=1 << 16)
def _addr(raw: bytes) -> str:
    """Text form of a record address (IPv4 for v4-mapped). Cached: hosts repeat across
    flows, and formatting through ipaddress costs ~5 us."""
    if len(raw) != 16:
        return raw.hex()
    if raw[:12] == _V4_MAPPED:
        return socket.inet_ntop(socket.AF_INET, raw[12:])
    return str(ipaddress.IPv6Address(raw))


address_text = _addr  # the observer formats addresses the same way, from the same cache


def _sum_losses(losses: dict[tuple[str, str, str], int]) -> dict[str, int]:
    """Sum cumulative per-instance losses into "source[:detail]" totals."""
    out: dict[str, int] = {}
    for (_instance, source, detail), count in losses.items():
        key = f"{source}:{detail}" if detail else source
        out[key] = out.get(key, 0) + count
    return out


@dataclass(slots=True)
class InterfaceState:
    """One interface of one node: newest snapshot per counter epoch, losses, rates."""

    node_id: str
    name: str
    mode: str = "unspecified"
    attach_mode: str = "unspecified"
    epochs: dict[str, dict[str, int]] = field(default_factory=dict)
    losses: dict[tuple[str, str, str], int] = field(
        default_factory=dict
    )  # (instance, source, detail)
    rule_hits: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    traffic: TrafficWindow = field(default_factory=TrafficWindow)
    last_update_ns: int = 0
    pps: float = 0.0
    bps: float = 0.0
    drops_ps: float = 0.0
    _rate_mark: tuple[float, int, int, int] | None = None

    def apply_snapshot(self, epoch: str, values: dict[str, int], taken_ns: int) -> None:
        current = self.epochs.setdefault(epoch, {})
        for name, value in values.items():
            if value > current.get(name, 0):
                current[name] = value
        self.last_update_ns = max(self.last_update_ns, taken_ns)

    def totals(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for values in self.epochs.values():
            for name, value in values.items():
                out[name] = out.get(name, 0) + value
        return out

    def loss_totals(self) -> dict[str, int]:
        return _sum_losses(self.losses)

    def hits_by_rule(self) -> dict[int, tuple[int, int]]:
        """(packets, bytes) per rule id, summed over counter epochs like the counters."""
        out: dict[int, tuple[int, int]] = {}
        for (_epoch, rule_id), (packets, octets) in self.rule_hits.items():
            old = out.get(rule_id, (0, 0))
            out[rule_id] = (old[0] + packets, old[1] + octets)
        return out

    def tick(self, now: float) -> None:
        totals = self.totals()
        packets, octets = totals.get("packets", 0), totals.get("bytes", 0)
        drops = sum(totals.get(name, 0) for name in DROP_FIELDS)
        if self._rate_mark is not None:
            then, p0, b0, d0 = self._rate_mark
            elapsed = now - then
            if elapsed > 0:
                self.pps = max(0.0, (packets - p0) / elapsed)
                self.bps = max(0.0, (octets - b0) * 8 / elapsed)
                self.drops_ps = max(0.0, (drops - d0) / elapsed)
        self._rate_mark = (now, packets, octets, drops)

    def summary(self) -> dict[str, Any]:
        totals = self.totals()
        return {
            "node_id": self.node_id,
            "interface": self.name,
            "mode": self.mode,
            "attach_mode": self.attach_mode,
            "packets": totals.get("packets", 0),
            "bytes": totals.get("bytes", 0),
            "passed": totals.get("passed", 0),
            "redirected": totals.get("redirected", 0),
            "dropped": sum(totals.get(name, 0) for name in DROP_FIELDS),
            "malformed": totals.get("malformed", 0),
            "pps": round(self.pps, 3),
            "bps": round(self.bps, 3),
            "drops_per_second": round(self.drops_ps, 3),
            "loss": self.loss_totals(),
            "counters": totals,
            "rule_hits": {
                str(rule_id): {"packets": packets, "bytes": octets}
                for rule_id, (packets, octets) in sorted(self.hits_by_rule().items())
            },
            "traffic": self.traffic.view(),
            "updated_unix_ns": self.last_update_ns,
        }


@dataclass(slots=True)
class NodeState:
    """A dataplane as the control plane knows it (kept after it disconnects)."""

    node_id: str
    instance_id: str = ""
    boot_id: str = ""
    version: str = ""
    peer: str = ""
    principal: str = ""
    capabilities: tuple[str, ...] = ()
    connected: bool = False
    connected_since: float = 0.0
    last_seen: float = 0.0
    connections: int = 0
    batches_applied: int = 0
    batches_duplicate: int = 0
    flows_evicted: int = 0  # of this node's records, from the shared recent-flows window
    flows_tracked: int = 0  # this node's records in that window now
    rules_generation: int = 0
    rules_error: str = ""
    config_generation: int = 0
    applied_seq: dict[str, int] = field(default_factory=dict)  # instance -> highest applied seq
    # Losses not tied to one interface (the uplink buffer): (instance, source, detail) -> count.
    losses: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def loss_totals(self) -> dict[str, int]:
        return _sum_losses(self.losses)

    def describe(self, interfaces: list[InterfaceState]) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "instance_id": self.instance_id,
            "boot_id": self.boot_id,
            "version": self.version,
            "peer": self.peer,
            "principal": self.principal,
            "connected": self.connected,
            "connected_since": self.connected_since or None,
            "last_seen": self.last_seen or None,
            "connections": self.connections,
            "capabilities": list(self.capabilities),
            "last_applied_seq": self.applied_seq.get(self.instance_id, 0),
            "batches_applied": self.batches_applied,
            "batches_duplicate": self.batches_duplicate,
            "rules_generation_applied": self.rules_generation,
            "rules_error": self.rules_error or None,
            "config_generation_applied": self.config_generation,
            "loss": self.loss_totals(),
            "interfaces": [
                {"name": i.name, "mode": i.mode, "attach_mode": i.attach_mode} for i in interfaces
            ],
        }


def rank_talkers(parts: list[dict[str, list[int]]], limit: int) -> list[dict[str, Any]]:
    """The top `limit` hosts by bytes over host -> [packets, bytes] tables, summed."""
    if len(parts) == 1:
        merged = parts[0]
    else:
        merged = {}
        for part in parts:
            for host, (packets, octets) in part.items():
                slot = merged.setdefault(host, [0, 0])
                slot[0] += packets
                slot[1] += octets
    ranked = sorted(merged.items(), key=lambda item: item[1][1], reverse=True)[:limit]
    return [{"host": host, "packets": p, "bytes": b} for host, (p, b) in ranked]


class IngestState:
    """Everything the control plane knows about its dataplanes; owned by the event loop."""

    def __init__(self, max_flows: int = 10_000) -> None:
        self.nodes: dict[str, NodeState] = {}
        self.interfaces: dict[tuple[str, str], InterfaceState] = {}
        # flow key -> newest cumulative record, as served by `GET /flows`; oldest first
        self.flows: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
        self.max_flows = max_flows

    # Totals over all nodes: the per-node counters are the one record of each.
    @property
    def flows_evicted(self) -> int:
        return sum(node.flows_evicted for node in self.nodes.values())

    @property
    def batches_applied(self) -> int:
        return sum(node.batches_applied for node in self.nodes.values())

    @property
    def batches_duplicate(self) -> int:
        return sum(node.batches_duplicate for node in self.nodes.values())

    # -- nodes -------------------------------------------------------------------------
    def node(self, node_id: str) -> NodeState:
        node = self.nodes.get(node_id)
        if node is None:
            node = self.nodes[node_id] = NodeState(node_id=node_id)
        return node

    def interface(self, node_id: str, name: str) -> InterfaceState:
        key = (node_id, name)
        iface = self.interfaces.get(key)
        if iface is None:
            iface = self.interfaces[key] = InterfaceState(node_id=node_id, name=name)
        return iface

    def node_interfaces(self, node_id: str) -> list[InterfaceState]:
        return [i for (n, _), i in sorted(self.interfaces.items()) if n == node_id]

    def connected_nodes(self) -> list[NodeState]:
        return [n for n in self.nodes.values() if n.connected]

    # -- batches -----------------------------------------------------------------------
    def should_apply(self, node_id: str, instance_id: str, seq: int) -> bool:
        """True once per (node, instance, seq); later duplicates answer False."""
        node = self.node(node_id)
        if seq <= node.applied_seq.get(instance_id, 0):
            node.batches_duplicate += 1
            return False
        return True

    def mark_applied(self, node_id: str, instance_id: str, seq: int) -> None:
        node = self.node(node_id)
        node.applied_seq[instance_id] = max(seq, node.applied_seq.get(instance_id, 0))
        node.batches_applied += 1
        node.last_seen = time.time()

    def apply_counters(
        self, node_id: str, interface: str, epoch: str, values: dict[str, int], taken_ns: int
    ) -> None:
        self.interface(node_id, interface).apply_snapshot(epoch, values, taken_ns)

    def apply_loss(
        self, node_id: str, instance_id: str, interface: str, source: str, detail: str, count: int
    ) -> int:
        """Keep the newest cumulative count; returns the increase (0 for a resend)."""
        losses = (
            self.interface(node_id, interface).losses if interface else self.node(node_id).losses
        )
        key = (instance_id, source, detail)
        before = losses.get(key, 0)
        if count <= before:
            return 0
        losses[key] = count
        return count - before

    def apply_rule_hits(
        self, node_id: str, interface: str, epoch: str, rule_id: int, packets: int, octets: int
    ) -> None:
        iface = self.interface(node_id, interface or "*")
        old = iface.rule_hits.get((epoch, rule_id), (0, 0))
        iface.rule_hits[(epoch, rule_id)] = (max(old[0], packets), max(old[1], octets))

    def apply_aggregate(self, node_id: str, message: Any, instance: str = "") -> None:
        """One tick's TrafficAggregate of one interface, from dataplane process `instance`."""
        self.interface(node_id, message.interface or "*").traffic.add(message, instance)

    def apply_flows(
        self, node_id: str, records: Sequence[Any], states: Mapping[int, str],
        ends: Mapping[int, str],
    ) -> None:
        for record in records:
            self.apply_flow(node_id, record, record.interface,
                            states.get(record.state) or str(record.state),
                            ends.get(record.end_reason) or str(record.end_reason))

    def apply_flow(self, node_id: str, record: Any, interface: str, state: str, end: str) -> None:
        src, dst = _addr(record.addr_a), _addr(record.addr_b)
        key = (
            node_id,
            record.ifindex,
            record.vlan,
            record.proto,
            src,
            record.port_a,
            dst,
            record.port_b,
            record.first_seen_unix_ns,
        )
        data: dict[str, Any] = {
            "node_id": node_id,
            "interface": interface,
            "src": src,
            "dst": dst,
            "src_port": record.port_a,
            "dst_port": record.port_b,
            "proto": record.proto,
            "vlan": record.vlan,
        }
        for name in _FLOW_FIELDS:
            data[name] = int(getattr(record, name))
        data["packets"] = data["packets_ab"] + data["packets_ba"]
        data["bytes"] = data["bytes_ab"] + data["bytes_ba"]
        data["state"] = state
        data["end_reason"] = end
        if key not in self.flows:
            self.node(node_id).flows_tracked += 1
        self.flows[key] = data
        self.flows.move_to_end(key)  # an update makes the flow newest
        while len(self.flows) > self.max_flows:
            _, evicted = self.flows.popitem(last=False)
            owner = self.node(evicted["node_id"])
            owner.flows_evicted += 1
            owner.flows_tracked -= 1

    # -- views -------------------------------------------------------------------------
    def tick(self, now: float | None = None) -> None:
        moment = time.monotonic() if now is None else now
        for iface in self.interfaces.values():
            iface.tick(moment)

    def summary(self, nodes: frozenset[str] | None = None) -> dict[str, Any]:
        """Interfaces, totals and loss; of `nodes` only when given (a caller whose access is
        limited to some nodes must not learn anything about the others)."""
        interfaces = [i.summary() for (node_id, _), i in sorted(self.interfaces.items())
                      if nodes is None or node_id in nodes]
        visible = [n for n in self.nodes.values() if nodes is None or n.node_id in nodes]
        totals = {"packets": 0, "bytes": 0, "dropped": 0, "malformed": 0, "pps": 0.0, "bps": 0.0}
        loss: dict[str, int] = {}
        for item in interfaces:
            for name in totals:
                totals[name] += item[name]
            for source, count in item["loss"].items():
                loss[source] = loss.get(source, 0) + count
        for node in visible:
            for source, count in node.loss_totals().items():
                loss[source] = loss.get(source, 0) + count
        flows = {"tracked": sum(n.flows_tracked for n in visible),
                 "evicted": sum(n.flows_evicted for n in visible)}
        batches = {"applied": sum(n.batches_applied for n in visible),
                   "duplicate": sum(n.batches_duplicate for n in visible)}
        return {
            "interfaces": interfaces,
            "totals": totals,
            "loss": loss,
            "nodes": {"known": len(visible), "connected": sum(1 for n in visible if n.connected)},
            "flows": flows,
            "batches": batches,
        }

    def top_talkers(self, limit: int = 10, nodes: frozenset[str] | None = None,
                    by_node: dict[str, dict[str, list[int]]] | None = None,
                    ) -> list[dict[str, Any]]:
        """Hosts by bytes over the recent-flows window (of `nodes` only, when given; from
        `host_totals_by_node()` when the caller already has it)."""
        if nodes is None:
            return rank_talkers([self._host_totals(self.flows.values())], limit)
        if by_node is None:
            by_node = self.host_totals_by_node()
        return rank_talkers([by_node[n] for n in nodes if n in by_node], limit)

    def host_totals_by_node(self) -> dict[str, dict[str, list[int]]]:
        """node -> host -> [packets, bytes], in one pass over the window: what a tick needs
        to rank talkers for many node sets without walking the window for each."""
        grouped: dict[str, list[dict[str, Any]]] = {}
        for data in self.flows.values():
            grouped.setdefault(data["node_id"], []).append(data)
        return {node: self._host_totals(flows) for node, flows in grouped.items()}

    @staticmethod
    def _host_totals(flows: Any) -> dict[str, list[int]]:
        by_host: dict[str, list[int]] = {}
        for data in flows:
            for host, packets, octets in (
                (data["src"], data["packets_ab"], data["bytes_ab"]),
                (data["dst"], data["packets_ba"], data["bytes_ba"]),
            ):
                slot = by_host.setdefault(host, [0, 0])
                slot[0] += packets
                slot[1] += octets
        return by_host

    def recent_flows(self, limit: int, predicate: Any = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for data in reversed(self.flows.values()):
            if predicate is None or predicate(data):
                out.append(data)
                if len(out) >= limit:
                    break
        return out
