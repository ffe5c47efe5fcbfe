"""The in-memory telemetry aggregate fed by dataplane batches.

Counters and losses arrive as cumulative snapshots (see proto/floe/dataplane/v1/uplink.proto):
for each (node, interface, counter epoch) only the newest snapshot is kept, value by value
as a maximum, so a resent or duplicated batch changes nothing and a missing one is healed by
the next. Totals are the sum over epochs. Sequence numbers are still tracked per
(node, instance) so a batch is applied at most once and its flow records are not replayed.

Everything a dataplane names is bounded (`app.ingest.limits`): nodes, interfaces per node,
epochs and instances per interface (`app.ingest.cumulative` retires the oldest), keys per
epoch, rule ids (only those of the rule sets pushed), string lengths. An item past a bound
is left out and counted per node and bound in `NodeState.refused` (and in `refused`).
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import socket
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.ingest.cumulative import Cumulative
from app.ingest.limits import (
    MAX_COUNTERS,
    MAX_INSTANCES,
    MAX_NAME,
    MAX_TEXT,
    IngestLimits,
    Refusal,
    hello_problem,
)
from app.ingest.traffic import TrafficWindow
from app.rulespec import MAX_RULES

__all__ = [
    "DROP_FIELDS",
    "VERDICT_NAMES",
    "IngestState",
    "InterfaceState",
    "NodeState",
    "address_text",
]

log = logging.getLogger(__name__)

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
# FlowRecord.verdict (floe.dataplane.v1.Verdict) as /flows names it.
VERDICT_NAMES = {0: "unknown", 1: "forwarded", 2: "dropped"}


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


LossKey = tuple[str, str]  # (source, detail)
HitKey = tuple[int, int]  # (rule id, 0 for packets | 1 for bytes)


def _loss_store(limits: IngestLimits) -> Cumulative[LossKey]:
    """Cumulative losses per dataplane instance (the counts restart with the process)."""
    return Cumulative(limits.max_epochs, limits.max_loss_keys)


def _sum_losses(losses: Cumulative[LossKey]) -> dict[str, int]:
    """Losses summed over instances, as "source[:detail]" totals."""
    return {f"{source}:{detail}" if detail else source: count
            for (source, detail), count in losses.totals().items()}


@dataclass(slots=True)
class InterfaceState:
    """One interface of one node: newest snapshot per counter epoch, losses, rates."""

    node_id: str
    name: str
    limits: IngestLimits = field(default_factory=IngestLimits, repr=False)
    mode: str = "unspecified"
    attach_mode: str = "unspecified"
    xsk_mode: str = "unspecified"  # AF_XDP sockets: none | copy | zerocopy
    counters: Cumulative[str] = field(init=False)  # per counter epoch: name -> value
    losses: Cumulative[LossKey] = field(init=False)  # per dataplane instance
    rule_hits: Cumulative[HitKey] = field(init=False)  # per counter epoch
    traffic: TrafficWindow = field(default_factory=TrafficWindow)
    last_update_ns: int = 0
    pps: float = 0.0
    bps: float = 0.0
    drops_ps: float = 0.0
    _rate_mark: tuple[float, int, int, int] | None = None

    def __post_init__(self) -> None:
        self.counters = Cumulative(self.limits.max_epochs, MAX_COUNTERS)
        self.losses = _loss_store(self.limits)
        self.rule_hits = Cumulative(self.limits.max_epochs, 2 * MAX_RULES)

    def apply_snapshot(self, epoch: str, values: Mapping[str, int],
                       taken_ns: int) -> tuple[int, str]:
        """Max-merge one cumulative snapshot; (refused, why) as `Cumulative.update`."""
        refused = self.counters.update(epoch, values.items())
        self.last_update_ns = max(self.last_update_ns, taken_ns)
        return refused

    def totals(self) -> dict[str, int]:
        return self.counters.totals()

    def loss_totals(self) -> dict[str, int]:
        return _sum_losses(self.losses)

    def hits_by_rule(self) -> dict[int, tuple[int, int]]:
        """(packets, bytes) per rule id, summed over counter epochs like the counters."""
        out: dict[int, tuple[int, int]] = {}
        for (rule_id, which), value in self.rule_hits.totals().items():
            old = out.get(rule_id, (0, 0))
            out[rule_id] = (old[0] + value, old[1]) if which == 0 else (old[0], old[1] + value)
        return out

    @property
    def retirements(self) -> int:
        return self.counters.retirements + self.losses.retirements + self.rule_hits.retirements

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
    # The control-plane instance holding the stream when another one does ("" here): with
    # REDIS_URL every instance applies every node's input (app.cluster).
    control_plane: str = ""
    connected_since: float = 0.0
    last_seen: float = 0.0
    connections: int = 0
    takeovers: int = 0  # streams of this node replaced by another (see app.ingest.service)
    batches_applied: int = 0
    batches_duplicate: int = 0
    flows_evicted: int = 0  # of this node's records, from the shared recent-flows window
    flows_tracked: int = 0  # this node's records in that window now
    rules_generation: int = 0
    rules_error: str = ""
    config_generation: int = 0
    applied_seq: dict[str, int] = field(default_factory=dict)  # instance -> highest applied seq
    limits: IngestLimits = field(default_factory=IngestLimits, repr=False)
    # Losses not tied to one interface (the uplink buffer), per instance.
    losses: Cumulative[LossKey] = field(init=False)
    interface_count: int = 0
    refused: dict[str, int] = field(default_factory=dict)  # bound -> items left out

    def __post_init__(self) -> None:
        self.losses = _loss_store(self.limits)

    def loss_totals(self) -> dict[str, int]:
        return _sum_losses(self.losses)

    def describe(self, interfaces: list[InterfaceState]) -> dict[str, Any]:
        described: dict[str, Any] = {
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
            "takeovers": self.takeovers,
            "capabilities": list(self.capabilities),
            "last_applied_seq": self.applied_seq.get(self.instance_id, 0),
            "batches_applied": self.batches_applied,
            "batches_duplicate": self.batches_duplicate,
            "rules_generation_applied": self.rules_generation,
            "rules_error": self.rules_error or None,
            "config_generation_applied": self.config_generation,
            "loss": self.loss_totals(),
            "refused": dict(sorted(self.refused.items())),
            "epochs_retired": self.losses.retirements + sum(i.retirements for i in interfaces),
            "interfaces": [
                {"name": i.name, "mode": i.mode, "attach_mode": i.attach_mode,
                 "xsk_mode": i.xsk_mode} for i in interfaces
            ],
        }
        if self.control_plane:  # relayed: the stream is on another control-plane instance
            described["control_plane"] = self.control_plane
        return described


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


_MAX_VIEWS = 256  # cached views (one per node set asked for since the last change)


class IngestState:
    """Everything the control plane knows about its dataplanes; owned by the event loop."""

    def __init__(self, max_flows: int = 10_000, limits: IngestLimits | None = None) -> None:
        self.nodes: dict[str, NodeState] = {}
        self.interfaces: dict[tuple[str, str], InterfaceState] = {}
        # flow key -> newest cumulative record, as served by `GET /flows`; oldest first
        self.flows: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
        self.max_flows = max_flows
        self.limits = limits or IngestLimits()
        self.refused: dict[str, int] = {}  # bound -> refusals, streams refused at Hello too
        # Rule ids a hit may name: those of the newest two rule sets pushed (a dataplane may
        # still report the previous one's for a tick after a change).
        self.rule_ids: frozenset[int] = frozenset()
        self._newest_rule_ids: frozenset[int] = frozenset()
        # The cluster relay's figures (app.cluster, with REDIS_URL): shown in the summary of
        # callers who see every node.
        self.relay: Callable[[], dict[str, Any]] | None = None
        # view() results by node set, valid while `_generation` is unchanged (see changed())
        self._generation = 0
        self._views: dict[frozenset[str] | None, tuple[int, dict[str, Any]]] = {}

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

    # -- bounds ------------------------------------------------------------------------
    def admit(self, hello: Any) -> Refusal | None:
        """Why a stream opening with `hello` is refused, or None (checked before `node()`
        creates anything): message limits, then the number of nodes."""
        problem = hello_problem(hello, self.limits)
        if problem is not None:
            self.refused["hello"] = self.refused.get("hello", 0) + 1
            return Refusal("INVALID_ARGUMENT", problem)
        if hello.node_id not in self.nodes and len(self.nodes) >= self.limits.max_nodes:
            self.refused["nodes"] = self.refused.get("nodes", 0) + 1
            log.warning("dataplane %r refused: INGEST_MAX_NODES=%d nodes are known",
                        hello.node_id, self.limits.max_nodes)
            return Refusal("RESOURCE_EXHAUSTED",
                           f"this control plane already knows INGEST_MAX_NODES="
                           f"{self.limits.max_nodes} dataplanes; a new node is refused")
        return None

    def admit_node(self, node_id: str) -> bool:
        """Whether input for `node_id` may be kept (a known node, or room under
        INGEST_MAX_NODES); a refusal is counted. For relayed input, which has no Hello."""
        if node_id in self.nodes or len(self.nodes) < self.limits.max_nodes:
            return True
        self.refused["nodes"] = self.refused.get("nodes", 0) + 1
        return False

    def refuse(self, node_id: str, bound: str, count: int = 1) -> None:
        """Count `count` items of `node_id` left out at `bound` (logged once per node and
        bound: a dataplane past a bound usually stays past it)."""
        if count <= 0:
            return
        node = self.node(node_id)
        first = bound not in node.refused
        node.refused[bound] = node.refused.get(bound, 0) + count
        self.refused[bound] = self.refused.get(bound, 0) + count
        self.changed()
        if first:
            log.warning("dataplane %s: data past the %r bound is left out and counted "
                        "(GET /api/v2/nodes: refused)", node_id, bound)

    def set_rule_ids(self, ids: Iterable[int]) -> None:
        """A rule set was pushed: hits may name its ids or the previous set's; stored hits
        of other rules are forgotten."""
        self.changed()
        newest = frozenset(ids)
        self.rule_ids = newest | self._newest_rule_ids
        self._newest_rule_ids = newest
        known = self.rule_ids
        for iface in self.interfaces.values():
            iface.rule_hits.prune(lambda key: key[0] in known)

    # -- nodes -------------------------------------------------------------------------
    def node(self, node_id: str) -> NodeState:
        node = self.nodes.get(node_id)
        if node is None:
            node = self.nodes[node_id] = NodeState(node_id=node_id, limits=self.limits)
        return node

    def interface(self, node_id: str, name: str) -> InterfaceState:
        """The interface, created when new (unbounded: for callers that are not a dataplane;
        batches go through `admit_interface`)."""
        key = (node_id, name)
        iface = self.interfaces.get(key)
        if iface is None:
            iface = self.interfaces[key] = InterfaceState(node_id=node_id, name=name,
                                                          limits=self.limits)
            self.node(node_id).interface_count += 1
        return iface

    def admit_interface(self, node_id: str, name: str) -> InterfaceState | None:
        """The interface, created when new and within bounds; None (counted) otherwise."""
        iface = self.interfaces.get((node_id, name))
        if iface is not None:
            return iface
        if len(name) > MAX_NAME:
            self.refuse(node_id, "too_long")
            return None
        if self.node(node_id).interface_count >= self.limits.max_interfaces:
            self.refuse(node_id, "interfaces")
            return None
        return self.interface(node_id, name)

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
        seqs = node.applied_seq
        old = seqs.pop(instance_id, 0)  # re-inserted last: the oldest instance goes first
        seqs[instance_id] = max(seq, old)
        while len(seqs) > MAX_INSTANCES:
            del seqs[next(iter(seqs))]
        node.batches_applied += 1
        node.last_seen = time.time()
        self.changed()

    def apply_counters(
        self, node_id: str, interface: str, epoch: str, values: Mapping[str, int], taken_ns: int
    ) -> None:
        if len(epoch) > MAX_TEXT:
            self.refuse(node_id, "too_long")
            return
        iface = self.admit_interface(node_id, interface)
        if iface is None:
            return
        named = {name: value for name, value in values.items() if len(name) <= MAX_TEXT}
        self.refuse(node_id, "too_long", len(values) - len(named))
        refused, why = iface.apply_snapshot(epoch, named, taken_ns)
        self.refuse(node_id, "counter_keys" if why == "keys" else "epoch_retired", refused)

    def apply_loss(
        self, node_id: str, instance_id: str, interface: str, source: str, detail: str, count: int
    ) -> int:
        """Keep the newest cumulative count; returns the increase (0 for a resend or a
        refusal), which the observer reports as dataplane loss."""
        if len(detail) > MAX_TEXT:
            self.refuse(node_id, "too_long")
            return 0
        if interface:
            iface = self.admit_interface(node_id, interface)
            if iface is None:
                return 0
            losses = iface.losses
        else:
            losses = self.node(node_id).losses
        key = (source, detail)
        before = losses.value(instance_id, key)
        refused, why = losses.update(instance_id, ((key, count),))
        self.refuse(node_id, "loss_keys" if why == "keys" else "epoch_retired", refused)
        return max(0, losses.value(instance_id, key) - before)

    def apply_rule_hits(
        self, node_id: str, interface: str, epoch: str, rule_id: int, packets: int, octets: int
    ) -> None:
        """A rule's cumulative hits; refused unless the control plane pushed that rule id."""
        if rule_id not in self.rule_ids:
            self.refuse(node_id, "rule_unknown")
            return
        if len(epoch) > MAX_TEXT:
            self.refuse(node_id, "too_long")
            return
        iface = self.admit_interface(node_id, interface or "*")
        if iface is None:
            return
        refused, why = iface.rule_hits.update(epoch, (((rule_id, 0), packets),
                                                      ((rule_id, 1), octets)))
        self.refuse(node_id, "rule_hits" if why == "keys" else "epoch_retired", refused // 2)

    def apply_aggregate(self, node_id: str, message: Any, instance: str = "") -> None:
        """One tick's TrafficAggregate of one interface, from dataplane process `instance`."""
        iface = self.admit_interface(node_id, message.interface or "*")
        if iface is not None:
            clipped, too_long = iface.traffic.add(message, instance)
            self.refuse(node_id, "talkers", clipped)
            self.refuse(node_id, "too_long", too_long)

    def apply_flows(
        self, node_id: str, records: Sequence[Any], states: Mapping[int, str],
        ends: Mapping[int, str],
    ) -> None:
        refused = 0
        for record in records:
            if not self.apply_flow(node_id, record, record.interface,
                                   states.get(record.state) or str(record.state),
                                   ends.get(record.end_reason) or str(record.end_reason)):
                refused += 1
        self.refuse(node_id, "flow_malformed", refused)

    def apply_flow(self, node_id: str, record: Any, interface: str, state: str, end: str,
                   ) -> bool:
        """Upsert one flow record; False (nothing kept) when its addresses are not 16 bytes
        or its interface name is too long."""
        if len(record.addr_a) != 16 or len(record.addr_b) != 16 or len(interface) > MAX_NAME:
            return False
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
            record.verdict,
            record.rule_id,
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
        data["verdict"] = VERDICT_NAMES.get(record.verdict, str(record.verdict))
        data["rule_id"] = record.rule_id
        data["sample_weight"] = record.sample_weight
        if key not in self.flows:
            self.node(node_id).flows_tracked += 1
        self.flows[key] = data
        self.flows.move_to_end(key)  # an update makes the flow newest
        while len(self.flows) > self.max_flows:
            _, evicted = self.flows.popitem(last=False)
            owner = self.node(evicted["node_id"])
            owner.flows_evicted += 1
            owner.flows_tracked -= 1
        return True

    # -- views -------------------------------------------------------------------------
    def tick(self, now: float | None = None) -> None:
        moment = time.monotonic() if now is None else now
        for iface in self.interfaces.values():
            iface.tick(moment)
        self.changed()

    def changed(self) -> None:
        """What the views show may have changed (a batch applied, a tick, a node connected
        or gone, a rule set acknowledged): the next view() is computed afresh."""
        self._generation += 1

    def view(self, nodes: frozenset[str] | None = None) -> dict[str, Any]:
        """`summary(nodes)` with its top talkers, computed at most once per change and node
        set: REST and the WebSocket ticker ask far more often than batches arrive (under a
        REST flood, recomputing per request starved the uplink). Shared: do not mutate."""
        cached = self._views.get(nodes)
        if cached is not None and cached[0] == self._generation:
            return cached[1]
        data = self.summary(nodes)
        data["top_talkers"] = self.top_talkers(10, nodes)
        if len(self._views) >= _MAX_VIEWS:  # node sets of many callers: start over
            self._views.clear()
        self._views[nodes] = (self._generation, data)
        return data

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
        refused: dict[str, int] = {}
        for node in visible:
            for bound, count in node.refused.items():
                refused[bound] = refused.get(bound, 0) + count
        out: dict[str, Any] = {
            "interfaces": interfaces,
            "totals": totals,
            "loss": loss,
            "refused": dict(sorted(refused.items())),
            "nodes": {"known": len(visible), "connected": sum(1 for n in visible if n.connected)},
            "flows": flows,
            "batches": batches,
        }
        if self.relay is not None and nodes is None:  # about every node: global readers only
            out["relay"] = self.relay()
        return out

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
