"""HTTP/3 load from several client processes, with the server's own drop counters.

    python h3load.py PORT CERT CONNECTIONS SECONDS [PATH] [--json] [--procs N] [--steady]
                     [--metrics URL] [--server-pid PID] [--timeout S] [--rate R]

CONNECTIONS QUIC connections are shared out over N client processes (one uvloop loop each:
one Python process saturates near 250 connections, so it would measure itself) and all
open at once after a barrier: the *storm*. Each connection then sends requests back to
back (closed loop) or, with --rate, at a fixed pace whatever the answers do (open loop: the
latency users meet at that load, timed from when each request was due); a connection that
fails or is closed reconnects (that is another handshake).

Figures are split at the moment every connection's first attempt has finished (storm end):
requests started before it are the storm's, after it the steady state's. `--steady` makes
SECONDS count from the storm's end (so the steady window is SECONDS long); without it
SECONDS count from the start, as bench/serving/run.sh expects.

Server side, read before and after: Floe's QUIC queue drops (`floe_quic_datagrams_dropped_total`
at --metrics), the kernel's UDP counters (/proc/net/snmp Udp, /proc/net/snmp6 Udp6), the
drops of the server's own UDP socket (/proc/net/udp{,6}, by port) and, with --server-pid,
the server's CPU time — over the whole run, and over the steady window alone (sampled every
0.1 s: the storm's handshakes cost the server seconds). The clients' CPU time says whether
they were the bottleneck.

Output without --json: "rps p99_ms errors" (for run.sh). With --json: one human line, then
one JSON line (the last line).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import multiprocessing
import random
import resource
import socket
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import uvloop
from aioquic.h3.connection import H3_ALPN
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import ConnectionTerminated, QuicEvent

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.serving.procstat import cpu_seconds, runqueue_wait
from tests.support.h3client import H3Client

HANDSHAKE_TIMEOUT = 10.0
RECONNECT_PAUSE = 0.2
MAX_PACED_INFLIGHT = 64  # open loop: requests one connection may have outstanding
STORM_MAX = 60.0  # with --steady: the steady window starts after this even if the storm lasts


class LoadClient(H3Client):
    """H3Client that remembers why its connection ended and fails pending requests at once."""

    closed_as: str | None = None

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ConnectionTerminated):
            self.closed_as = f"closed_{event.error_code:#x}"
            for _, waiter in self._pending.values():
                if not waiter.done():
                    waiter.set_exception(ConnectionError(self.closed_as))
        super().quic_event_received(event)


@dataclass(slots=True)
class Share:
    """What one client process measured (sent back to the parent)."""

    started: float = 0.0
    ended: float = 0.0
    starts: list[float] = field(default_factory=list)  # request start (monotonic)
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests
    handshakes: list[tuple[float, float]] = field(default_factory=list)  # (start, duration)
    errors: Counter[str] = field(default_factory=Counter)
    send_lags: list[float] = field(default_factory=list)  # open loop: sent this late (s)
    cpu: float = 0.0  # user + system seconds of this process
    wait: float = 0.0  # seconds runnable but not running


@dataclass(slots=True)
class Shared:
    """State the client processes share: the storm's end decides the steady window."""

    total: int
    settled: Synchronized[int]  # connections whose first attempt has finished
    storm_end: Synchronized[float]  # monotonic time the last one finished, 0 until then

    def settle(self) -> None:
        with self.settled.get_lock():
            self.settled.value += 1
            if self.settled.value == self.total:
                self.storm_end.value = time.monotonic()


