"""`floe serve` with QUIC settings changed from the environment, for side-by-side trials.

    QUIC_RCVBUF=4194304 python bench/serving/quic_levers.py -v serve

hypercorn builds its QuicConfiguration inside `QuicProtocol.__init__` and has no setting for
it, and the UDP socket takes the kernel's default buffers; trying a lever should not need an
app change, so this launcher patches before handing over to `app.cli`. Levers (unset = as is):

* QUIC_RCVBUF / QUIC_SNDBUF: SO_RCVBUF / SO_SNDBUF on the QUIC UDP socket (bytes asked for;
  the kernel doubles the value and caps it at net.core.rmem_max / wmem_max; with
  QUIC_BUFFORCE=1, root's SO_RCVBUFFORCE / SO_SNDBUFFORCE ignore the cap);
* QUIC_IDLE_TIMEOUT (s), QUIC_MAX_DATA, QUIC_MAX_STREAM_DATA (bytes): aioquic's
  QuicConfiguration of the server;
* QUIC_TIMER=task (hypercorn's timer task per send) | call_at, QUIC_COALESCE=0|1:
  `app.serving.quic.FloeQuicProtocol`'s timer and per-loop-turn sends; QUIC_TIMER_INLINE=0|1:
  whether a timer that yields no event sends from its callback or through a task;
* HYPERCORN_BACKLOG: listen() backlog of the TCP listeners (hypercorn's default is 100);
* GC_THRESHOLDS=a,b,c: the collector thresholds `floe serve` sets after start-up
  (`app.serving.run.GC_THRESHOLDS`);
* FAIRNESS_LAG=seconds: the loop-fairness gate's idle lag target (`app.serving.fairness`;
  a large value keeps the gate open).
The effective values are logged once on stderr.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import hypercorn.protocol.quic as hypercorn_quic

from app.serving import listeners


def _env(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value else None


def _buffers(sock: socket.socket) -> None:
    force = os.environ.get("QUIC_BUFFORCE") == "1"
    for name, option, forced in (("QUIC_RCVBUF", socket.SO_RCVBUF, 33),
                                 ("QUIC_SNDBUF", socket.SO_SNDBUF, 32)):
        size = _env(name)
        if size is not None:  # 33/32: SO_RCVBUFFORCE / SO_SNDBUFFORCE (not in socket)
            sock.setsockopt(socket.SOL_SOCKET, forced if force else option, size)
    print(f"quic_levers: UDP SO_RCVBUF {sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)} "
          f"SO_SNDBUF {sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)}", file=sys.stderr)


def install() -> None:
    plain_bind = listeners._bind

    def bind(variable: str, host: str, port: int, kind: int,
             reuseport: bool = False) -> socket.socket:
        sock = plain_bind(variable, host, port, kind, reuseport)
        if kind == socket.SOCK_DGRAM:
            _buffers(sock)
        return sock

    listeners._bind = bind  # type: ignore[assignment]

    plain_init = hypercorn_quic.QuicProtocol.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        plain_init(self, *args, **kwargs)
        settings = {"idle_timeout": os.environ.get("QUIC_IDLE_TIMEOUT"),
                    "max_data": _env("QUIC_MAX_DATA"),
                    "max_stream_data": _env("QUIC_MAX_STREAM_DATA")}
        for key, value in settings.items():
            if value is not None:
                setattr(self.quic_config, key, float(value) if key == "idle_timeout" else value)
        print("quic_levers: " + ", ".join(f"{k} {getattr(self.quic_config, k)}"
                                          for k in settings), file=sys.stderr)

    hypercorn_quic.QuicProtocol.__init__ = init  # type: ignore[method-assign]

    from hypercorn.config import Config

    if _env("HYPERCORN_BACKLOG") is not None:
        Config.backlog = _env("HYPERCORN_BACKLOG")  # type: ignore[assignment]
    print(f"quic_levers: TCP backlog {Config.backlog}", file=sys.stderr)

    import app.serving.run as serving_run

    if os.environ.get("GC_THRESHOLDS"):
        serving_run.GC_THRESHOLDS = tuple(  # type: ignore[assignment]
            int(v) for v in os.environ["GC_THRESHOLDS"].split(","))
    print(f"quic_levers: gc thresholds {serving_run.GC_THRESHOLDS}", file=sys.stderr)

    import app.serving.fairness as fairness

    if os.environ.get("FAIRNESS_LAG"):
        fairness.IDLE_LAG = float(os.environ["FAIRNESS_LAG"])
    print(f"quic_levers: fairness idle lag {fairness.IDLE_LAG}", file=sys.stderr)

    from app.serving.quic import FloeQuicProtocol

    if os.environ.get("QUIC_TIMER"):
        FloeQuicProtocol.call_at_timer = os.environ["QUIC_TIMER"] == "call_at"
    if os.environ.get("QUIC_COALESCE"):
        FloeQuicProtocol.coalesce = os.environ["QUIC_COALESCE"] == "1"
    if os.environ.get("QUIC_TIMER_INLINE"):
        FloeQuicProtocol.timer_inline = os.environ["QUIC_TIMER_INLINE"] == "1"
    print(f"quic_levers: timer {'call_at' if FloeQuicProtocol.call_at_timer else 'task'}, "
          f"coalesce {FloeQuicProtocol.coalesce}, timer inline {FloeQuicProtocol.timer_inline}",
          file=sys.stderr)


if __name__ == "__main__":
    install()
    from app.cli import main

    sys.exit(main())
