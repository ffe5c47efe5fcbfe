"""IPFIX export of ended flows to collectors (RFC 7011, biflows per RFC 5103).

`init_app` runs after the observer: with FLOE_IPFIX_COLLECTORS set it resolves every
collector (a name that does not resolve stops start-up), adds the exporter's queue to the
observer's fanout, its series to /metrics, and runs the exporter as a task while serving.
Without collectors nothing is added. See docs/ipfix.md.
"""

from __future__ import annotations

import asyncio
import socket

from quart import Quart

from app.config import ConfigError, extra_endpoints, extra_int
from app.export.exporter import Exporter, ExportQueue
from app.export.metrics import ExportCollector
from app.export.sender import CollectorLink, LinkLimits
from app.observer import get_observer
from app.runtime import get_runtime

__all__ = ["COLLECTORS_VARIABLE", "MAX_COLLECTORS", "get_exporter", "init_app"]

COLLECTORS_VARIABLE = "FLOE_IPFIX_COLLECTORS"
MAX_COLLECTORS = 8


def get_exporter(app: Quart | None = None) -> Exporter | None:
    """The running exporter, or None when no collector is configured."""
    exporter: Exporter | None = get_runtime(app).components.get("ipfix")
    return exporter


def _resolve(host: str, port: int) -> tuple[int, tuple[object, ...]]:
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except OSError as error:
        raise ConfigError(f"{COLLECTORS_VARIABLE}: cannot resolve {host!r} "
                          f"({error.strerror or error})") from None
    family, _type, _proto, _name, sockaddr = found[0]
    return family, sockaddr


def _label(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def init_app(app: Quart) -> None:
    runtime = get_runtime(app)
    settings = runtime.settings
    endpoints = extra_endpoints(settings, COLLECTORS_VARIABLE, limit=MAX_COLLECTORS)
    limits = LinkLimits(
        mtu=extra_int(settings, "FLOE_IPFIX_MTU", 1400, low=512, high=65_507),
        template_seconds=extra_int(settings, "FLOE_IPFIX_TEMPLATE_SECONDS", 60,
                                   low=1, high=86_400),
        template_messages=extra_int(settings, "FLOE_IPFIX_TEMPLATE_MESSAGES", 1000,
                                    low=1, high=1_000_000),
    )
    capacity = extra_int(settings, "FLOE_IPFIX_QUEUE_RECORDS", 65_536, low=1024,
                         high=16_777_216)
    rate = extra_int(settings, "FLOE_IPFIX_MESSAGES_PER_SECOND", 5000, low=0,
                     high=10_000_000)
    if not endpoints:
        return
    addresses = [(_label(host, port), _resolve(host, port)) for host, port in endpoints]
    links: list[CollectorLink] = []
    try:
        for label, address in addresses:
            links.append(CollectorLink.open(label, address, limits))
    except OSError as error:
        for link in links:
            link.close()
        raise ConfigError(f"{COLLECTORS_VARIABLE}: cannot open a socket to {label}: "
                          f"{error.strerror or error}") from None
    observer = get_observer(app)
    queue = ExportQueue(capacity)
    exporter = Exporter(observer.ring, queue, links, messages_per_second=rate)
    runtime.components["ipfix"] = exporter
    runtime.collectors.append(ExportCollector(exporter))
    tasks: list[asyncio.Task[None]] = []

    @app.before_serving
    async def _start() -> None:
        observer.fanout.add(queue)
        tasks.append(asyncio.create_task(exporter.run(), name="ipfix-export"))

    @app.after_serving
    async def _stop() -> None:
        observer.fanout.remove(queue)
        for task in tasks:
            await exporter.stop(task)
        tasks.clear()