async def open_connection(
    port: int, configuration: QuicConfiguration
) -> tuple[asyncio.DatagramTransport, LoadClient]:
    """aioquic's `connect()` without its context manager, so a timeout cannot hang the close."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: LoadClient(QuicConnection(configuration=configuration)), sock=sock
    )
    protocol.authority = f"localhost:{port}".encode()
    protocol.connect(("127.0.0.1", port))
    try:
        await asyncio.wait_for(protocol.wait_connected(), HANDSHAKE_TIMEOUT)
    except BaseException:
        transport.close()
        raise
    return transport, protocol


async def close_connection(transport: asyncio.DatagramTransport, client: LoadClient) -> None:
    client.close()
    try:
        await asyncio.wait_for(client.wait_closed(), 1.0)
    except TimeoutError:
        pass
    transport.close()


async def connection_loop(
    port: int, path: str, configuration: QuicConfiguration, timeout: float,
    deadline: list[float], shared: Shared, share: Share, interval: float,
) -> None:
    """One connection's life: handshake, requests until the deadline, reconnect on failure."""
    first = True
    while time.monotonic() < deadline[0]:
        began = time.monotonic()
        try:
            transport, client = await open_connection(port, configuration)
        except TimeoutError:
            share.errors["handshake_timeout"] += 1
        except Exception as error:  # a refused or reset handshake is counted, not fatal
            share.errors[f"handshake_{type(error).__name__}"] += 1
        else:
            share.handshakes.append((began, time.monotonic() - began))
            if first:
                first = False
                shared.settle()
            if interval:
                await paced_requests(client, path, timeout, deadline, share, interval)
            else:
                await requests(client, path, timeout, deadline, share)
            ran_out = interval and client.closed_as is None  # paced to the deadline
            await close_connection(transport, client)
            if ran_out:
                return
            continue
        if first:
            first = False
            shared.settle()
        await asyncio.sleep(RECONNECT_PAUSE)


async def requests(
    client: LoadClient, path: str, timeout: float, deadline: list[float], share: Share
) -> None:
    """Closed loop: the next request leaves when the previous answer is in."""
    while (now := time.monotonic()) < deadline[0] and client.closed_as is None:
        try:
            response = await client.request("GET", path, timeout=timeout)
        except TimeoutError:
            share.errors["timeout"] += 1
            continue
        except ConnectionError:
            break
        record(share, now, response.status)
    if client.closed_as is not None:
        share.errors[client.closed_as] += 1


async def paced_requests(
    client: LoadClient, path: str, timeout: float, deadline: list[float], share: Share,
    interval: float,
) -> None:
    """Open loop: a request every `interval` s whether or not the earlier ones are answered,
    each timed from when it was due (a slow server cannot slow the clients down and hide its
    own latency: no coordinated omission). At most MAX_PACED_INFLIGHT per connection; a
    request that would exceed it is counted as `client_backlog`, not sent."""
    due = time.monotonic() + random.uniform(0.0, interval)  # spread the connections' phases
    inflight: set[asyncio.Task[None]] = set()

    async def one(due_at: float) -> None:
        share.send_lags.append(time.monotonic() - due_at)  # the client's own lateness
        try:
            response = await client.request("GET", path, timeout=timeout)
        except TimeoutError:
            share.errors["timeout"] += 1
        except ConnectionError:
            share.errors["lost_with_connection"] += 1
        else:
            record(share, due_at, response.status)

    while due < deadline[0] and client.closed_as is None:
        if (wait := due - time.monotonic()) > 0:
            await asyncio.sleep(wait)
        if len(inflight) >= MAX_PACED_INFLIGHT:
            share.errors["client_backlog"] += 1
        else:
            task = asyncio.create_task(one(due))
            inflight.add(task)
            task.add_done_callback(inflight.discard)
        due += interval
    if inflight:
        await asyncio.gather(*inflight, return_exceptions=True)
    if client.closed_as is not None:
        share.errors[client.closed_as] += 1


def record(share: Share, started: float, status: int) -> None:
    if status == 200:
        share.starts.append(started)
        share.latencies.append(time.monotonic() - started)
    else:
        share.errors[f"http_{status}"] += 1


async def run_share(
    shared: Shared, port: int, cert: str, conns: int, seconds: float, path: str,
    timeout: float, steady: bool, interval: float,
) -> Share:
    configuration = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN)
    configuration.load_verify_locations(cert)
    configuration.server_name = "localhost"
    share = Share(started=time.monotonic())
    wait_before = runqueue_wait()

    def count_loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """aioquic's client raises inside uvloop callbacks on some lost connections (e.g.
        IndexError in datagrams_to_send): counted as a failure kind, not printed."""
        error = context.get("exception")
        share.errors[f"client_{type(error).__name__ if error else 'loop_error'}"] += 1

    asyncio.get_running_loop().set_exception_handler(count_loop_error)
    deadline = [share.started + (STORM_MAX if steady else seconds)]

    async def move_deadline() -> None:
        """With --steady, the run ends SECONDS after the storm (or STORM_MAX) ends."""
        while not shared.storm_end.value and time.monotonic() < share.started + STORM_MAX:
            await asyncio.sleep(0.05)
        deadline[0] = (shared.storm_end.value or time.monotonic()) + seconds

    mover = asyncio.create_task(move_deadline()) if steady else None
    await asyncio.gather(*(
        connection_loop(port, path, configuration, timeout, deadline, shared, share, interval)
        for _ in range(conns)
    ))
    if mover is not None:
        mover.cancel()
    share.ended = time.monotonic()
    share.wait = runqueue_wait() - wait_before
    usage = resource.getrusage(resource.RUSAGE_SELF)
    share.cpu = usage.ru_utime + usage.ru_stime
    return share


