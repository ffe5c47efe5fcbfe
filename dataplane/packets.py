"""Frames in batches: one contiguous buffer plus per-frame columns, no Python object per packet.

Every source (AF_XDP, AF_PACKET, pcap) hands the pipeline a `FrameBatch`; the parser and flow table
work column-wise over it with numpy, which is what keeps a Python dataplane at line rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["FrameBatch"]

U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]


@dataclass(slots=True)
class FrameBatch:
    """N frames: bytes of frame i are `data[offsets[i] : offsets[i] + lengths[i]]`.

    `lengths` is what was captured, `wire_lengths` what was on the wire (differs only when a
    source truncates to a snap length); byte counters use `wire_lengths`. `ts_ns` is
    nanoseconds since the Unix epoch on the source's clock (recorded time for pcap replay).
    A source that lays frames out in fixed slots sets `stride`, which lets the parser read
    headers at a common offset as a 2-D view instead of a gather.
    """

    data: U8
    offsets: I64
    lengths: U32
    wire_lengths: U32
    ts_ns: I64
    ifindex: U32
    stride: int = 0  # > 0: frame i starts at i * stride (fixed slots, e.g. AF_XDP snaps)

    def __len__(self) -> int:
        return int(self.offsets.shape[0])

    def frame(self, i: int) -> bytes:
        """One frame as bytes (tests and debugging only; never in the hot loop)."""
        start = int(self.offsets[i])
        return self.data[start : start + int(self.lengths[i])].tobytes()

    @property
    def total_bytes(self) -> int:
        return int(self.wire_lengths.sum(dtype=np.int64))

    @classmethod
    def empty(cls) -> FrameBatch:
        return cls(
            np.zeros(0, np.uint8),
            np.zeros(0, np.int64),
            np.zeros(0, np.uint32),
            np.zeros(0, np.uint32),
            np.zeros(0, np.int64),
            np.zeros(0, np.uint32),
        )

    @classmethod
    def from_frames(
        cls,
        frames: Sequence[bytes],
        ts_ns: int | Sequence[int] = 0,
        ifindex: int | Sequence[int] = 0,
        wire_lengths: Sequence[int] | None = None,
    ) -> FrameBatch:
        """Pack byte strings into one batch (pcap reader, tests)."""
        n = len(frames)
        lengths = np.fromiter((len(f) for f in frames), dtype=np.uint32, count=n)
        offsets = np.zeros(n, np.int64)
        if n:
            np.cumsum(lengths[:-1], out=offsets[1:])
        data = np.frombuffer(b"".join(frames), dtype=np.uint8).copy()
        wire = lengths.copy() if wire_lengths is None else np.asarray(wire_lengths, np.uint32)
        ts = np.broadcast_to(np.asarray(ts_ns, np.int64), (n,)).copy()
        ifx = np.broadcast_to(np.asarray(ifindex, np.uint32), (n,)).copy()
        return cls(data, offsets, lengths, wire, ts, ifx)

    @classmethod
    def concat(cls, batches: Sequence[FrameBatch]) -> FrameBatch:
        """Join batches (several RX queues into one pipeline step)."""
        batches = [b for b in batches if len(b)]
        if not batches:
            return cls.empty()
        if len(batches) == 1:
            return batches[0]
        shifts = np.cumsum([0] + [b.data.shape[0] for b in batches[:-1]])
        return cls(
            np.concatenate([b.data for b in batches]),
            np.concatenate([b.offsets + s for b, s in zip(batches, shifts, strict=True)]),
            np.concatenate([b.lengths for b in batches]),
            np.concatenate([b.wire_lengths for b in batches]),
            np.concatenate([b.ts_ns for b in batches]),
            np.concatenate([b.ifindex for b in batches]),
        )
