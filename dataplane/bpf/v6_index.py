"""The IPv6 CIDR index: an open-addressing table of prefixes the kernel probes without a helper.

Layout, hash and probing are bpf/floe_kern_user.h's (struct floe_v6_table): a prefix is its
address masked to its length, as the two u64 a load of its first and last 8 bytes gives on
this host (the kernel masks a frame's address as it lies, with no byte swap), plus the length;
its home slot is (hi * K1 ^ lo * K2 ^ len * K3) >> (64 - SLOT_BITS), then linear probing over
at most PROBES slots. Word 0 is an empty slot (ends a probe), TOMB a deleted one (skipped).
`length_entry` gives the kernel each length in use with its masks and salt ready.

Updates are made in place on the kernel's own memory (a writable mmap of the map element), in
an order that lets a frame in flight find its old or its new rule, never another: a new
prefix's key is written before its word; a changed rule's word is one 4-byte store; deletions
come last (after the lengths the kernel walks are updated) and only mark the slot TOMB. When
tombstones pile up (a quarter of the table) the table is rebuilt from scratch — the caller
points the kernel at the LPM trie while it does.
"""

from __future__ import annotations

import sys

import numpy as np
import numpy.typing as npt

from dataplane.bpf.layout import DEFINES

__all__ = [
    "PROBES",
    "SLOTS",
    "SLOT_DTYPE",
    "TOMB",
    "Prefix6",
    "build",
    "delete",
    "home",
    "length_entry",
    "needs_rebuild",
    "prefix_key",
    "upsert",
]

SLOT_BITS = DEFINES["FLOE_V6_SLOT_BITS"]
SLOTS = DEFINES["FLOE_V6_SLOTS"]
PROBES = DEFINES["FLOE_V6_PROBES"]
TOMB = DEFINES["FLOE_V6_TOMB"]
_K = (DEFINES["FLOE_V6_K1"], DEFINES["FLOE_V6_K2"], DEFINES["FLOE_V6_K3"])
_M64 = (1 << 64) - 1

SLOT_DTYPE = np.dtype([("hi", "=u8"), ("lo", "=u8"), ("prefixlen", "=u4"), ("word", "=u4")])

Prefix6 = tuple[int, int, int]  # (hi, lo, prefixlen), masked
Table = npt.NDArray[np.void]


def _as_loaded(value: int) -> tuple[int, int]:
    """A 128-bit network-order value as the kernel's two 8-byte loads read it on this host."""
    raw = value.to_bytes(16, "big")
    return int.from_bytes(raw[:8], sys.byteorder), int.from_bytes(raw[8:], sys.byteorder)


def _mask(prefixlen: int) -> int:
    return ((1 << prefixlen) - 1) << (128 - prefixlen)


def prefix_key(addr: bytes, prefixlen: int) -> Prefix6:
    """A prefix as the kernel builds it from a frame's address."""
    return *_as_loaded(int.from_bytes(addr, "big") & _mask(prefixlen)), prefixlen


def length_entry(prefixlen: int) -> tuple[int, int, int]:
    """struct floe_v6_len's (mask_hi, mask_lo, salt) for one length in use."""
    return *_as_loaded(_mask(prefixlen)), (prefixlen * _K[2]) & _M64


def home(key: Prefix6) -> int:
    """The first slot the kernel probes for `key`."""
    hi, lo, length = key
    h = ((hi * _K[0]) & _M64) ^ ((lo * _K[1]) & _M64) ^ ((length * _K[2]) & _M64)
    return h >> (64 - SLOT_BITS)


def _live(table: Table) -> dict[Prefix6, int]:
    """slot index of every live prefix in `table`."""
    words = table["word"]
    at = np.flatnonzero((words != 0) & (words != TOMB))
    return {(int(table["hi"][i]), int(table["lo"][i]), int(table["prefixlen"][i])): int(i)
            for i in at}


def upsert(table: Table, wanted: dict[Prefix6, int]) -> bool:
    """Write new and changed prefixes of `wanted` into `table` in place; False if one did not
    fit within PROBES slots of its home (the kernel must then use the trie)."""
    live = _live(table)
    fits = True
    for key, word in wanted.items():
        at = live.get(key)
        if at is not None:
            if int(table["word"][at]) != word:
                table["word"][at] = word
            continue
        start = home(key)
        for step in range(PROBES):
            at = (start + step) & (SLOTS - 1)
            if int(table["word"][at]) in (0, TOMB):
                table["hi"][at], table["lo"][at], table["prefixlen"][at] = key
                table["word"][at] = word  # last: the slot is live from here on
                break
        else:
            fits = False
    return fits


def delete(table: Table, wanted: dict[Prefix6, int]) -> int:
    """Mark every live prefix not in `wanted` deleted; returns how many."""
    gone = [at for key, at in _live(table).items() if key not in wanted]
    table["word"][gone] = TOMB
    return len(gone)


def needs_rebuild(table: Table) -> bool:
    """Tombstones lengthen every probe that crosses them: rebuild past a quarter."""
    return int(np.count_nonzero(table["word"] == TOMB)) > SLOTS // 4


def build(wanted: dict[Prefix6, int]) -> tuple[Table, bool]:
    """A fresh table holding `wanted`, and whether every prefix fitted."""
    table = np.zeros(SLOTS, SLOT_DTYPE)
    return table, upsert(table, wanted)
