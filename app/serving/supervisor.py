"""`floe serve --instances N` (N ≥ 2): a small supervisor over N `floe serve` workers.

Why processes: one Floe process is one uvloop loop on one core (hypercorn's pure-Python
protocols are the ceiling, docs/adr/0001-serving.md). N processes share every port through
SO_REUSEPORT; HTTP/3 datagrams are steered by connection ID (`app.serving.steering`).

What it does, in order:

1. checks every port once, as a plain `floe serve` would (a taken port is one line naming
   its variable, before any worker starts), including METRICS_PORT..METRICS_PORT+N-1;
2. with HTTP/3 on, loads the steering program (`SteeringProgram`): its fds are inherited by
   every worker, nothing is pinned, and it is gone when the supervisor and workers are;
3. starts worker 0 and waits until it has started (it creates the schema and the first
   admin on a fresh database), then workers 1..N-1 together; a worker that fails to start
   stops the lot and its exit code is the supervisor's;
4. restarts a worker that exits while the supervisor is not stopping, after a backoff that
   doubles from RESTART_FIRST to RESTART_MAX and starts over once a worker has run for
   STABLE_AFTER seconds (a crash loop costs little; a rare crash is repaired at once);
5. on SIGTERM/SIGINT sends SIGTERM to every worker (each runs its own graceful shutdown,
   ≤ GRACEFUL_TIMEOUT + 0.5 s), SIGKILLs any still running GRACEFUL_TIMEOUT + KILL_GRACE
   seconds later, and exits 0 when every worker exited 0.

Workers run in their own process group, so a terminal's Ctrl-C reaches only the supervisor,
which forwards it once; each worker also asks the kernel for SIGTERM if the supervisor dies
(`WorkerSpec.die_with_supervisor`): no orphans even after `kill -9` of the supervisor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from dataclasses import dataclass, field
from typing import Any

from app.config import Settings
from app.serving.instances import WORKER_ENV, WorkerSpec
from app.serving.listeners import bind_listeners, metrics_port
from app.serving.run import build_hypercorn_config
from app.serving.steering import SteeringError, SteeringProgram

__all__ = ["Supervisor", "supervise"]

log = logging.getLogger("floe.supervisor")

RESTART_FIRST = 0.5
RESTART_MAX = 30.0
STABLE_AFTER = 60.0
KILL_GRACE = 5.0


@dataclass(slots=True)
class _Slot:
    """One instance index and the worker process currently holding it."""

    index: int
    process: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    backoff: float = RESTART_FIRST
    restarts: int = 0


@dataclass(slots=True)
class Supervisor:
    settings: Settings
    count: int
    verbosity: int = 0
    slots: list[_Slot] = field(default_factory=list)
    steering: SteeringProgram | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def _preflight(self) -> str | None:
        """The first port problem, as the one line a plain `floe serve` would print."""
        settings = self.settings
        if settings.metrics_enabled and settings.metrics_port > 0:
            last = metrics_port(settings, self.count - 1)
            if last > 65535:
                return (f"METRICS_PORT={settings.metrics_port}: instances use METRICS_PORT.."
                        f"METRICS_PORT+{self.count - 1}, and {last} is not a port")
        config = build_hypercorn_config(settings)
        for index in range(self.count):  # what each worker will bind (here without sharing)
            try:
                bind_listeners(settings, config, index=index).close()
            except OSError as error:
                return str(error)
        return None

    def _argv(self) -> list[str]:
        verbose = ["-" + "v" * self.verbosity] if self.verbosity else []
        return [sys.executable, "-m", "app.cli", *verbose, "serve"]

    async def _spawn(self, slot: _Slot, started_fd: int = -1) -> None:
        prog_fd, socks_fd = self.steering.fds if self.steering else (-1, -1)
        spec = WorkerSpec(slot.index, self.count, os.getpid(), prog_fd, socks_fd, started_fd)
        fds = tuple(fd for fd in (prog_fd, socks_fd, started_fd) if fd >= 0)
        slot.process = await asyncio.create_subprocess_exec(
            *self._argv(),
            env={**os.environ, WORKER_ENV: spec.to_env()},
            pass_fds=fds,
            process_group=0,  # Ctrl-C reaches the supervisor only; it forwards SIGTERM
        )
        slot.started_at = asyncio.get_running_loop().time()
        log.info("instance %d: pid %d", slot.index, slot.process.pid)

    async def _start(self, slot: _Slot) -> int | None:
        """Spawn and wait until the worker says it started (None) or exits (its code)."""
        read_fd, write_fd = os.pipe()
        try:
            await self._spawn(slot, write_fd)
        finally:
            os.close(write_fd)
        loop = asyncio.get_running_loop()
        readable: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not readable.done():
                readable.set_result(None)

        loop.add_reader(read_fd, wake)
        stopping = asyncio.ensure_future(self.stop.wait())
        waits: list[asyncio.Future[Any]] = [readable, stopping]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            loop.remove_reader(read_fd)
            stopping.cancel()
        started = readable.done() and os.read(read_fd, 1) == b"1"
        os.close(read_fd)
        if started or self.stop.is_set():
            return None
        assert slot.process is not None
        return await slot.process.wait()  # the pipe closed: the worker exited

    async def _keep(self, slot: _Slot) -> None:
        """Restart the worker of `slot` whenever it exits, until the supervisor stops."""
        loop = asyncio.get_running_loop()
        while slot.process is not None:
            code = await slot.process.wait()
            if self.stop.is_set():
                return
            ran = loop.time() - slot.started_at
            if ran >= STABLE_AFTER:
                slot.backoff = RESTART_FIRST
            log.warning("instance %d (pid %d) exited with %d after %.1f s; restarting in %.1f s",
                        slot.index, slot.process.pid, code, ran, slot.backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), slot.backoff)
            if self.stop.is_set():
                return
            slot.backoff = min(slot.backoff * 2, RESTART_MAX)
            slot.restarts += 1
            try:
                await self._spawn(slot)
            except OSError as error:  # fork/exec failed: the old exit shows again, next backoff
                log.error("instance %d: cannot start a worker: %s", slot.index, error)

    async def _shutdown(self) -> int:
        """SIGTERM every worker; SIGKILL what is left after the grace. 0 if all exited 0."""
        running = [s.process for s in self.slots if s.process and s.process.returncode is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        grace = self.settings.graceful_timeout + KILL_GRACE
        waits = [asyncio.ensure_future(p.wait()) for p in running]
        if waits:
            _, pending = await asyncio.wait(waits, timeout=grace)
            if pending:
                log.error("%d instance(s) still running %.1f s after SIGTERM: SIGKILL",
                          len(pending), grace)
                for process in running:
                    if process.returncode is None:
                        with contextlib.suppress(ProcessLookupError):
                            process.kill()
                await asyncio.wait(waits)
        codes = [s.process.returncode for s in self.slots if s.process is not None]
        return 0 if all(code == 0 for code in codes) else 1

    async def run(self) -> int:
        problem = self._preflight()
        if problem is not None:
            print(f"floe: cannot start: {problem}", file=sys.stderr)
            return 1
        settings = self.settings
        if settings.tls_enabled and settings.http3_enabled:
            try:
                self.steering = SteeringProgram.load(self.count)
            except SteeringError as error:
                print(f"floe: cannot start: {error} (HTTP/3 over {self.count} instances needs it;"
                      " HTTP3_ENABLED=false serves without)", file=sys.stderr)
                return 1
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        self.slots = [_Slot(index) for index in range(self.count)]
        keepers: list[asyncio.Task[None]] = []
        try:
            code = await self._start(self.slots[0])  # first alone: schema, first admin
            if code is None and not self.stop.is_set():
                codes = await asyncio.gather(*(self._start(s) for s in self.slots[1:]))
                code = next((c for c in codes if c is not None), None)
            if code is not None:
                print(f"floe: an instance failed to start (exit code {code}); stopping",
                      file=sys.stderr)
                await self._shutdown()
                return code if code > 0 else 1
            if not self.stop.is_set():
                log.info("%d instances started", self.count)
                keepers = [asyncio.create_task(self._keep(slot)) for slot in self.slots]
                await self.stop.wait()
            log.info("stopping %d instances", self.count)
            return await self._shutdown()
        finally:
            for task in keepers:
                task.cancel()
            if self.steering is not None:
                self._log_steering(self.steering)
                self.steering.close()

    @staticmethod
    def _log_steering(steering: SteeringProgram) -> None:
        """How the HTTP/3 datagrams of this run were placed (by CID, by hash, by the kernel)."""
        from dataplane.bpf.errors import BpfError

        try:
            stats = steering.stats()
        except BpfError as error:
            log.debug("steering counters unreadable: %s", error)
            return
        log.info("HTTP/3 datagrams steered: %s", ", ".join(f"{k} {v}" for k, v in stats.items()))


def supervise(settings: Settings, count: int, verbosity: int) -> int:
    """Run `count` workers until SIGTERM/SIGINT; returns the exit code."""
    return asyncio.run(Supervisor(settings, count, verbosity).run())