def child(
    args: tuple[Any, ...], shared: Shared, barrier: Barrier, results: Any
) -> None:
    """One client process: wait for the others, then run its share of connections."""
    logging.getLogger("asyncio").setLevel(logging.ERROR)  # "socket.send() raised exception."
    barrier.wait()
    results.put(uvloop.run(run_share(shared, *args)))


# ---- server-side counters ------------------------------------------------------------------

def floe_quic(metrics_url: str | None) -> dict[str, float]:
    """Floe's QUIC datagram counters from /metrics (empty without a URL or on failure)."""
    if not metrics_url:
        return {}
    try:
        with urllib.request.urlopen(metrics_url, timeout=5) as reply:
            text = reply.read().decode()
    except OSError:
        return {}
    wanted = {"floe_quic_datagrams_dropped_total": "floe_dropped",
              "floe_quic_datagrams_received_total": "floe_received"}
    found = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in wanted:
            found[wanted[name]] = float(value)
    return found


def kernel_udp(port: int) -> dict[str, float]:
    """Kernel UDP counters (Udp, Udp6) and the drops of the sockets bound to `port`."""
    found: dict[str, float] = {}
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()
             if line.startswith("Udp:")]
    if len(lines) == 2:
        udp = dict(zip(lines[0][1:], lines[1][1:], strict=True))
        for key in ("InErrors", "RcvbufErrors", "SndbufErrors"):
            found[f"udp_{key}"] = float(udp.get(key, 0))
    with open("/proc/net/snmp6") as snmp6:
        for line in snmp6:
            key, _, value = line.partition(" ")
            if key in ("Udp6InErrors", "Udp6RcvbufErrors", "Udp6SndbufErrors"):
                found[f"udp6_{key[4:]}"] = float(value)
    drops = 0.0
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            cols = row.split()
            if int(cols[1].rsplit(":", 1)[1], 16) == port:
                drops += float(cols[-1])
    found["socket_drops"] = drops
    return found


def server_cpu(pid: int | None) -> dict[str, float]:
    """CPU time (utime + stime) and run-queue wait of the server process, in seconds."""
    if pid is None:
        return {}
    return {"server_cpu": cpu_seconds(pid), "server_wait": runqueue_wait(pid)}


def snapshot(opts: argparse.Namespace) -> dict[str, float]:
    return floe_quic(opts.metrics) | kernel_udp(opts.port) | server_cpu(opts.server_pid)


