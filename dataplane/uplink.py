"""The dataplane's gRPC client: numbered batches, a bounded resend buffer, backoff with jitter,
failover between control-plane addresses (`Rotation`).

Every batch gets the next sequence number of this process (`instance_id`) and stays in the
buffer until the control plane acks it; after a reconnect the control plane's Welcome says
what it already applied and the rest is resent in order. When the buffer is full the oldest
batch is dropped and counted; the count rides on every later batch as a cumulative
`LOSS_SOURCE_UPLINK_BUFFER` report, so the loss is visible, never silent. Counters are
absolute snapshots, so a dropped batch loses flow records only, never packet totals.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from dataplane.flowwire import EncodedFlows
from floe.dataplane.v1 import uplink_pb2 as pb
from floe.dataplane.v1 import uplink_pb2_grpc

__all__ = ["Rotation", "UplinkClient", "UplinkStats", "backoff_delay"]

log = logging.getLogger(__name__)

RulesHandler = Callable[[Any], Awaitable[None]]  # raises to report a failed apply
TlsMaterial = Callable[[str], tuple[grpc.ChannelCredentials, str]]  # per address
_FATAL = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


def backoff_delay(attempt: int, initial: float, maximum: float) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random, capped."""
    ceiling = min(maximum, initial * (2 ** min(attempt, 30)))
    return float(ceiling / 2 + random.uniform(0, ceiling / 2))  # noqa: S311 - jitter, not crypto


@dataclass(slots=True)
class Rotation:
    """Which control-plane address to dial next, and when to back off.

    A failed attempt or a lost stream moves on to the next address at once; only when every
    address has failed in a row (a round) does the uplink wait, with backoff that grows per
    round. A Welcome ends the search: the uplink stays on that instance for as long as its
    stream lives (no moving back to the first address), so instances that come back do not
    pull dataplanes around, and a dead address costs one attempt per round, never a busy loop.
    """

    addresses: tuple[str, ...]
    index: int = 0  # the address in use, or being tried
    tried: int = 0  # addresses failed since this round began
    rounds: int = 0  # rounds failed in a row: the backoff exponent (-1 just after a Welcome)

    def __post_init__(self) -> None:
        if not self.addresses:
            raise ValueError("at least one control-plane address")

    @property
    def address(self) -> str:
        return self.addresses[self.index]

    def connected(self) -> None:
        """A Welcome: the next loss starts a fresh round, and a round lost right after a
        session waits the shortest backoff (as a single address always did)."""
        self.tried = 0
        self.rounds = -1

    def failed(self) -> int | None:
        """The attempt on `address` failed (or its stream ended): move to the next address.
        Returns the backoff exponent when a round is complete, else None (dial at once)."""
        self.index = (self.index + 1) % len(self.addresses)
        self.tried += 1
        if self.tried < len(self.addresses):
            return None
        self.tried = 0
        self.rounds += 1
        return self.rounds


@dataclass(slots=True)
class UplinkStats:
    connected: bool = False
    target: str = ""  # the address in use (connected) or being tried
    failovers: int = 0  # Welcomes from another address than the previous Welcome's
    connects: int = 0
    failures: int = 0
    auth_failures: int = 0
    batches_built: int = 0
    batches_sent: int = 0
    acked_seq: int = 0
    dropped_batches: int = 0
    dropped_records: int = 0
    last_error: str = ""
    last_ack_monotonic: float = 0.0  # time.monotonic() of the last Welcome or Ack; 0: none yet


