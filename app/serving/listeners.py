"""Every listening socket is bound before anything else starts, and named by its variable.

hypercorn binds its sockets only after the app's start-up (database, identity, gRPC), so a
port already in use used to surface as a bare `[Errno 98]` after a screen of start-up logs,
or — for GRPC_PORT and METRICS_PORT, bound inside start-up — as a traceback followed by
"Event loop is closed" noise. Here HTTP_PORT, HTTPS_PORT (TCP and UDP) and METRICS_PORT are
bound first and handed over (hypercorn's `worker_serve(sockets=…)`, `asyncio.start_server(
sock=…)`); GRPC_PORT is bound by grpc core itself, so it is probed the same way and
released. A failure is one `ListenerError` whose text names the variable:
`GRPC_PORT=50051 is already in use`.

The sockets are bound, not listening: clients are refused until the server really serves.

A worker of `floe serve --instances N` binds with `reuseport=True`: HTTP_PORT, HTTPS_PORT
(TCP and UDP) and GRPC_PORT are shared by the N processes through SO_REUSEPORT (the kernel
spreads connections; QUIC is steered by connection ID, `app.serving.steering`), and
METRICS_PORT becomes METRICS_PORT + index, one scrape target per instance.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
from dataclasses import dataclass

from hypercorn.config import Config, Sockets

from app.config import Settings

__all__ = [
    "ListenerError", "Listeners", "bind_listeners", "grpc_bind_error", "metrics_port",
    "size_receive_buffer",
]

log = logging.getLogger(__name__)

SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)  # Linux; not every Python names it


class ListenerError(OSError):
    """A listener cannot be bound; the text names its variable and port."""


@dataclass(slots=True)
class Listeners:
    hypercorn: Sockets
    metrics: socket.socket | None

    def close(self) -> None:
        """Close every socket (the supervisor's port check binds and lets go)."""
        sockets = self.hypercorn
        for sock in [*sockets.secure_sockets, *sockets.insecure_sockets, *sockets.quic_sockets,
                     self.metrics]:
            if sock is not None:
                sock.close()


def _describe(variable: str, port: int, kind: int, host: str, error: OSError) -> ListenerError:
    udp = " (UDP, HTTP/3)" if kind == socket.SOCK_DGRAM else ""
    if error.errno == errno.EADDRINUSE:
        return ListenerError(f"{variable}={port}{udp} is already in use")
    reason = error.strerror or str(error)
    return ListenerError(f"{variable}={port}{udp} cannot be bound on {host}: {reason}")


def _split(bind: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port`, as `app.serving.run` writes them for hypercorn."""
    host, _, port = bind.rpartition(":")
    return host.strip("[]"), int(port)


def _bind(
    variable: str, host: str, port: int, kind: int, reuseport: bool = False
) -> socket.socket:
    """A socket bound the way hypercorn binds it (SO_REUSEADDR; TCP_NODELAY for TCP), and
    with SO_REUSEPORT when the port is shared by instances."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, kind)
    try:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuseport:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.setblocking(False)
    except OSError as error:
        sock.close()
        raise _describe(variable, port, kind, host, error) from None
    return sock


def size_receive_buffer(sock: socket.socket, wanted: int) -> int:
    """Give the HTTP/3 socket a receive buffer of `wanted` bytes; the size the kernel granted.

    The kernel default (~208 KiB) overflows when 1,000 QUIC connections open at once: 3-23k
    datagrams dropped by the kernel per 8 s run, then handshake and request timeouts; 4 MiB
    absorbed the same storm with none (docs/benchmarks.md, issue 13). SO_RCVBUF is capped at
    net.core.rmem_max; SO_RCVBUFFORCE (CAP_NET_ADMIN) is not, so it is tried when capped, and
    a buffer still short of `wanted` is logged with the sysctl to raise. The kernel reports
    twice what it was asked (its bookkeeping overhead), so half the reported size is compared."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, wanted)
    granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2
    if granted < wanted:
        with contextlib.suppress(PermissionError):
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, wanted)
            granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2
    if granted < wanted:
        log.warning("HTTP/3 receive buffer is %d bytes, not the %d of QUIC_RECEIVE_BUFFER: "
                    "raise net.core.rmem_max (or run with CAP_NET_ADMIN), or a storm of new "
                    "connections will lose datagrams", granted, wanted)
    return granted


def grpc_bind_error(settings: Settings, reuseport: bool = False) -> ListenerError | None:
    """Whether GRPC_PORT could be bound now (grpc core binds it itself, with SO_REUSEADDR,
    and with SO_REUSEPORT for instances)."""
    try:
        _bind("GRPC_PORT", settings.bind_host, settings.grpc_port, socket.SOCK_STREAM,
              reuseport).close()
    except ListenerError as error:
        return error
    return None


def metrics_port(settings: Settings, index: int = 0) -> int:
    """METRICS_PORT of instance `index`: one port each, so each is its own scrape target."""
    return settings.metrics_port + index


def bind_listeners(
    settings: Settings, config: Config, *, reuseport: bool = False, index: int = 0
) -> Listeners:
    """Bind every listener of `config` (from `build_hypercorn_config`) and METRICS_PORT, and
    probe GRPC_PORT; on the first failure close what was bound and raise `ListenerError`.

    `reuseport`/`index`: a worker of `floe serve --instances N` (see the module doc)."""
    bound: list[socket.socket] = []

    def take(variable: str, binds: list[str], kind: int) -> list[socket.socket]:
        sockets = []
        for bind in binds:
            host, port = _split(bind)
            sockets.append(_bind(variable, host, port, kind, reuseport))
            bound.append(sockets[-1])
        return sockets

    try:
        if config.ssl_enabled:
            secure = take("HTTPS_PORT", config.bind, socket.SOCK_STREAM)
            insecure = take("HTTP_PORT", config.insecure_bind, socket.SOCK_STREAM)
            quic = take("HTTPS_PORT", config.quic_bind, socket.SOCK_DGRAM)
            if settings.quic_receive_buffer:
                for sock in quic:
                    size_receive_buffer(sock, settings.quic_receive_buffer)
        else:
            secure, quic = [], []
            insecure = take("HTTP_PORT", config.bind, socket.SOCK_STREAM)
        metrics = None
        if settings.metrics_enabled and settings.metrics_port > 0:
            port = metrics_port(settings, index)
            variable = f"METRICS_PORT+{index}" if index else "METRICS_PORT"
            metrics = _bind(variable, settings.bind_host, port, socket.SOCK_STREAM)
            bound.append(metrics)
        if settings.grpc_enabled and settings.grpc_port > 0:
            error = grpc_bind_error(settings, reuseport)
            if error is not None:
                raise error
    except ListenerError:
        for sock in bound:
            with contextlib.suppress(OSError):
                sock.close()
        raise
    # hypercorn derives the `Alt-Svc: h3=":port"` header from these (set in create_sockets).
    config._set_quic_addresses(quic)
    return Listeners(Sockets(secure, insecure, quic), metrics)
