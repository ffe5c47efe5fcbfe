"""Live state shared by every control-plane instance (with REDIS_URL): the relay.

Without REDIS_URL (or with FLOE_RELAY=false) nothing here runs and one instance works
alone. With it, `init_app` attaches a `Relay` to the ingest service (it relays what this
instance's dataplane streams bring, and applies what the others relay), to the rule store
(a rule set committed here is announced; one committed elsewhere is loaded and pushed to
this instance's dataplanes), to `/stats/summary` (`relay`) and to `/metrics`. Why a Redis
stream of the input rather than shared state or pub/sub: docs/adr/0008-shared-live-state.md.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator

from quart import Quart

from app.cluster.metrics import RelayCollector
from app.cluster.relay import Relay, RelayLimits, RelayStats
from app.config import Settings, extra_bool, extra_float, extra_int
from app.ingest import get_ingest
from app.ingest.rule_store import RuleStore
from app.observer.events import append_lost
from app.runtime import get_runtime
from floe.observer.v1 import observer_pb2 as opb

__all__ = ["Relay", "RelayLimits", "RelayStats", "get_relay", "init_app", "limits_from",
           "stream_for"]

log = logging.getLogger(__name__)


def stream_for(deployment: str) -> str:
    """The stream key of one deployment (instances sharing SECRET_KEY share it)."""
    return "floe:relay:" + deployment


def limits_from(settings: Settings) -> RelayLimits:
    return RelayLimits(
        stream_maxlen=extra_int(settings, "FLOE_RELAY_STREAM_MAXLEN", 10_000,
                                low=100, high=10_000_000),
        max_entry_bytes=extra_int(settings, "FLOE_RELAY_MAX_ENTRY_BYTES", 4 << 20,
                                  low=64 << 10, high=256 << 20),
        queue_bytes=extra_int(settings, "FLOE_RELAY_QUEUE_BYTES", 64 << 20,
                              low=1 << 20, high=4 << 30),
        heartbeat_seconds=extra_float(settings, "FLOE_RELAY_HEARTBEAT_SECONDS", 1.0,
                                      low=0.1, high=60.0),
        node_ttl_seconds=extra_float(settings, "FLOE_RELAY_NODE_TTL_SECONDS", 5.0,
                                     low=0.5, high=3600.0),
    )


def get_relay(app: Quart | None = None) -> Relay | None:
    relay: Relay | None = get_runtime(app).components.get("relay")
    return relay


def init_app(app: Quart) -> None:
    runtime = get_runtime(app)
    settings = runtime.settings
    if not settings.redis_url or not extra_bool(settings, "FLOE_RELAY", True):
        return
    limits = limits_from(settings)
    if limits.node_ttl_seconds <= limits.heartbeat_seconds:
        from app.config import ConfigError

        raise ConfigError("FLOE_RELAY_NODE_TTL_SECONDS must be longer than "
                          "FLOE_RELAY_HEARTBEAT_SECONDS")
    ingest = get_ingest(app)

    def rules() -> RuleStore | None:
        store: RuleStore | None = runtime.components.get("rule_store")
        return store

    # The stream is named once the identity layer has resolved SECRET_KEY (start-up).
    relay = Relay(settings.redis_url, "", ingest, rules, limits)
    runtime.components["relay"] = relay
    ingest.relay = relay
    ingest.state.relay = relay.status
    runtime.collectors.append(RelayCollector(relay))
    observer = runtime.components.get("observer")
    if observer is not None:  # flow followers learn what the relay lost, as a LostEvent

        def lost(count: int, origin: str) -> None:
            batch = append_lost(observer.ring, "", count,
                                source=opb.LOST_EVENT_SOURCE_RELAY, detail=origin)
            observer.fanout.publish(batch, observer.ring)

        relay.on_lost = lost
    exporter = runtime.components.get("ipfix")
    if exporter is not None:  # IPFIX: each record once, from the instance holding the stream
        state = ingest.state

        def exports(node_id: str) -> bool:
            node = state.nodes.get(node_id)
            return node is None or not node.control_plane

        exporter.queue.exports = exports

    @app.while_serving
    async def _relay_lifespan() -> AsyncGenerator[None, None]:
        # The rule store and the identity secret exist once the before_serving hooks ran.
        relay.stream = stream_for(runtime.components.get("deployment", "default"))
        store = rules()
        if store is not None:
            store.on_replaced.append(relay.rules_replaced)
        relay.start()
        log.info("relay: instance %s shares live state through Redis stream %s (MAXLEN ~%d)",
                 relay.instance, relay.stream, limits.stream_maxlen)
        yield
        await relay.stop()