class UplinkClient:
    """Owns one stream at a time; `run()` keeps reconnecting until `stop()`, going through
    `targets` in order (`Rotation`)."""

    def __init__(
        self,
        targets: str | Sequence[str],
        key_provider: Callable[[], str],
        hello: Callable[[], Any],
        *,
        on_rules: RulesHandler | None = None,
        on_config: RulesHandler | None = None,
        max_buffered: int = 600,
        backoff_initial: float = 0.2,
        backoff_max: float = 10.0,
        welcome_timeout: float = 10.0,
        connect_timeout: float = 3.0,
        tls: TlsMaterial | None = None,
    ) -> None:
        if max_buffered < 1:
            raise ValueError("max_buffered must be at least 1")
        self.rotation = Rotation((targets,) if isinstance(targets, str) else tuple(targets))
        self._key = key_provider
        self._hello = hello
        self._on_rules = on_rules
        self._on_config = on_config
        self.max_buffered = max_buffered
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.welcome_timeout = welcome_timeout
        self.connect_timeout = connect_timeout
        self._tls = tls  # per session and address: (credentials, certificate name); None: plaintext
        self._last_target = ""  # the address of the last Welcome
        self._warned = ""
        self._failing = 0  # attempts in a row without a Welcome (backoff, warnings)
        self.stats = UplinkStats(target=self.rotation.address)
        self._seq = 0
        self._buffer: deque[Any] = deque()
        self._control: deque[Any] = deque(maxlen=64)  # Applied answers waiting to be written
        self._wakeup = asyncio.Event()
        self._acked = asyncio.Event()
        self._stopping = asyncio.Event()

    # -- producer side ------------------------------------------------------------------
    @property
    def target(self) -> str:
        """The address in use, or being tried."""
        return self.rotation.address

    @property
    def targets(self) -> tuple[str, ...]:
        return self.rotation.addresses

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def submit(
        self,
        counters: Iterable[Any] = (),
        flows: EncodedFlows | Iterable[Any] = (),
        losses: Iterable[Any] = (),
        rule_hits: Iterable[Any] = (),
        aggregates: Iterable[Any] = (),
    ) -> int:
        """Number and buffer one batch; returns its seq. Never blocks, never raises on overflow.

        `flows` is either FlowRecord messages or `EncodedFlows` (their wire form, merged with
        one upb parse instead of a copy per message)."""
        while len(self._buffer) >= self.max_buffered:
            dropped = self._buffer.popleft()
            self.stats.dropped_batches += 1
            self.stats.dropped_records += len(dropped.flows)
        self._seq += 1
        batch = pb.Batch(seq=self._seq, created_unix_ns=time.time_ns())
        batch.counters.extend(counters)
        if isinstance(flows, EncodedFlows):
            batch.MergeFromString(flows.wire)
        else:
            batch.flows.extend(flows)
        batch.losses.extend(losses)
        batch.losses.extend(self.loss_reports())
        batch.rule_hits.extend(rule_hits)
        batch.aggregates.extend(aggregates)
        self._buffer.append(batch)
        self.stats.batches_built += 1
        self._wakeup.set()
        return self._seq

    def loss_reports(self) -> list[Any]:
        """The uplink's own loss, cumulative for this instance."""
        source = pb.LOSS_SOURCE_UPLINK_BUFFER
        return [
            pb.LossReport(source=source, count=self.stats.dropped_batches, detail="batches"),
            pb.LossReport(source=source, count=self.stats.dropped_records, detail="flow_records"),
        ]

    async def flush(self, within: float) -> bool:
        """Wait until every submitted batch is acked (True) or `within` seconds pass (False)."""
        deadline = time.monotonic() + within
        while self.stats.acked_seq < self._seq:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._acked.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._acked.wait(), remaining)
        return True

    def stop(self) -> None:
        self._stopping.set()
        self._wakeup.set()

    # -- connection loop ------------------------------------------------------------------
    async def run(self) -> None:
        while not self._stopping.is_set():
            self.stats.target = self.rotation.address
            try:
                await self._session()
            except grpc.aio.AioRpcError as error:
                self.stats.failures += 1
                self._failing += 1  # every failed attempt lengthens the backoff, refusals too
                self.stats.last_error = f"{error.code().name}: {error.details()}"
                if error.code() in _FATAL:
                    self.stats.auth_failures += 1
                    log.error("control plane %s refused the key: %s", self.target,
                              self.stats.last_error)
                elif error.code() == grpc.StatusCode.ALREADY_EXISTS:
                    self._node_in_use(error.details() or "")
                else:
                    self._failed()
            except (OSError, TimeoutError, ConnectionError) as error:
                self.stats.failures += 1
                self._failing += 1
                self.stats.last_error = repr(error)
                self._failed()
            finally:
                self.stats.connected = False
            if self._stopping.is_set():
                break
            exponent = self.rotation.failed()
            if exponent is None:
                continue  # the next address, at once
            delay = backoff_delay(max(0, exponent), self.backoff_initial, self.backoff_max)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)

    def _node_in_use(self, details: str) -> None:
        """Another live dataplane has our node id: an error once (the retries that follow
        take over when that one stops), not a warning per attempt."""
        if self._warned != "ALREADY_EXISTS":
            self._warned = "ALREADY_EXISTS"
            log.error("control plane refused this dataplane: %s", details)
        else:
            log.info("node id still in use: %s", details)

    def _failed(self) -> None:
        """Log a failed attempt or a lost stream (run() has counted it): info while it may be
        passing, a warning (once per distinct error) from the third attempt in a row that
        never got a Welcome — a TLS name mismatch must not hide in info logs."""
        error = self.stats.last_error
        if self._failing >= 3 and error != self._warned:
            self._warned = error
            log.warning("uplink to %s keeps failing (%d attempts): %s", self.target,
                        self._failing, error)
        else:
            log.info("uplink to %s failed: %s", self.target, error)

    async def _session(self) -> None:
        target = self.rotation.address
        key = self._key()
        metadata = (("authorization", f"Bearer {key}"),) if key else ()
        options: list[tuple[str, int | str]] = [
            ("grpc.keepalive_time_ms", 10_000),
            ("grpc.keepalive_timeout_ms", 5_000),
            ("grpc.max_reconnect_backoff_ms", 2_000),
        ]
        if self._tls is not None:  # read each session: certificates change and appear
            credentials, server_name = await asyncio.to_thread(self._tls, target)
            if server_name:
                options.append(("grpc.ssl_target_name_override", server_name))
            channel = grpc.aio.secure_channel(target, credentials, options=options)
        else:
            channel = grpc.aio.insecure_channel(target, options=options)
        async with channel:
            await self._ready(channel, target)
            stub = uplink_pb2_grpc.UplinkStub(channel)
            call = stub.Connect(metadata=metadata)
            await call.write(pb.UplinkMessage(hello=self._hello()))
            first = await asyncio.wait_for(call.read(), self.welcome_timeout)
            if first is grpc.aio.EOF or first.WhichOneof("body") != "welcome":
                await call.code()  # raises AioRpcError when the server aborted
                raise ConnectionError("control plane closed the stream before Welcome")
            self._ack(first.welcome.last_applied_seq)
            self._welcomed(target)
            reader = asyncio.create_task(self._read(call), name="uplink-reader")
            try:
                await self._write(call, reader)
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                    await reader
                call.cancel()
            if reader.done() and not reader.cancelled() and reader.exception() is not None:
                raise reader.exception()  # type: ignore[misc]

    async def _ready(self, channel: grpc.aio.Channel, target: str) -> None:
        """Wait until the connection is made or has failed, at most `connect_timeout`: an
        address that swallows packets fails after it instead of holding the rotation until
        the Welcome timeout. A failed one (refused, TLS) goes on to the call, which fails at
        once with gRPC's own words for the log."""
        done = (grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.TRANSIENT_FAILURE)

        async def connected() -> None:
            state = channel.get_state(try_to_connect=True)
            while state not in done:
                await channel.wait_for_state_change(state)
                state = channel.get_state(try_to_connect=True)

        try:
            await asyncio.wait_for(connected(), self.connect_timeout)
        except TimeoutError:
            raise TimeoutError(f"no connection to {target} within "
                               f"{self.connect_timeout:g} s") from None

    def _welcomed(self, target: str) -> None:
        """Connected: say where (another address than last time is a failover, logged as a
        warning). gRPC's client call does not say which record of a DNS name it reached."""
        self.stats.connected = True
        self.stats.connects += 1
        self.stats.target = target
        self._failing = -1  # the loss of this stream is the first failure, not one more
        self._warned = ""
        self.rotation.connected()
        previous, self._last_target = self._last_target, target
        if previous and previous != target:
            self.stats.failovers += 1
            log.warning("uplink failed over from %s to %s (failover %d; applied up to %d)",
                        previous, target, self.stats.failovers, self.stats.acked_seq)
        else:
            log.info("uplink connected to %s (applied up to %d)", target, self.stats.acked_seq)

    async def _write(self, call: Any, reader: asyncio.Task[None]) -> None:
        sent_upto = self.stats.acked_seq
        while not self._stopping.is_set() and not reader.done():
            self._wakeup.clear()
            while self._control:
                await call.write(pb.UplinkMessage(applied=self._control.popleft()))
            for batch in list(self._buffer):
                if batch.seq > sent_upto:
                    await call.write(pb.UplinkMessage(batch=batch))
                    sent_upto = batch.seq
                    self.stats.batches_sent += 1
            waiter = asyncio.create_task(self._wakeup.wait())
            await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
        if self._stopping.is_set():
            # Give the last acks a moment so a clean stop does not resend on the next start.
            await self.flush(1.0)
            with contextlib.suppress(grpc.aio.AioRpcError):
                await call.done_writing()

    async def _read(self, call: Any) -> None:
        while True:
            message = await call.read()
            if message is grpc.aio.EOF:
                await call.code()
                raise ConnectionError("control plane ended the stream")
            kind = message.WhichOneof("body")
            if kind == "ack":
                self._ack(message.ack.seq)
            elif kind == "rules":
                await self._apply(self._on_rules, message.rules, pb.Applied.KIND_RULES)
            elif kind == "config":
                await self._apply(self._on_config, message.config, pb.Applied.KIND_CONFIG)

    async def _apply(self, handler: RulesHandler | None, message: Any, kind: Any) -> None:
        applied = pb.Applied(generation=message.generation, kind=kind, ok=True)
        if handler is None:
            applied.ok = False
            applied.error = "this dataplane does not apply that message"
        else:
            try:
                await handler(message)
            except Exception as error:  # reported to the control plane, which shows it
                log.exception("applying generation %d failed", message.generation)
                applied.ok = False
                applied.error = str(error) or type(error).__name__
        self._control.append(applied)
        self._wakeup.set()

    def _ack(self, seq: int) -> None:
        self.stats.last_ack_monotonic = time.monotonic()
        if seq > self.stats.acked_seq:
            self.stats.acked_seq = seq
        while self._buffer and self._buffer[0].seq <= seq:
            self._buffer.popleft()
        self._acked.set()
