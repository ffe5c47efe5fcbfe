"""Protobuf wire bytes for many messages at once, written column by column with numpy.

Building one protobuf message per row in Python costs several microseconds a row; hot paths
(the dataplane's flow records, the observer's events) write the same bytes this way instead.
`Rows(n)` collects column blocks — each block is a (n, width) byte array plus how many of its
bytes each row uses — in field-number order; a row's message is the concatenation of the bytes
its blocks use. Zero scalars and empty strings are left out, as proto3 does, so the output is
byte-identical to `SerializeToString()` (the users' tests check it against protobuf itself).
Nested messages are `Rows` too, inlined behind their tag and length.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["LEN", "VARINT", "Rows", "tag", "varint_bytes", "varints"]

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]

VARINT, LEN = 0, 2

# Smallest value needing k + 1 varint bytes, k = 1..9.
_VARINT_STEPS = np.array([1 << (7 * k) for k in range(1, 10)], dtype=np.uint64)


def varint_bytes(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def tag(number: int, wire_type: int) -> bytes:
    return varint_bytes(number << 3 | wire_type)


def varints(values: npt.NDArray[np.uint64]) -> tuple[U8, I64]:
    """Each value as a varint, in as many columns as the longest needs, and its length."""
    length = np.searchsorted(_VARINT_STEPS, values, side="right").astype(np.int64) + 1
    width = int(length.max()) if length.size else 1
    shifted = values[:, None] >> np.arange(0, 7 * width, 7, dtype=np.uint64)
    data = (shifted & np.uint64(0x7F)).astype(np.uint8)
    data[np.arange(width) < (length - 1)[:, None]] |= 0x80
    return data, length


class Rows:
    """The column blocks of `n` messages of one type (fields added in number order)."""

    __slots__ = ("data", "lengths", "n")

    def __init__(self, n: int) -> None:
        self.n = n
        self.data: list[U8] = []
        self.lengths: list[I64] = []

    def raw(self, data: U8, lengths: I64 | None = None) -> None:
        """Bytes as they are: `data` (n, width), of which each row uses `lengths` (all)."""
        self.data.append(data)
        self.lengths.append(np.full(self.n, data.shape[1], np.int64) if lengths is None
                            else lengths)

    def constant(self, raw: bytes, present: Bool | None = None) -> None:
        """The same bytes on every row (or on the `present` rows)."""
        data = np.broadcast_to(np.frombuffer(raw, np.uint8), (self.n, len(raw)))
        self.raw(data, None if present is None else np.where(present, len(raw), 0))

    def varint(self, number: int, values: npt.NDArray[np.unsignedinteger]) -> None:
        """A varint field; left out where the value is 0."""
        as_u64 = values.astype(np.uint64, copy=False)
        present = as_u64 != 0
        self.constant(tag(number, VARINT), present)
        data, length = varints(as_u64)
        self.raw(data, np.where(present, length, 0))

    def length_delimited(self, number: int, data: U8, lengths: I64,
                         keep_empty: bool = False) -> None:
        """A bytes/string field of `lengths` bytes a row (left out where empty, unless
        `keep_empty`: a set submessage is written even when it is empty)."""
        present = np.ones(self.n, np.bool_) if keep_empty else lengths != 0
        self.constant(tag(number, LEN), present)
        size, size_length = varints(lengths.astype(np.uint64))
        self.raw(size, np.where(present, size_length, 0))
        self.raw(data, np.where(present, lengths, 0))

    def strings(self, number: int, values: Sequence[bytes]) -> None:
        """A string field with a value per row (Python bytes; empty ones left out)."""
        lengths = np.fromiter(map(len, values), np.int64, self.n)
        width = int(lengths.max()) if self.n else 0
        padded = b"".join(value.ljust(width, b"\0") for value in values)
        data = np.frombuffer(padded, np.uint8).reshape(self.n, width) if width else \
            np.zeros((self.n, 0), np.uint8)
        self.length_delimited(number, data, lengths)

    def same_string(self, number: int, value: bytes) -> None:
        """A string field with one value on every row (left out when empty)."""
        if value:
            self.constant(tag(number, LEN) + varint_bytes(len(value)) + value)

    def message(self, number: int, inner: Rows) -> None:
        """A submessage field, set on every row (written even when empty)."""
        lengths = inner.total()
        self.constant(tag(number, LEN))
        size, size_length = varints(lengths.astype(np.uint64))
        self.raw(size, size_length)
        self.data.extend(inner.data)
        self.lengths.extend(inner.lengths)

    def total(self) -> I64:
        """Each row's message length."""
        if not self.lengths:
            return np.zeros(self.n, np.int64)
        out: I64 = np.sum(self.lengths, axis=0)
        return out

    def pack(self) -> bytes:
        """Every row's message, concatenated in row order."""
        if not self.data:
            return b""
        data = np.concatenate(self.data, axis=1)
        used = np.concatenate([np.arange(d.shape[1]) < length[:, None]
                               for d, length in zip(self.data, self.lengths, strict=True)],
                              axis=1)
        return bytes(data[used].tobytes())

    def pack_rows(self) -> list[bytes]:
        """Each row's message as its own bytes."""
        packed = self.pack()
        ends = np.cumsum(self.total()).tolist()
        starts = [0, *ends[:-1]]
        return [packed[start:end] for start, end in zip(starts, ends, strict=True)]
