"""The `floe.dataplane.v1.Uplink` servicer: authenticates, sequences and applies batches.

One `Connect` stream per dataplane process. The reader applies each batch at most once per
(node, instance) and queues an Ack; one writer task owns `context.write` so acks, rule sets
and config never interleave on the wire.

One node, one live stream: a Hello for a node that already has a live stream is refused with
ALREADY_EXISTS naming the node, the peer it is connected from and since when, and the live
one keeps its session, rule sets and figures. Only a stream that has been silent for
INGEST_TAKEOVER_GRACE seconds (a dataplane sends a batch every tick, so a silent stream is a
dead peer the transport has not noticed yet), or the same dataplane process reconnecting
(same instance, same key), is replaced, and the replaced stream ends with ABORTED saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc

from app.api.envelope import ApiError
from app.grpc.auth import REAUTH_SECONDS, bearer_credential
from app.identity.policy import Action, decide
from app.ingest.state import IngestState
from app.nodeid import MAX_NODE_ID, valid_node_id
from app.types import Authenticator, Principal
from floe.dataplane.v1 import uplink_pb2 as pb

__all__ = [
    "END_REASON_NAMES", "FLOW_STATE_NAMES", "REAUTH_SECONDS", "WRITE_SCOPE", "Received",
    "Session", "UplinkRelay", "UplinkService", "parse_uplink", "received",
]

log = logging.getLogger(__name__)

WRITE_SCOPE = "dataplane:write"
_OUT_QUEUE = 256


_WAKE = object()  # queued to make the writer look at `Session.states`


@dataclass(slots=True, frozen=True)
class _Refusal:
    code: grpc.StatusCode
    message: str


_UNAVAILABLE = _Refusal(grpc.StatusCode.UNAVAILABLE, "authentication is temporarily unavailable")


@dataclass(slots=True)
class Session:
    """One live stream: who it is and what still has to be written to it.

    Acks wait for room in `out` (backpressure on the reader). Rule sets and config are full
    states: `send_state` keeps only the newest of each kind until the writer takes it, so a
    full queue can delay one but never lose it (the newer state supersedes the older).
    """

    node_id: str
    instance_id: str
    credential: str = field(default="", repr=False)  # re-checked while the stream lives
    out: asyncio.Queue[Any] = field(default_factory=lambda: asyncio.Queue(_OUT_QUEUE))
    states: dict[str, Any] = field(default_factory=dict)  # kind -> newest unwritten message
    peer: str = ""  # where the stream comes from (gRPC's peer string)
    principal: str = ""  # the key's subject
    since: float = field(default_factory=time.time)  # opened (wall clock)
    heard: float = field(default_factory=time.monotonic)  # last message from the dataplane
    replaced: asyncio.Event = field(default_factory=asyncio.Event)  # another stream took over
    replaced_why: str = ""
    hello: Any = None  # the stream's pb.Hello (the cluster relay re-announces it)

    def send(self, message: Any) -> None:
        """Queue a message that must go out in order (the Welcome, at open: queue empty)."""
        self.out.put_nowait(message)

    def send_state(self, kind: str, message: Any) -> None:
        self.states[kind] = message  # a newer full state supersedes an unwritten older one
        with contextlib.suppress(asyncio.QueueFull):  # a full queue wakes the writer anyway
            self.out.put_nowait(_WAKE)

    def take_states(self) -> list[Any]:
        states = list(self.states.values())
        self.states.clear()
        return states


MAX_ERROR = 1024  # characters of a dataplane's rule error kept (shown in GET /nodes)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ERROR else text[:MAX_ERROR - 1] + "…"


def _enum_name(enum: Any, value: int, prefix: str) -> str:
    try:
        name: str = enum.Name(value)
    except ValueError:
        return str(value)
    return name.removeprefix(prefix).lower()


def _enum_names(enum: Any, prefix: str) -> dict[int, str]:
    return {value: _enum_name(enum, value, prefix) for value in enum.values()}


_FLOW_SLICE = 1024  # flow records applied between two turns of the event loop
_FLOW_STATES = _enum_names(pb.FlowState, "FLOW_STATE_")
_END_REASONS = _enum_names(pb.EndReason, "END_REASON_")
FLOW_STATE_NAMES = frozenset(_FLOW_STATES.values())  # what a flow record's "state" can be
END_REASON_NAMES = frozenset(_END_REASONS.values())


class IngestListener(Protocol):
    """Told what each applied batch brought (the observer layer listens): called on the event
    loop, after the state has it; must not block."""

    def flows(self, node_id: str, records: Sequence[Any]) -> None: ...

    def loss(self, node_id: str, interface: str, source: str, detail: str, count: int) -> None:
        ...

    def node(self, node_id: str, connected: bool, version: str, peer: str) -> None: ...


@dataclass(slots=True, frozen=True)
class Received:
    """An uplink message with the bytes it arrived as: the relay forwards them as they are
    (re-encoding a 16k-flow batch took ~11 ms of the event loop; parsing it, ~3 ms)."""

    message: Any
    raw: bytes


def parse_uplink(raw: bytes) -> Received:
    """The request deserializer of `Connect` (registered by `app.ingest`)."""
    return Received(pb.UplinkMessage.FromString(raw), raw)


def received(item: Any) -> tuple[Any, bytes]:
    """(message, raw bytes) from what `context.read()` gave (a plain message: no bytes)."""
    if isinstance(item, Received):
        return item.message, item.raw
    return item, b""


class UplinkRelay(Protocol):
    """Told what this instance's own dataplane streams bring, so other control-plane
    instances can apply the same input (`app.cluster`); called on the event loop after the
    local state has it; must not block. Relayed input never comes back through here."""

    def opened(self, session: Session) -> None: ...

    def closed(self, session: Session) -> None: ...

    def batch(self, node_id: str, instance_id: str, batch: Any, raw: bytes) -> None:
        """`raw`: the UplinkMessage bytes as received (b"" when unknown)."""

    def applied(self, node_id: str, applied: Any) -> None: ...


def _utc(unix: float) -> str:
    return datetime.datetime.fromtimestamp(unix, datetime.UTC).isoformat(timespec="seconds")


HELLO_WAIT = 2.0  # seconds a refused client gets to finish sending its Hello
MAX_HELLO_WAITS = 64  # refused streams waiting for their Hello at once; past it, refused at once


class UplinkService:
    """Registered on the shared grpc.aio server by `app.ingest.init_app`."""

    def __init__(self, state: IngestState, authenticator: Any, tick_ms: int = 100,
                 takeover_grace: float = 30.0) -> None:
        self.state = state
        self._authenticator = authenticator  # callable returning the current Authenticator
        self.tick_ms = tick_ms
        self.takeover_grace = takeover_grace  # INGEST_TAKEOVER_GRACE
        self.sessions: dict[str, Session] = {}
        self.rules: Any = None  # newest pb.RuleSet, sent to every node on connect
        self.config: Any = None  # newest pb.Config
        self.auth_failures = 0
        self._hello_waits = 0  # refused streams in _await_hello now (<= MAX_HELLO_WAITS)
        self._applying: dict[tuple[str, str, int], asyncio.Event] = {}  # batches mid-apply
        self.listeners: list[IngestListener] = []
        self.last_batch_at = 0.0  # time.monotonic() of the newest batch (loop fairness reads it)
        self.relay: UplinkRelay | None = None  # set by app.cluster when REDIS_URL is set

    # -- downlink API for other layers --------------------------------------------------
    def set_rules(self, rules: Any) -> None:
        """Make `rules` (a pb.RuleSet) current and push it to every connected dataplane."""
        self.rules = rules
        self.state.set_rule_ids(rule.id for rule in rules.rules)  # hits may name only these
        for session in self.sessions.values():
            session.send_state("rules", pb.DownlinkMessage(rules=rules))

    def set_config(self, config: Any) -> None:
        self.config = config
        for session in self.sessions.values():
            session.send_state("config", pb.DownlinkMessage(config=config))

    # -- the RPC --------------------------------------------------------------------------
    async def _check(self, credential: str, node: str | None) -> _Refusal | None:
        """Why this credential may not (or no longer) speak for `node`, or None when it may."""
        return (await self._verdict(credential, node))[1]

    async def _verdict(
        self, credential: str, node: str | None
    ) -> tuple[Principal | None, _Refusal | None]:
        """(who, why not): the caller and why it may not (or no longer) speak for `node`.

        Asked at open, again for every batch (a cache hit: a few µs) and every
        REAUTH_SECONDS on an idle stream, so a revoked or expired key, a deactivated owner or
        a lost scope ends the stream before anything more is acknowledged. When the check
        needs the database and it is down, the stream goes on (it was allowed a moment ago).
        """
        authenticator: Authenticator | None = self._authenticator()
        if not credential or authenticator is None:
            return None, _Refusal(grpc.StatusCode.UNAUTHENTICATED, "a bearer API key is required")
        try:
            principal = await authenticator.authenticate(credential)
        except ApiError as error:
            if error.status < 500:
                raise
            if node is None:  # at open: cannot tell, so do not let it in
                return None, _Refusal(grpc.StatusCode.UNAVAILABLE,
                                      "authentication is temporarily unavailable")
            return None, None
        if principal is None:
            return None, _Refusal(grpc.StatusCode.UNAUTHENTICATED,
                                  "the API key is invalid, expired or revoked")
        decision = decide(principal, Action.NODE_CONNECT, node=node)
        if not decision.allowed:
            return principal, _Refusal(grpc.StatusCode.PERMISSION_DENIED, decision.reason)
        return principal, None

    async def _await_hello(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        """Before refusing an authenticated caller's stream at open (a user login, a key
        without the scope), take the client's first message (its Hello: one message, bounded
        by the server's message size limit, for at most HELLO_WAIT s). A refusal sent while
        the client is still writing can reach it as a reset stream (INTERNAL) instead of the
        refusal's own status and reason; seen once in ~200 runs of six parallel opens. At most
        MAX_HELLO_WAITS streams wait at once: a caller opening refused streams in bulk gets the
        rest refused at once, so it cannot hold more than that for the wait."""
        if self._hello_waits >= MAX_HELLO_WAITS:
            return
        self._hello_waits += 1
        try:
            with contextlib.suppress(TimeoutError, grpc.RpcError):
                async with asyncio.timeout(HELLO_WAIT):
                    await context.read()
        finally:
            self._hello_waits -= 1

    async def _refuse(self, context: grpc.aio.ServicerContext[Any, Any],
                      refusal: _Refusal) -> None:
        self.auth_failures += 1
        await context.abort(refusal.code, refusal.message)

    async def Connect(
        self, request_iterator: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        credential = bearer_credential(context)
        principal, refusal = await self._verdict(credential, None)
        if refusal is not None or principal is None:
            if principal is not None:  # a known caller: an unknown one gets no time to hold
                await self._await_hello(context)
            await self._refuse(context, refusal or _UNAVAILABLE)
            raise AssertionError("unreachable")  # abort raises
        first, _ = received(await context.read())
        if first is grpc.aio.EOF or first.WhichOneof("body") != "hello":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first message must be Hello")
        hello = first.hello
        if not hello.node_id or not hello.instance_id:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "Hello needs node_id and instance_id"
            )
        if not valid_node_id(hello.node_id):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"node_id must be 1-{MAX_NODE_ID} printable characters, no , or * (it names "
                "the node in grants: node/<id>)",
            )
        refusal = await self._check(credential, hello.node_id)
        if refusal is not None:
            await self._refuse(context, refusal)
        bounded = self.state.admit(hello)  # message limits, INGEST_MAX_NODES
        if bounded is not None:
            await context.abort(getattr(grpc.StatusCode, bounded.status), bounded.message)
        in_use = self._claim(hello, principal.subject, context.peer())
        if in_use is not None:
            await context.abort(in_use.code, in_use.message)
        session = self._open(hello, principal.subject, context.peer())
        session.credential = credential
        writer = asyncio.create_task(self._write(session, context), name="uplink-writer")
        reader = asyncio.create_task(self._read(session, context), name="uplink-reader")
        watcher = asyncio.create_task(self._watch(session), name="uplink-reauth")
        replaced = asyncio.create_task(session.replaced.wait(), name="uplink-replaced")
        try:
            done, _ = await asyncio.wait((reader, watcher, replaced),
                                         return_when=asyncio.FIRST_COMPLETED)
            refusal = next((task.result() for task in (reader, watcher)
                            if task in done and task.result() is not None), None)
        finally:
            self._close(session)
            for task in (reader, watcher, writer, replaced):
                task.cancel()
            await asyncio.gather(reader, watcher, writer, replaced, return_exceptions=True)
        if refusal is not None:
            await self._refuse(context, refusal)
        if session.replaced.is_set():
            await context.abort(grpc.StatusCode.ABORTED, session.replaced_why)

    async def _read(self, session: Session,
                    context: grpc.aio.ServicerContext[Any, Any]) -> _Refusal | None:
        """Apply and acknowledge batches until the client closes; a refusal ends it first."""
        while True:
            message, raw = received(await context.read())
            if message is grpc.aio.EOF:
                return None
            kind = message.WhichOneof("body")
            if kind == "batch":
                self.last_batch_at = time.monotonic()
                refusal = await self._check(session.credential, session.node_id)
                if refusal is not None:
                    return refusal  # nothing from a revoked key is applied or acknowledged
                applied = await self._apply(session.node_id, session.instance_id,
                                            message.batch)
                if applied and self.relay is not None:
                    self.relay.batch(session.node_id, session.instance_id, message.batch, raw)
                await session.out.put(pb.DownlinkMessage(ack=pb.Ack(seq=message.batch.seq)))
            elif kind == "applied":
                self.record_applied(session.node_id, message.applied)
                if self.relay is not None:
                    self.relay.applied(session.node_id, message.applied)
            session.heard = time.monotonic()
            self.state.node(session.node_id).last_seen = time.time()

    async def _watch(self, session: Session) -> _Refusal | None:
        """Re-check the credential of an idle stream every REAUTH_SECONDS (a busy one is
        checked at every batch)."""
        while True:
            await asyncio.sleep(REAUTH_SECONDS)
            refusal = await self._check(session.credential, session.node_id)
            if refusal is not None:
                return refusal

    async def _write(self, session: Session, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        while True:
            message = await session.out.get()
            if message is not _WAKE:
                await context.write(message)
            for state in session.take_states():
                await context.write(state)

    # -- bookkeeping ----------------------------------------------------------------------
    def _claim(self, hello: Any, subject: str, peer: str) -> _Refusal | None:
        """Why `hello` may not have its node (ALREADY_EXISTS: another live stream has it),
        or None; a dead stream in the way is told it is replaced (see the module doc)."""
        node_id = hello.node_id
        current = self.sessions.get(node_id)
        if current is None:
            return self._claim_relayed(hello, subject, peer)
        silent = time.monotonic() - current.heard
        if current.instance_id == hello.instance_id and current.principal == subject:
            why = f"the same dataplane (instance {hello.instance_id}) reconnected from {peer}"
        elif silent >= self.takeover_grace:
            why = (f"a new stream from {peer} (instance {hello.instance_id}) took over after "
                   f"{silent:.0f} s of silence (INGEST_TAKEOVER_GRACE={self.takeover_grace:g})")
        else:
            self.state.refuse(node_id, "node_in_use")  # counted; logged once per node
            log.info("dataplane %s from %s refused: the node is connected from %s",
                     node_id, peer, current.peer)
            return _Refusal(
                grpc.StatusCode.ALREADY_EXISTS,
                f"node {node_id!r} is already connected from {current.peer} since "
                f"{_utc(current.since)} (instance {current.instance_id}, last heard "
                f"{silent:.1f} s ago); a second dataplane may not take it over: give this "
                f"one its own node id (--node-id or FLOE_NODE_ID) or stop the other. A "
                f"stream silent for INGEST_TAKEOVER_GRACE={self.takeover_grace:g} s is "
                "replaced")
        log.warning("dataplane %s: the stream from %s since %s is replaced: %s", node_id,
                    current.peer, _utc(current.since), why)
        current.replaced_why = f"node {node_id!r}: this stream was replaced: {why}"
        current.replaced.set()
        self.state.node(node_id).takeovers += 1
        return None

    def _claim_relayed(self, hello: Any, subject: str, peer: str) -> _Refusal | None:
        """One node, one stream across control-plane instances too: a node whose live stream
        is on another instance (relayed, app.cluster) is refused here on the same terms,
        unless the Hello is from the same dataplane process (its stream broke and the load
        balancer sent it here) or the node has been silent for INGEST_TAKEOVER_GRACE."""
        node = self.state.nodes.get(hello.node_id)
        if node is None or not node.connected or not node.control_plane:
            return None
        silent = time.time() - node.last_seen
        if ((node.instance_id == hello.instance_id and node.principal == subject)
                or silent >= self.takeover_grace):
            log.warning("dataplane %s from %s takes over the stream on control-plane instance "
                        "%s", hello.node_id, peer, node.control_plane)
            return None
        self.state.refuse(hello.node_id, "node_in_use")
        log.info("dataplane %s from %s refused: the node is connected to control-plane "
                 "instance %s", hello.node_id, peer, node.control_plane)
        return _Refusal(
            grpc.StatusCode.ALREADY_EXISTS,
            f"node {hello.node_id!r} is already connected to control-plane instance "
            f"{node.control_plane} from {node.peer} since {_utc(node.connected_since)} "
            f"(instance {node.instance_id}, last heard {silent:.1f} s ago); a second "
            "dataplane may not take it over: give this one its own node id (--node-id or "
            f"FLOE_NODE_ID) or stop the other. A stream silent for "
            f"INGEST_TAKEOVER_GRACE={self.takeover_grace:g} s is replaced")

    def _connected(self, hello: Any, subject: str, peer: str, since: float,
                   control_plane: str = "") -> Any:
        """Record a node's stream as connected (here, or on `control_plane` when relayed)."""
        node = self.state.node(hello.node_id)
        node.instance_id = hello.instance_id
        node.boot_id = hello.boot_id
        node.version = hello.version
        node.peer = peer
        node.principal = subject
        node.capabilities = tuple(hello.capabilities)
        node.connected = True
        node.control_plane = control_plane
        node.connected_since = since
        node.last_seen = time.time()
        self.state.changed()
        node.connections += 1
        for info in hello.interfaces:
            iface = self.state.admit_interface(hello.node_id, info.name)
            if iface is None:  # past INGEST_MAX_INTERFACES: counted
                continue
            iface.mode = _enum_name(pb.Mode, info.mode, "MODE_")
            iface.attach_mode = _enum_name(pb.AttachMode, info.attach_mode, "ATTACH_MODE_")
            iface.xsk_mode = _enum_name(pb.XskMode, info.xsk_mode, "XSK_MODE_")
        return node

    def _open(self, hello: Any, subject: str, peer: str) -> Session:
        node = self._connected(hello, subject, peer, time.time())
        session = Session(node_id=hello.node_id, instance_id=hello.instance_id, peer=peer,
                          principal=subject, since=node.connected_since, hello=hello)
        self.sessions[hello.node_id] = session
        applied = node.applied_seq.get(hello.instance_id, 0)
        session.send(
            pb.DownlinkMessage(welcome=pb.Welcome(last_applied_seq=applied, tick_ms=self.tick_ms))
        )
        if self.rules is not None:
            session.send_state("rules", pb.DownlinkMessage(rules=self.rules))
        if self.config is not None:
            session.send_state("config", pb.DownlinkMessage(config=self.config))
        log.info("dataplane %s connected (instance %s, %s)", hello.node_id, hello.instance_id, peer)
        for listener in self.listeners:
            listener.node(hello.node_id, True, hello.version, peer)
        if self.relay is not None:
            self.relay.opened(session)
        return session

    def _close(self, session: Session) -> None:
        if self.sessions.get(session.node_id) is session:
            del self.sessions[session.node_id]
            node = self.state.node(session.node_id)
            node.connected = False
            self.state.changed()
            log.info("dataplane %s disconnected", session.node_id)
            for listener in self.listeners:
                listener.node(session.node_id, False, node.version, node.peer)
            if self.relay is not None:
                self.relay.closed(session)

    async def _apply(self, node_id: str, instance: str, batch: Any) -> bool:
        """Fold one batch into the state, at most once per (node, instance, seq).

        Flow records go in slices of _FLOW_SLICE with the loop free between them (a 16k-flow
        batch is ~50 ms of work). While a batch is being applied, the same seq arriving on
        another stream (a reconnect overtaking the old one) waits for it: if the first apply
        finishes, the second is a duplicate; if it was cancelled half way, the second applies
        the batch again — counters, losses and hits are max-merged and flow records are upserts
        of cumulative values, so nothing counts twice. The tick's aggregates, which are not
        idempotent, are added only at the end, in the same turn as the batch is marked applied.
        """
        if batch.seq == 0:
            return False
        key = (node_id, instance, batch.seq)
        while (pending := self._applying.get(key)) is not None:
            await pending.wait()
        if not self.state.should_apply(node_id, instance, batch.seq):
            return False
        done = asyncio.Event()
        self._applying[key] = done
        try:
            await self._fold(node_id, instance, batch)
        finally:
            del self._applying[key]
            done.set()
        return True

    async def _fold(self, node_id: str, instance: str, batch: Any) -> None:
        state = self.state
        for snap in batch.counters:
            state.apply_counters(
                node_id, snap.interface, snap.counter_epoch, dict(snap.values), snap.taken_unix_ns
            )
        for loss in batch.losses:
            source = _enum_name(pb.LossSource, loss.source, "LOSS_SOURCE_")
            more = state.apply_loss(node_id, instance, loss.interface, source, loss.detail,
                                    loss.count)
            for listener in self.listeners:
                listener.loss(node_id, loss.interface, source, loss.detail, more)
        for hits in batch.rule_hits:
            state.apply_rule_hits(
                node_id,
                hits.interface,
                hits.counter_epoch or instance,
                hits.rule_id,
                hits.packets,
                hits.bytes,
            )
        flows = batch.flows
        for start in range(0, len(flows), _FLOW_SLICE):
            records = flows[start:start + _FLOW_SLICE]
            state.apply_flows(node_id, records, _FLOW_STATES, _END_REASONS)
            for listener in self.listeners:
                listener.flows(node_id, records)
            await asyncio.sleep(0)
        for aggregate in batch.aggregates:
            state.apply_aggregate(node_id, aggregate, instance)
        state.mark_applied(node_id, instance, batch.seq)

    def record_applied(self, node_id: str, applied: Any) -> None:
        """A dataplane's `Applied` (here, or relayed from the instance its stream is on)."""
        node = self.state.node(node_id)
        if applied.kind == pb.Applied.KIND_RULES:
            node.rules_generation = applied.generation if applied.ok else node.rules_generation
            node.rules_error = "" if applied.ok else _clip(applied.error)
        elif applied.kind == pb.Applied.KIND_CONFIG and applied.ok:
            node.config_generation = applied.generation

    # -- input relayed from other control-plane instances (app.cluster) -------------------
    async def apply_relayed(self, node_id: str, instance: str, batch: Any) -> bool:
        """Apply a batch another instance accepted, through the same bounds and de-dup as a
        local one; False when it was a duplicate or its node is past INGEST_MAX_NODES."""
        if node_id not in self.state.nodes and not self.state.admit_node(node_id):
            return False
        return await self._apply(node_id, instance, batch)

    def relayed_open(self, hello: Any, subject: str, peer: str, since: float,
                     control_plane: str) -> bool:
        """A node's stream is on instance `control_plane`: show it connected here too.

        Ignored while this instance holds the node's stream itself (the local one wins) —
        unless that local stream is of the same dataplane process and older: the process
        has reconnected elsewhere, so the local stream is dead and is ended (ABORTED). An
        announcement of a stream older than the one shown (an instance that has not yet
        noticed its stream ended) is ignored too. False when ignored or past a bound."""
        current = self.sessions.get(hello.node_id)
        if current is not None:
            if current.instance_id == hello.instance_id and since > current.since:
                current.replaced_why = (f"node {hello.node_id!r}: this stream was replaced: "
                                        "the same dataplane reconnected to control-plane "
                                        f"instance {control_plane}")
                current.replaced.set()
            return False
        node = self.state.nodes.get(hello.node_id)
        if node is not None and node.connected and node.control_plane:
            if (node.control_plane == control_plane
                    and node.instance_id == hello.instance_id):
                return True  # a heartbeat of what is known already
            if since < node.connected_since:
                return False  # a stale stream on another instance
        if self.state.admit(hello) is not None:
            return False
        self._connected(hello, subject, peer, since, control_plane)
        for listener in self.listeners:
            listener.node(hello.node_id, True, hello.version, peer)
        return True

    def relayed_close(self, node_id: str, control_plane: str) -> None:
        """The node's stream on `control_plane` ended (or that instance went silent)."""
        node = self.state.nodes.get(node_id)
        if (node_id in self.sessions or node is None or not node.connected
                or node.control_plane != control_plane):
            return
        node.connected = False
        self.state.changed()
        for listener in self.listeners:
            listener.node(node_id, False, node.version, node.peer)
