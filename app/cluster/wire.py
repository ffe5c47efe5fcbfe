"""The relay's entries as they sit in the Redis stream: one flat field map each.

Every entry names its origin (the control-plane instance that accepted the input), the
origin's entry number `s` (consecutive per origin, so a reader sees every gap) and the
cumulative count of flow records the origin had relayed up to and including this entry `f`
(so a gap is also counted in flow records). The payload `d` is protobuf bytes: for a batch
the dataplane's `UplinkMessage` exactly as it arrived, else a `Hello` or `Applied`; `m` is a
small JSON map.

A reader trusts Redis as much as the database, but still decodes defensively: a field it
cannot use makes the entry malformed (counted), never an exception in the reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from app.ingest.limits import MAX_TEXT
from app.nodeid import valid_node_id

__all__ = ["KINDS", "MAX_ORIGIN", "Entry", "WireError", "decode", "encode", "entry_size"]

# batch: a dataplane's UplinkMessage holding a Batch (n, i, d); open: a stream's Hello
# (n, i, d, m: peer, principal, since); close: the stream ended (n, i); applied: a
# dataplane's Applied (n, d);
# alive: the origin's live streams and rule generation (m); rules: a generation committed (m)
KINDS = frozenset({"batch", "open", "close", "applied", "alive", "rules"})
MAX_ORIGIN = 64  # characters of an instance id


class WireError(ValueError):
    """An entry that cannot be used (counted as malformed by the reader)."""


@dataclass(slots=True)
class Entry:
    origin: str
    seq: int  # the origin's entry number (1, 2, ...)
    flows: int  # flow records the origin relayed up to and including this entry
    kind: str
    node: str = ""
    instance: str = ""
    data: bytes = b""
    meta: dict[str, Any] = field(default_factory=dict)
    flow_count: int = 0  # flow records in this entry (batch entries)


def encode(entry: Entry) -> dict[bytes, bytes]:
    fields = {b"o": entry.origin.encode(), b"s": b"%d" % entry.seq, b"f": b"%d" % entry.flows,
              b"k": entry.kind.encode(), b"c": b"%d" % entry.flow_count}
    if entry.node:
        fields[b"n"] = entry.node.encode()
    if entry.instance:
        fields[b"i"] = entry.instance.encode()
    if entry.data:
        fields[b"d"] = entry.data
    if entry.meta:
        fields[b"m"] = orjson.dumps(entry.meta)
    return fields


def entry_size(fields: dict[bytes, bytes]) -> int:
    return sum(len(key) + len(value) for key, value in fields.items())


def _text(fields: dict[bytes, bytes], key: bytes, limit: int) -> str:
    raw = fields.get(key, b"")
    if len(raw) > limit:
        raise WireError(f"field {key.decode()} is too long")
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise WireError(f"field {key.decode()} is not UTF-8") from None


def _number(fields: dict[bytes, bytes], key: bytes) -> int:
    raw = fields.get(key, b"0")
    if not raw.isdigit() or len(raw) > 20:
        raise WireError(f"field {key.decode()} is not a count")
    return int(raw)


def decode(fields: dict[bytes, bytes]) -> Entry:
    """The entry, or WireError naming what is wrong."""
    kind = _text(fields, b"k", 16)
    if kind not in KINDS:
        raise WireError(f"unknown kind {kind!r}")
    origin = _text(fields, b"o", MAX_ORIGIN)
    seq = _number(fields, b"s")
    if not origin or seq < 1:
        raise WireError("no origin or entry number")
    node = _text(fields, b"n", 4 * MAX_TEXT)
    if kind in ("batch", "open", "close", "applied") and not valid_node_id(node):
        raise WireError("no valid node id")
    instance = _text(fields, b"i", MAX_TEXT)
    if kind in ("batch", "open", "close") and not instance:
        raise WireError("no dataplane instance")
    meta: dict[str, Any] = {}
    if b"m" in fields:
        try:
            meta = orjson.loads(fields[b"m"])
        except orjson.JSONDecodeError:
            raise WireError("meta is not JSON") from None
        if not isinstance(meta, dict):
            raise WireError("meta is not an object")
    return Entry(origin=origin, seq=seq, flows=_number(fields, b"f"), kind=kind, node=node,
                 instance=instance, data=fields.get(b"d", b""), meta=meta,
                 flow_count=_number(fields, b"c"))
