"""`floe serve`: one process, one uvloop loop, every listener.

hypercorn serves the Quart app on HTTP_PORT (cleartext HTTP/1.1 + h2c) and HTTPS_PORT
(TLS with ALPN h2/http1.1, plus HTTP/3 over QUIC on the same UDP port, advertised by
hypercorn with `Alt-Svc`). The grpc.aio server (GRPC_PORT) and the metrics listener
(METRICS_PORT) are started from `before_serving`, i.e. inside the running loop, after the
other layers' start-up hooks.

Shutdown (SIGTERM/SIGINT) is ours, not hypercorn's, because hypercorn's order measured
badly (HTTP drains first, gRPC health stays SERVING, websockets get 1011):
gRPC health → NOT_SERVING; hub closes websockets with 1001; `grpc.stop(grace)`; then
hypercorn's shutdown trigger; QUIC wakes at once (see `app.serving.quic`). The budget
GRACEFUL_TIMEOUT is split 40 % gRPC grace / 60 % hypercorn drain so the process exits
within ~GRACEFUL_TIMEOUT + 0.5 s (≤ 3 s with the default 2 s).

`floe serve --instances N` runs N of these processes under `app.serving.supervisor`; each is
given a `WorkerSpec` and shares its ports through SO_REUSEPORT (`app.serving.listeners`),
with QUIC steered by connection ID (`app.serving.steering`, `quic.install_steering`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys

import uvloop
from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config
from hypercorn.utils import wrap_app
from quart import Quart

from app.config import Settings
from app.factory import create_app
from app.grpc.lifetime import pin_grpc_aio
from app.hub import Hub
from app.runtime import get_runtime
from app.serving import h2, http1, quic, steering, tcp, websocket
from app.serving.headers import SecurityHeaders
from app.serving.instances import WorkerSpec
from app.serving.listeners import Listeners, bind_listeners, grpc_bind_error
from app.serving.metrics import ServingMetrics
from app.serving.metrics_listener import start_metrics_listener
from app.serving.tls import tls_files, tls_problem
from app.tasks import cancel_and_wait

__all__ = ["build_hypercorn_config", "serve", "serve_async"]

log = logging.getLogger("floe.serving")

GRPC_SHARE = 0.4
# listen() backlog of the TCP listeners (the kernel caps it at net.core.somaxconn). hypercorn's
# default of 100 overflowed at 1,000 connecting clients: 4-8k ListenOverflows per 8 s run,
# SYNs retried for up to 10-12 s and h2load saw 2-4k connection errors; with 4096, 0-179
# overflows and no connection errors (issue 13, bench/serving/tcpab.sh).
LISTEN_BACKLOG = 4096
WS_MAX_MESSAGE_BYTES = 64 * 1024


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def build_hypercorn_config(settings: Settings) -> Config:
    """hypercorn listeners and limits from Settings (ports ≤ 0 or toggles off → not bound)."""
    config = Config()
    config.graceful_timeout = settings.graceful_timeout * (1 - GRPC_SHARE)
    config.keep_alive_max_requests = settings.keep_alive_max_requests
    # Longer than the pools of common clients (httpx 5 s, aiohttp 15 s): a pool then drops an
    # idle connection before the server closes it, instead of both sides racing at hypercorn's
    # 5 s, where a request sent as the server closes fails with no response (seen in CI).
    config.keep_alive_timeout = settings.keep_alive_timeout
    config.include_server_header = False
    config.backlog = LISTEN_BACKLOG
    # A WebSocket message from a client is a subscription (app/api/subscriptions.py: at most
    # 16 KiB); hypercorn's default would buffer 16 MiB per message before we could refuse it.
    config.websocket_max_message_size = WS_MAX_MESSAGE_BYTES
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.bind = []
    tcp = settings.http1_enabled or settings.http2_enabled
    if settings.tls_enabled:
        certfile, keyfile = tls_files(settings)
        config.certfile, config.keyfile = str(certfile), str(keyfile)
        alpn = []
        if settings.http2_enabled:
            alpn.append("h2")
        if settings.http1_enabled:
            alpn.append("http/1.1")
        config.alpn_protocols = alpn
        if tcp:
            config.bind = [_hostport(settings.bind_host, settings.https_port)]
        if settings.http3_enabled:
            config.quic_bind = [_hostport(settings.bind_host, settings.https_port)]
        if tcp and settings.http_port > 0:
            config.insecure_bind = [_hostport(settings.bind_host, settings.http_port)]
    elif tcp and settings.http_port > 0:
        config.bind = [_hostport(settings.bind_host, settings.http_port)]
    return config


class _QuietStartupFailure(logging.Filter):
    """Quart logs a failing start-up hook with its traceback, and `serve_async` then prints
    the same error as its one line (`floe: start-up failed: …`): during start-up the
    traceback is kept for -vvv only. Only Quart's own logger ("floe") is filtered; the
    layers' loggers ("floe.db", …) are children and unaffected."""

    def __init__(self) -> None:
        super().__init__()
        self.starting = True
        self.failure: BaseException | None = None  # what start-up failed with

    def filter(self, record: logging.LogRecord) -> bool:
        if not (self.starting and record.exc_info):
            return True
        self.failure = record.exc_info[1]
        return log.isEnabledFor(logging.DEBUG)


GC_THRESHOLDS = (10_000, 10, 10)