class CpuSampler(threading.Thread):
    """The server's CPU time every 0.1 s, so that the steady window's own CPU per request can
    be told from the storm's (1,000 TLS handshakes cost the server seconds)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[tuple[float, float]] = []  # (monotonic, cpu seconds)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.samples.append((time.monotonic(), server_cpu(self.pid)["server_cpu"]))
            self.stopped.wait(0.1)

    def cpu_at(self, when: float) -> float | None:
        """CPU time at `when`, interpolated between the samples around it."""
        for (t0, c0), (t1, c1) in zip(self.samples, self.samples[1:], strict=False):
            if t0 <= when <= t1:
                return c0 + (c1 - c0) * (when - t0) / (t1 - t0) if t1 > t0 else c0
        return None


# ---- aggregation ---------------------------------------------------------------------------

def quantiles(values: list[float]) -> dict[str, float | None]:
    """p50 / p99 / p99.9 in milliseconds (None when there are no values)."""
    values = sorted(values)

    def q(p: float) -> float | None:
        if not values:
            return None
        return round(values[min(len(values) - 1, math.ceil(p * len(values)) - 1)] * 1000, 1)

    return {"p50_ms": q(0.50), "p99_ms": q(0.99), "p999_ms": q(0.999)}


def aggregate(
    opts: argparse.Namespace, shares: list[Share], storm_end: float,
    before: dict[str, float], after: dict[str, float], sampler: CpuSampler | None = None,
) -> dict[str, Any]:
    started = min(s.started for s in shares)
    ended = max(s.ended for s in shares)
    elapsed = ended - started
    pairs = [(t, lat) for s in shares for t, lat in zip(s.starts, s.latencies, strict=True)]
    errors: Counter[str] = sum((s.errors for s in shares), Counter())
    storm = [lat for t, lat in pairs if not storm_end or t < storm_end]
    steady = [lat for t, lat in pairs if storm_end and t >= storm_end]
    steady_window = ended - storm_end if storm_end else 0.0
    if opts.steady and storm_end:  # not the closes after it (up to a second)
        steady_window = min(steady_window, opts.seconds)
    handshakes = [h for s in shares for h in s.handshakes]
    first_wave = [h for h in handshakes if not storm_end or h[0] < storm_end]
    storm_seconds = (storm_end or ended) - started
    delta = {k: after[k] - before[k] for k in after if k in before}
    server = {k: v for k, v in delta.items() if k not in ("server_cpu", "server_wait")}
    if "server_cpu" in delta:
        server["server_cores"] = round(delta["server_cpu"] / elapsed, 2)
        server["server_runqueue_share"] = round(delta["server_wait"] / elapsed, 2)
        # CPU per answered request: the figure a busy neighbour does not change.
        server["server_us_per_ok"] = round(delta["server_cpu"] / max(1, len(pairs)) * 1e6)
    if sampler is not None and storm_end and steady:
        # The steady window alone: its requests over the server CPU between its two ends.
        begin, end = storm_end, storm_end + steady_window
        cpu0, cpu1 = sampler.cpu_at(begin), sampler.cpu_at(end)
        if cpu0 is not None and cpu1 is not None and end > begin:
            answered = sum(1 for t, _ in pairs if begin <= t < end)
            server["steady_server_cores"] = round((cpu1 - cpu0) / (end - begin), 2)
            server["steady_server_us_per_ok"] = round((cpu1 - cpu0) / max(1, answered) * 1e6)
    return {
        "connections": opts.connections, "procs": len(shares), "path": opts.path,
        "offered_rps": opts.rate or None,
        "seconds": round(elapsed, 2), "steady_flag": opts.steady,
        "ok": len(pairs), "rps": round(len(pairs) / elapsed, 1), **quantiles([p[1] for p in pairs]),
        "storm": {"seconds": round(storm_seconds, 2), "finished": bool(storm_end),
                  "ok": len(storm), **quantiles(storm)},
        "steady": {"seconds": round(steady_window, 2), "ok": len(steady),
                   "rps": round(len(steady) / steady_window, 1) if steady_window > 0 else None,
                   **quantiles(steady)},
        "handshakes": {"ok": len(handshakes), "first_wave": len(first_wave),
                       "per_s": round(len(first_wave) / storm_seconds, 1),
                       **quantiles([h[1] for h in handshakes])},
        "errors": sum(errors.values()), "error_kinds": dict(errors.most_common()),
        # open loop: how late the clients sent (large = the clients, not the server, lagged)
        "send_lag": quantiles([lag for s in shares for lag in s.send_lags]),
        "server": server,
        "client_cores": round(sum(s.cpu for s in shares) / elapsed, 2),
        "client_runqueue_share": round(sum(s.wait for s in shares) / elapsed, 2),
    }


def human(r: dict[str, Any]) -> str:
    srv, hs, st, sd = r["server"], r["handshakes"], r["storm"], r["steady"]
    lag = f"client send lag p99 {r['send_lag']['p99_ms']} ms | " if r["offered_rps"] else ""
    kernel = ", ".join(f"{k} +{v:.0f}" for k, v in srv.items()
                       if k.startswith(("udp", "socket")) and v)
    return (
        f"# h3 c={r['connections']} procs={r['procs']}"
        f"{' offered ' + format(r['offered_rps'], '.0f') + ' req/s' if r['offered_rps'] else ''}: "
        f"{r['rps']:.0f} req/s, "
        f"p50/p99/p99.9 {r['p50_ms']}/{r['p99_ms']}/{r['p999_ms']} ms | storm {st['seconds']} s "
        f"p99 {st['p99_ms']} ms | steady {sd['rps']} req/s p99 {sd['p99_ms']} ms | "
        f"handshakes {hs['ok']} ({hs['per_s']}/s, p99 {hs['p99_ms']} ms) | "
        f"failed {r['errors']} {r['error_kinds'] or ''} | "
        f"{lag}"
        f"floe dropped "
        f"{srv.get('floe_dropped', 'n/a')} of {srv.get('floe_received', 'n/a')} | "
        f"kernel {kernel or 'no UDP errors'} | cores used (waiting for CPU): client "
        f"{r['client_cores']} ({r['client_runqueue_share']}) server "
        f"{srv.get('server_cores', 'n/a')} ({srv.get('server_runqueue_share', 'n/a')}), "
        f"{srv.get('server_us_per_ok', 'n/a')} us/request; steady state: server "
        f"{srv.get('steady_server_cores', 'n/a')} cores, "
        f"{srv.get('steady_server_us_per_ok', 'n/a')} us/request"
    )


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("port", type=int)
    parser.add_argument("cert")
    parser.add_argument("connections", type=int)
    parser.add_argument("seconds", type=float)
    parser.add_argument("path", nargs="?", default="/api/v2/ping")
    parser.add_argument("--json", action="store_true", help="human line + JSON line")
    parser.add_argument("--procs", type=int, default=0,
                        help="client processes (default 1 up to 64 connections, else 4)")
    parser.add_argument("--steady", action="store_true",
                        help="SECONDS of steady state after the storm ends")
    parser.add_argument("--metrics", help="Floe /metrics URL for the QUIC drop counters")
    parser.add_argument("--server-pid", type=int, help="server pid, for its CPU time")
    parser.add_argument("--timeout", type=float, default=5.0, help="per-request timeout (s)")
    parser.add_argument("--dump", help="write every answer's (start, latency) to this file")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="open loop: RATE requests/s offered in all, spread evenly over the "
                             "connections, latency timed from when each was due (default: "
                             "closed loop, back to back)")
    return parser.parse_args()


def main() -> None:
    opts = parse()
    procs = opts.procs or (1 if opts.connections <= 64 else 4)
    procs = max(1, min(procs, opts.connections))
    ctx = multiprocessing.get_context("fork")
    shared = Shared(opts.connections, ctx.Value("i", 0), ctx.Value("d", 0.0))
    barrier = ctx.Barrier(procs + 1)
    results = ctx.Queue()
    workers = []
    for index in range(procs):
        conns = opts.connections // procs + (index < opts.connections % procs)
        interval = opts.connections / opts.rate if opts.rate else 0.0
        args = (opts.port, opts.cert, conns, opts.seconds, opts.path, opts.timeout, opts.steady,
                interval)
        workers.append(ctx.Process(target=child, args=(args, shared, barrier, results)))
    for worker in workers:
        worker.start()
    sampler = CpuSampler(opts.server_pid) if opts.server_pid else None
    if sampler is not None:
        sampler.start()
    before = snapshot(opts)
    barrier.wait()
    bound = opts.seconds + (STORM_MAX if opts.steady else 0) + HANDSHAKE_TIMEOUT + 30
    shares = [results.get(timeout=bound) for _ in workers]
    after = snapshot(opts)
    if sampler is not None:
        sampler.stopped.set()
        sampler.join(1)
    for worker in workers:
        worker.join(5)
    report = aggregate(opts, shares, shared.storm_end.value, before, after, sampler)
    if opts.dump:  # every answered request: seconds since the storm ended, latency in ms
        with open(opts.dump, "w", encoding="utf-8") as out:
            for share in shares:
                for began, latency in zip(share.starts, share.latencies, strict=True):
                    out.write(f"{began - shared.storm_end.value:.4f} {latency * 1000:.1f}\n")
    if opts.json:
        print(human(report))
        print(json.dumps(report))
    else:
        print(f"{report['rps']:.0f} {report['p99_ms'] or float('nan'):.1f} {report['errors']}")


if __name__ == "__main__":
    main()
