"""The `GetFlowsRequest` a command line asks for: how many events, which window, which fields.

Counts behave as in `hubble observe`: no count, window or `--follow` means the last 20 events;
`--last N` the newest N (then live with `--follow`); `--first N` the oldest N; `--all`
everything held. `--since`/`--until` take RFC 3339 times or a duration back from now ("5m",
"1h30m", "90s"). A resumed stream asks for `after=<cursor>` instead of a count (the server
ignores counts with `after`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp

from app.observe_client._filters import Criterion, flow_filters
from floe.observer.v1 import observer_pb2 as pb

__all__ = ["ALL", "DEFAULT_LAST", "FlowQuery", "parse_fields", "parse_time"]

DEFAULT_LAST = 20  # events a bare `floe observe` prints, as hubble
ALL = 2**64 - 1  # "every event held" as a count (0 would mean none with `follow`)

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
            "m": 60_000_000_000, "h": 3_600_000_000_000, "d": 86_400_000_000_000}


def parse_time(text: str, now_ns: int | None = None) -> int:
    """Nanoseconds since the epoch for an RFC 3339 time (a time without an offset is local
    time) or a duration back from now ("5m", "1h30m", "1.5s")."""
    raw = text.strip()
    if raw and _DURATION.sub("", raw) == "":
        total = sum(float(amount) * _UNIT_NS[unit] for amount, unit in _DURATION.findall(raw))
        now = time.time_ns() if now_ns is None else now_ns
        return max(0, now - int(total))
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{text!r} is neither an RFC 3339 time "
                         "(2026-12-07T10:41:02Z) nor a duration (5m, 1h30m)") from None
    if when.tzinfo is None:
        when = when.astimezone()  # local time, as a person typing it means
    seconds = when.timestamp()
    if seconds < 0:
        raise ValueError(f"{text!r} is before 1970")
    return int(seconds) * 1_000_000_000 + when.microsecond * 1_000


def parse_fields(values: Sequence[str]) -> list[str]:
    """`--field-mask a,b --field-mask c` as one list of `Flow` field names (the server checks
    the names)."""
    out: list[str] = []
    for value in values:
        out.extend(name.strip() for name in value.split(",") if name.strip())
    return out


def _stamp(ns: int) -> Timestamp:
    return Timestamp(seconds=ns // 1_000_000_000, nanos=ns % 1_000_000_000)


@dataclass(slots=True)
class FlowQuery:
    """What the command line asked for, ready to become a request, first or resumed."""

    criteria: Sequence[Criterion] = ()
    follow: bool = False
    last: int = 0
    first: int = 0
    all: bool = False
    since_ns: int = 0
    until_ns: int = 0
    fields: list[str] = field(default_factory=list)

    def check(self) -> None:
        """Combinations that cannot mean anything sensible (ValueError)."""
        if sum((bool(self.last), bool(self.first), self.all)) > 1:
            raise ValueError("--last, --first and --all cannot be combined")
        if self.first and self.follow:
            raise ValueError("--first and --follow cannot be combined (the events between "
                             "the oldest N and now would be skipped)")
        if self.since_ns and self.until_ns and self.since_ns > self.until_ns:
            raise ValueError("--since is after --until")

    @property
    def number(self) -> int:
        """The request's `number`: a count of events, 0 for "none of the past" with follow
        or "everything" without it, ALL for everything held with follow."""
        if self.last or self.first:
            return self.last or self.first
        if self.all or (self.follow and self.since_ns):
            return ALL
        if not self.follow and not self.since_ns and not self.until_ns:
            return DEFAULT_LAST
        return 0

    @property
    def limit(self) -> int | None:
        """Events to print in all (None: no limit). A resumed stream has no count, so the
        client stops by itself once this many arrived."""
        if self.follow or self.number in (0, ALL):
            return None
        return self.number

    def request(self, after: int | None = None) -> Any:
        allow, deny = flow_filters(self.criteria)
        request = pb.GetFlowsRequest(follow=self.follow, allow=allow, deny=deny)
        if after is not None:
            request.after = after
        else:
            request.number = self.number
            request.first = bool(self.first)
        if self.since_ns:
            request.since.CopyFrom(_stamp(self.since_ns))
        if self.until_ns:
            request.until.CopyFrom(_stamp(self.until_ns))
        if self.fields:
            request.field_mask.CopyFrom(FieldMask(paths=self.fields))
        return request
