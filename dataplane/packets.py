"""Frames in batches: one contiguous buffer plus per-frame columns, no Python object per packet.

Every source (AF_XDP, AF_PACKET, pcap) hands the pipeline a `FrameBatch`; the parser and flow table
work column-wise over it with numpy, which is what keeps a Python dataplane at line rate.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["FrameBatch", "epoch_offset_ns"]

@functools.cache
def epoch_offset_ns() -> int:
    """CLOCK_REALTIME - CLOCK_MONOTONIC, read once per process: kernel stamps (monotonic) move
    to the epoch by the same amount every time, so a flow's first-seen time (part of its
    identity upstream) never shifts between two reads."""
    return time.time_ns() - time.monotonic_ns()


U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]


@dataclass(slots=True)
class FrameBatch:
    """N frames: bytes of frame i are `data[offsets[i] : offsets[i] + lengths[i]]`.

    `lengths` is what was captured, `wire_lengths` what was on the wire (differs only when a
    source truncates to a snap length); byte counters use `wire_lengths`. `ts_ns` is
    nanoseconds since the Unix epoch on the source's clock (recorded time for pcap replay).
    A source that lays frames out in fixed slots sets `stride`, which lets the parser read
    headers at a common offset as a 2-D view instead of a gather.

    The XDP ring buffer also says what happened to each frame: `verdict` (enum floe_verdict:
    forwarded or dropped), `rule_id` (0: no rule) and, for sampled records, `weight` (frames
    the record stands for) and `weight_bytes` (their wire bytes). None means: unknown verdict,
    no rule, every frame seen once (weight 1, its own wire length).
    """

    data: U8
    offsets: I64
    lengths: U32
    wire_lengths: U32
    ts_ns: I64
    ifindex: U32
    stride: int = 0  # > 0: frame i starts at i * stride (fixed slots, e.g. AF_XDP snaps)
    verdict: U8 | None = None
    rule_id: U32 | None = None
    weight: U32 | None = None
    weight_bytes: U64 | None = None

    def __len__(self) -> int:
        return int(self.offsets.shape[0])

    def frame(self, i: int) -> bytes:
        """One frame as bytes (tests and debugging only; never in the hot loop)."""
        start = int(self.offsets[i])
        return self.data[start : start + int(self.lengths[i])].tobytes()

    @property
    def total_bytes(self) -> int:
        """Wire bytes the batch stands for (weights included)."""
        if self.weight_bytes is not None:
            return int(self.weight_bytes.sum(dtype=np.uint64))
        return int(self.wire_lengths.sum(dtype=np.int64))

    @property
    def total_frames(self) -> int:
        """Frames the batch stands for (weights included)."""
        if self.weight is not None:
            return int(self.weight.sum(dtype=np.uint64))
        return len(self)

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
        out = cls(
            np.concatenate([b.data for b in batches]),
            np.concatenate([b.offsets + s for b, s in zip(batches, shifts, strict=True)]),
            np.concatenate([b.lengths for b in batches]),
            np.concatenate([b.wire_lengths for b in batches]),
            np.concatenate([b.ts_ns for b in batches]),
            np.concatenate([b.ifindex for b in batches]),
        )
        if any(b.verdict is not None or b.weight is not None for b in batches):
            out.verdict = np.concatenate([b.verdicts() for b in batches])
            out.rule_id = np.concatenate([b.rule_ids() for b in batches])
            out.weight = np.concatenate([b.weights() for b in batches])
            out.weight_bytes = np.concatenate([b.weights_bytes() for b in batches])
        return out

    # the optional columns, filled in with their meaning when absent
    def verdicts(self) -> U8:
        return self.verdict if self.verdict is not None else np.zeros(len(self), np.uint8)

    def rule_ids(self) -> U32:
        return self.rule_id if self.rule_id is not None else np.zeros(len(self), np.uint32)

    def weights(self) -> U32:
        return self.weight if self.weight is not None else np.ones(len(self), np.uint32)

    def weights_bytes(self) -> U64:
        if self.weight_bytes is not None:
            return self.weight_bytes
        return self.wire_lengths.astype(np.uint64)
