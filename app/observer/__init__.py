"""The observer: flow events, stats and nodes for streaming consumers (gRPC, and the WebSocket).

Data flows one way: the ingest applies a dataplane batch and tells its listeners (this layer)
what arrived → `events.py` turns it into an encoded event batch in the ring → `fanout.py`
offers it to every live follower → `service.py` streams it to gRPC consumers. `init_app`
wires it after the ingest layer and registers `floe.observer.v1.Observer` on the shared
grpc.aio server. Bounds (FLOE_OBSERVER_*) are in docs/observer.md and docs/configuration.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
from quart import Quart

from app.config import extra_int
from app.grpc.registry import add_service
from app.ingest import get_ingest
from app.observer.events import FlowTracker, append_flows, append_lost, append_node
from app.observer.fanout import Fanout
from app.observer.ring import EventRing
from app.observer.service import SERVICE_NAME, ObserverLimits, ObserverService
from app.runtime import get_runtime
from floe.observer.v1 import observer_pb2 as pb

__all__ = ["Observer", "get_observer", "init_app"]


@dataclass(slots=True)
class Observer:
    """The ingest's listener: every flow slice, loss increase and node change becomes events."""

    ring: EventRing
    tracker: FlowTracker
    fanout: Fanout

    def flows(self, node_id: str, records: Any) -> None:
        batch = append_flows(self.ring, self.tracker, node_id, records)
        if batch is not None:
            self.fanout.publish(batch, self.ring)

    def loss(self, node_id: str, interface: str, source: str, detail: str, count: int) -> None:
        """`count` more events lost by the dataplane (source and detail as it reported them)."""
        if count <= 0:
            return
        described = f"{source}:{detail}" if detail else source
        batch = append_lost(self.ring, node_id, count, source=pb.LOST_EVENT_SOURCE_DATAPLANE,
                            interface=interface, detail=described)
        self.fanout.publish(batch, self.ring)

    def node(self, node_id: str, connected: bool, version: str, peer: str) -> None:
        batch = append_node(self.ring, node_id, connected, version=version, peer=peer)
        self.fanout.publish(batch, self.ring)


def get_observer(app: Quart | None = None) -> ObserverService:
    service: ObserverService = get_runtime(app).components["observer"]
    return service


def init_app(app: Quart) -> None:
    runtime = get_runtime(app)
    settings = runtime.settings
    ring = EventRing(extra_int(settings, "FLOE_OBSERVER_RING_SIZE", 65_536,
                               low=1024, high=16_777_216))
    tracker = FlowTracker(extra_int(settings, "FLOE_OBSERVER_TRACKED_FLOWS", 262_144,
                                    low=1024, high=16_777_216))
    limits = ObserverLimits(
        streams=extra_int(settings, "FLOE_OBSERVER_MAX_STREAMS", 256, low=1, high=65_536),
        streams_per_principal=extra_int(settings, "FLOE_OBSERVER_STREAMS_PER_CREDENTIAL", 32,
                                        low=1, high=65_536),
        # at least one ingest slice (1,024 flow records), or one batch would overflow it
        queue_events=extra_int(settings, "FLOE_OBSERVER_QUEUE_EVENTS", 16_384,
                               low=1024, high=1_048_576),
    )
    fanout = Fanout()
    ingest = get_ingest(app)
    ingest.listeners.append(Observer(ring, tracker, fanout))
    service = ObserverService(ring, fanout, ingest.state, lambda: runtime.authenticator, limits)
    runtime.components["observer"] = service

    def register(server: grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers((service.handlers(),))

    add_service(app, SERVICE_NAME, register)
