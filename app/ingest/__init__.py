"""Control-plane side of the dataplane uplink: the gRPC servicer, the aggregate, the key.

`init_app` registers `floe.dataplane.v1.Uplink` on the shared grpc.aio server, adds the
"dataplane" readiness check, starts a one-second tick (rates, then a `{"type": "stats"}`
message to the telemetry hub when one is attached). The local dataplane key in
`$FLOE_DATA_DIR/dataplane.key` is provisioned by the identity layer (`ensure_dataplane_key`).

Readiness: zero connected dataplanes is *ready*. The control plane serves REST, identity and
rules without any dataplane, and a dataplane can only connect to a ready control plane; the
check's detail lists how many are connected so operators still see it.
"""

from __future__ import annotations

import asyncio
import logging
import time

import grpc
import orjson
from quart import Quart

from app.grpc.registry import add_service
from app.hub import Hub
from app.ingest.limits import IngestLimits
from app.ingest.metrics import IngestCollector
from app.ingest.rule_store import RuleStore
from app.ingest.service import END_REASON_NAMES, FLOW_STATE_NAMES, UplinkService, parse_uplink
from app.ingest.state import IngestState
from app.runtime import get_runtime
from app.tasks import cancel_and_wait

__all__ = [
    "END_REASON_NAMES", "FLOW_STATE_NAMES", "STATS_TOPIC", "get_ingest", "get_rule_store",
    "get_state", "init_app", "stats_topic",
]

log = logging.getLogger(__name__)

SERVICE_NAME = "floe.dataplane.v1.Uplink"
TICK_SECONDS = 1.0


def get_ingest(app: Quart | None = None) -> UplinkService:
    service: UplinkService = get_runtime(app).components["ingest"]
    return service


def get_state(app: Quart | None = None) -> IngestState:
    return get_ingest(app).state


def get_rule_store(app: Quart | None = None) -> RuleStore:
    store: RuleStore = get_runtime(app).components["rule_store"]
    return store


STATS_TOPIC = "stats"
_STATS_OF = STATS_TOPIC + "/"  # + a JSON list of node ids: the stats of those nodes only


def stats_topic(nodes: frozenset[str] | None) -> str:
    """The hub topic carrying stats of `nodes` (None: every node, topic "stats"). A caller
    limited to some nodes by resource grants subscribes to the topic of exactly those."""
    if nodes is None:
        return STATS_TOPIC
    return _STATS_OF + orjson.dumps(sorted(nodes)).decode()


def _publish(app: Quart, state: IngestState) -> None:
    """Each second: the stats message for every subscribed node set, serialised once per set."""
    hub: Hub | None = get_runtime(app).components.get("hub")
    if hub is None:
        return
    now = time.time()
    by_node: dict[str, dict[str, list[int]]] | None = None  # one pass, shared by all sets
    for topic in hub.topics(STATS_TOPIC):
        if topic == STATS_TOPIC:
            visible = None
        elif topic.startswith(_STATS_OF):
            visible = frozenset(orjson.loads(topic[len(_STATS_OF):]))
            if by_node is None:
                by_node = state.host_totals_by_node()
        else:
            continue
        message = {"type": "stats", "ts": now, "data": state.summary(visible),
                   "top_talkers": state.top_talkers(10, visible, by_node)}
        hub.publish(message, topic)


async def _ticker(app: Quart, state: IngestState) -> None:
    while True:
        await asyncio.sleep(TICK_SECONDS)
        try:
            state.tick()
            _publish(app, state)
        except Exception:  # a failing consumer must not stop the rates
            log.exception("ingest tick failed")


def init_app(app: Quart) -> None:
    runtime = get_runtime(app)
    state = IngestState(limits=IngestLimits.from_settings(runtime.settings))
    service = UplinkService(state, lambda: runtime.authenticator,
                            takeover_grace=runtime.settings.ingest_takeover_grace)
    runtime.components["ingest"] = service
    # When batches last arrived: the serving layer's loop fairness favours streams then.
    runtime.components["stream_activity"] = lambda: service.last_batch_at

    from floe.dataplane.v1 import uplink_pb2 as pb

    def register(server: grpc.aio.Server) -> None:
        # As the generated add_UplinkServicer_to_server, but each request keeps the bytes it
        # arrived as (`parse_uplink`): the cluster relay forwards batches without re-encoding.
        handlers = {"Connect": grpc.stream_stream_rpc_method_handler(
            service.Connect, request_deserializer=parse_uplink,
            response_serializer=pb.DownlinkMessage.SerializeToString)}
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
        server.add_registered_method_handlers(SERVICE_NAME, handlers)

    add_service(app, SERVICE_NAME, register)

    async def dataplane_ready() -> tuple[bool, str]:
        connected = state.connected_nodes()
        return True, f"{len(connected)} dataplane(s) connected of {len(state.nodes)} known"

    runtime.readiness["dataplane"] = dataplane_ready
    runtime.collectors.append(IngestCollector(state))
    tasks: list[asyncio.Task[None]] = []

    @app.before_serving
    async def _start() -> None:
        # The database layer opened before this hook (app.factory's order); the stored
        # rule set is current before any dataplane can connect.
        store = RuleStore(runtime.components["db"], service)
        runtime.components["rule_store"] = store
        await store.load()
        tasks.append(asyncio.create_task(_ticker(app, state), name="ingest-tick"))

    @app.after_serving
    async def _stop() -> None:
        await cancel_and_wait(tasks)
        tasks.clear()
