"""Bounds on what dataplanes can make the control plane hold (`docs/uplink.md`, "Bounds").

A `dataplane:write` key could grow the in-memory aggregate without limit — measured: 10
batches of 20k made-up rule ids took +55 MiB and turned `/stats/summary` (pushed to every
stream subscriber each second) into 6.5 MB. Every quantity a dataplane names is bounded:

- nodes in all (INGEST_MAX_NODES): a Hello for one more new node is refused
  (RESOURCE_EXHAUSTED), the stream with it;
- interfaces per node (INGEST_MAX_INTERFACES), counter epochs and dataplane instances kept
  per interface (INGEST_MAX_EPOCHS; the least recently updated one past it is *retired*:
  folded into a per-interface sum, so totals stay exact), loss keys per instance
  (INGEST_MAX_LOSS_KEYS), rule-hit keys (only rule ids of the newest two rule sets the
  control plane pushed), counter names per snapshot, talker rows per aggregate, and the
  length of every string a dataplane sends.

Past a bound inside a batch the excess *items* are dropped, never silently: each is counted
per node and bound (`refused` in `GET /api/v2/nodes`, `floe_ingest_refused_total`), the
first of each kind per node is logged, and the batch is acknowledged — what it carried is
either applied or counted, and a resend would only be refused again. A Hello that breaks
the message limits is INVALID_ARGUMENT (a real dataplane never sends one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.config import Settings

__all__ = [
    "MAX_CAPABILITIES",
    "MAX_COUNTERS",
    "MAX_INSTANCES",
    "MAX_NAME",
    "MAX_PROTOCOLS",
    "MAX_TALKERS",
    "MAX_TEXT",
    "IngestLimits",
    "Refusal",
    "hello_problem",
]

MAX_NAME = 256  # interface names: a pcap replay names its interface after the file (NAME_MAX)
MAX_TEXT = 128  # ids, epochs, versions, capabilities, counter names, loss details, talker keys
MAX_COUNTERS = 128  # names in one counter snapshot (floe_if_counters, folded: 46)
MAX_CAPABILITIES = 32
MAX_TALKERS = 64  # rows per top list of one TrafficAggregate (the dataplane sends 10)
MAX_PROTOCOLS = 64  # protocol rows of one TrafficAggregate
MAX_INSTANCES = 16  # dataplane processes per node whose applied seq is remembered


@dataclass(slots=True, frozen=True)
class IngestLimits:
    """The configurable bounds (Settings: INGEST_MAX_*)."""

    max_nodes: int = 4096
    max_interfaces: int = 64  # per node (the XDP counter map has 64 slots)
    max_epochs: int = 4  # counter epochs / instances kept per interface
    max_loss_keys: int = 64  # (source, detail) per dataplane instance and interface

    @classmethod
    def from_settings(cls, settings: Settings) -> IngestLimits:
        return cls(settings.ingest_max_nodes, settings.ingest_max_interfaces,
                   settings.ingest_max_epochs, settings.ingest_max_loss_keys)


@dataclass(slots=True, frozen=True)
class Refusal:
    """Why a stream is refused at Hello: `status` names the gRPC status code."""

    status: str  # "RESOURCE_EXHAUSTED" or "INVALID_ARGUMENT"
    message: str


def _too_long(value: str, limit: int) -> bool:
    return len(value) > limit


def hello_problem(hello: Any, limits: IngestLimits) -> str | None:
    """What makes `hello` break the message limits, or None."""
    for name in ("instance_id", "boot_id", "version"):
        if _too_long(getattr(hello, name), MAX_TEXT):
            return f"Hello.{name} is longer than {MAX_TEXT} characters"
    if len(hello.capabilities) > MAX_CAPABILITIES:
        return f"Hello lists more than {MAX_CAPABILITIES} capabilities"
    if any(_too_long(c, MAX_TEXT) for c in hello.capabilities):
        return f"a Hello capability is longer than {MAX_TEXT} characters"
    if len(hello.interfaces) > limits.max_interfaces:
        return (f"Hello lists more than INGEST_MAX_INTERFACES={limits.max_interfaces} "
                "interfaces")
    if any(not i.name or _too_long(i.name, MAX_NAME) for i in hello.interfaces):
        return f"a Hello interface name is empty or longer than {MAX_NAME} characters"
    return None