def tune_gc() -> None:
    """Freeze the start-up heap and collect the young generation less often.

    After start-up the process holds ~130k tracked objects (SQLAlchemy, PyDAL, grpc, the
    apps) that live until exit. With CPython's defaults every full collection walked them
    all — measured under h2load: 433 ms of 6 s in the collector, pauses up to 85 ms (the
    bare hypercorn app has a small heap and barely notices). `gc.freeze()` moves them to a
    permanent generation the collector skips; a gen-0 threshold of 10k instead of 2k cut
    the collector's total to ~46 ms with pauses ≤ 7 ms (the per-collection cost is mostly
    fixed, and short-lived request objects die by reference counting anyway).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    log.debug("gc: froze %d start-up objects, thresholds %s", gc.get_freeze_count(),
              GC_THRESHOLDS)


def _install_process_hooks(
    app: Quart,
    settings: Settings,
    listeners: Listeners,
    stop: asyncio.Event,
    done: asyncio.Event,
    worker: WorkerSpec | None,
) -> _QuietStartupFailure:
    """gRPC + metrics listener at start-up; the ordered shutdown on `stop`."""
    quiet = _QuietStartupFailure()
    app.logger.addFilter(quiet)
    runtime = get_runtime(app)
    metrics: ServingMetrics = runtime.components["serving_metrics"]
    hub: Hub = runtime.components["hub"]
    tasks: list[asyncio.Task[None]] = []

    @app.before_serving
    async def _start_listeners() -> None:
        if settings.grpc_enabled and settings.grpc_port > 0:
            from app.grpc.server import start_grpc_server

            try:
                runtime.components["grpc_server"] = await start_grpc_server(
                    app, settings, reuseport=worker is not None
                )
            except RuntimeError as error:  # grpc core's "Failed to bind": taken since the probe?
                raise grpc_bind_error(settings, worker is not None) or OSError(
                    f"GRPC_PORT={settings.grpc_port}: gRPC cannot listen ({error})"
                ) from None
            log.info("gRPC on port %d", runtime.components["grpc_server"].port)
        if listeners.metrics is not None:
            runtime.components["metrics_listener"] = await start_metrics_listener(
                listeners.metrics, metrics.render
            )
        tasks.append(asyncio.create_task(_shutdown_sequence()))
        tune_gc()
        quiet.starting = False  # the last start-up hook: from here on, log everything
        if worker is not None:
            worker.notify_started()

    async def _shutdown_sequence() -> None:
        await stop.wait()
        log.info("shutting down")
        grpc_server = runtime.components.get("grpc_server")
        if grpc_server is not None:
            await grpc_server.health.enter_graceful_shutdown()
        hub.close_all(1001)
        await asyncio.sleep(0.05)  # let stream handlers send their close frames
        if grpc_server is not None:
            await grpc_server.server.stop(settings.graceful_timeout * GRPC_SHARE)
        done.set()

    @app.after_serving
    async def _stop_listeners() -> None:
        listener = runtime.components.pop("metrics_listener", None)
        if listener is not None:
            listener.close()
        grpc_server = runtime.components.pop("grpc_server", None)
        if grpc_server is not None:  # hypercorn stopped without a signal (e.g. an error)
            await grpc_server.server.stop(0)
        await cancel_and_wait(tasks)

    return quiet


async def serve_async(settings: Settings, worker: WorkerSpec | None = None) -> int:
    """Run until SIGTERM/SIGINT; returns the process exit code.

    `worker`: this process is instance `worker.index` of `floe serve --instances N`."""
    config = build_hypercorn_config(settings)
    tls_used = settings.tls_enabled or (settings.grpc_enabled and settings.grpc_tls)
    problem = tls_problem(settings) if tls_used else None
    if problem is not None:
        print(f"floe: cannot start: {problem}", file=sys.stderr)
        return 1
    try:  # before anything logs: a taken port is the one line on stderr
        listeners = bind_listeners(
            settings, config, reuseport=worker is not None, index=worker.index if worker else 0
        )
        if worker is not None and worker.steered:
            for sock in listeners.hypercorn.quic_sockets:
                steering.join(sock, worker.index, worker.steer_prog_fd, worker.steer_socks_fd)
    except OSError as error:
        print(f"floe: cannot start: {error}", file=sys.stderr)
        return 1
    app = create_app(settings)
    get_runtime(app).components["instance"] = worker.index if worker else None
    metrics: ServingMetrics = get_runtime(app).components["serving_metrics"]
    tcp.install(metrics.counters, settings.max_connections)
    http1.install(SecurityHeaders(settings.hsts_max_age), metrics.counters)
    h2.install()
    websocket.install()
    if config.quic_bind:
        quic.install(settings.quic_queue_size, metrics.counters, drain=config.graceful_timeout / 2,
                     qpack_table=settings.quic_qpack_table)
        if worker is not None:
            quic.install_steering(steering.CidLayout(worker.index, worker.count))
    stop = asyncio.Event()  # a signal arrived
    done = asyncio.Event()  # our part of the shutdown finished: hypercorn may stop
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    quiet = _install_process_hooks(app, settings, listeners, stop, done, worker)

    async def trigger() -> None:
        # Also fires if a signal lands before start-up finished (no shutdown task yet).
        await stop.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), settings.graceful_timeout)

    try:
        # hypercorn's `serve()` minus its own binding: the sockets are already ours.
        await worker_serve(
            wrap_app(app, config.wsgi_max_body_size, None),  # type: ignore[arg-type]
            config,
            sockets=listeners.hypercorn,
            shutdown_trigger=trigger,
        )
    except OSError as error:
        print(f"floe: cannot start: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # start-up failure inside a layer (lifespan)
        # hypercorn wraps it as "Lifespan failure in startup. '…'": print the layer's own text
        print(f"floe: start-up failed: {quiet.failure or error}", file=sys.stderr)
        log.debug("start-up failure", exc_info=True)
        return 1
    return 0


def serve(settings: Settings, worker: WorkerSpec | None = None) -> int:
    if worker is not None and not worker.die_with_supervisor():
        return 1  # the supervisor is gone already
    pin_grpc_aio()
    return uvloop.run(serve_async(settings, worker))
