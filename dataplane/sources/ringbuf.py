"""The XDP program's ring buffer (BPF_MAP_TYPE_RINGBUF) as a packet source.

Pass-through mode: floe_xdp copies the first bytes of every passed frame (1 in N under
sampling) into the ring with its length, timestamp, verdict, rule and weight
(`struct floe_ring_rec`), and returns XDP_PASS — the host stack keeps every packet. Every XDP
mode also writes sampled dropped frames there. This module reads the ring in batches: the
consumer page is mapped writable, the producer page and the data (mapped twice by the
kernel, so a record that wraps is contiguous) read-only. Records of one snap length all have
the same size, so a run of them is one 2-D numpy view: the headers are checked (BUSY bit:
not committed yet) and copied, then the frame bytes, then the consumer position is
published — no Python per record. A run of another size (the snap length changed) ends the
batch and the next read starts from it. Loss (ring full) is counted by the kernel
(`ring_full`), not here.

Ordering: the headers are read before the frame bytes, and the consumer position written
after both, as libbpf's consumer does with acquire/release; plain loads and stores give that
order on x86-64 (total store order). On weaker memory models a fence would be needed.
"""

from __future__ import annotations

import mmap
import select
import time
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from dataplane.bpf.layout import RING_REC_DTYPE
from dataplane.packets import FrameBatch, epoch_offset_ns
from dataplane.sources.base import SourceError

__all__ = ["RING_HEADER", "RingProgram", "RingSource", "RingbufReader"]

RING_HEADER = 8  # the kernel's record header: u32 length (BUSY, DISCARD bits), u32 page offset
_BUSY = 1 << 31
_DISCARD = 1 << 30
_REC = RING_REC_DTYPE.itemsize  # struct floe_ring_rec


@runtime_checkable
class RingProgram(Protocol):
    """What the source needs from the XDP program (dataplane.bpf.loader.XdpProgram)."""

    ifindex: int

    @property
    def ring_fd(self) -> int: ...

    def ring_bytes(self) -> int: ...


def _round8(n: int) -> int:
    return (n + 7) & ~7


class RingbufReader:
    """mmap'd ring buffer: `read(max)` returns the committed records' headers and frame bytes
    and releases their space."""

    def __init__(self, fd: int, size: int) -> None:
        if size <= 0 or size & (size - 1):
            raise SourceError(f"ring buffer size {size} is not a power of two")
        page = mmap.PAGESIZE
        self.size = size
        self.mask = size - 1
        try:
            self._cons_mm = mmap.mmap(fd, page, mmap.MAP_SHARED,
                                      mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
            self._data_mm = mmap.mmap(fd, page + 2 * size, mmap.MAP_SHARED, mmap.PROT_READ,
                                      offset=page)
        except (OSError, ValueError) as error:
            raise SourceError(f"mmap of the ring buffer: {error}") from error
        self._consumer = np.frombuffer(self._cons_mm, np.uint64, 1, 0)
        self._producer = np.frombuffer(self._data_mm, np.uint64, 1, 0)
        self._data = np.frombuffer(self._data_mm, np.uint8, 2 * size, page)
        self.records = 0  # read so far
        self.skipped = 0  # discarded by the kernel (never written by floe_xdp) or malformed

    def pending_bytes(self) -> int:
        return int(self._producer[0]) - int(self._consumer[0])

    def read(self, max_records: int) -> tuple[npt.NDArray[np.void], npt.NDArray[np.uint8]]:
        """Up to `max_records` committed records of one size: (headers as RING_REC_DTYPE,
        (n, snap) frame bytes). Empty arrays when nothing is committed."""
        cons = int(self._consumer[0])
        while True:
            avail = int(self._producer[0]) - cons
            if avail <= 0 or max_records <= 0:
                return _empty()
            off = cons & self.mask
            word = int(self._data[off:off + 4].view("<u4")[0])
            if word & _BUSY:
                return _empty()
            rec_len = word & ~(_BUSY | _DISCARD)
            stride = _round8(RING_HEADER + rec_len)
            if word & _DISCARD or rec_len < _REC:  # not ours to read: skip it
                cons += stride
                self._consumer[0] = cons
                self.skipped += 1
                continue
            break
        n = min(avail // stride, max_records)
        if n <= 0:
            return _empty()
        view = self._data[off:off + n * stride].reshape(n, stride)
        words = view[:, :4].copy().view("<u4")[:, 0]  # headers first: then the bytes they guard
        same = words == word
        k = n if bool(same.all()) else int(np.argmin(same))
        rows = view[:k]
        headers = np.ascontiguousarray(rows[:, RING_HEADER:RING_HEADER + _REC]).view(
            RING_REC_DTYPE)[:, 0]
        frames = rows[:, RING_HEADER + _REC:RING_HEADER + rec_len].copy()
        self._consumer[0] = cons + k * stride  # the space goes back to the kernel
        self.records += k
        return headers, frames

    def close(self) -> None:
        for name in ("_consumer", "_producer", "_data"):
            if hasattr(self, name):
                delattr(self, name)
        for mm in (getattr(self, "_cons_mm", None), getattr(self, "_data_mm", None)):
            if mm is not None:
                mm.close()


def _empty() -> tuple[npt.NDArray[np.void], npt.NDArray[np.uint8]]:
    return np.zeros(0, RING_REC_DTYPE), np.zeros((0, 0), np.uint8)


class RingSource:
    """Frames from the ring buffer as FrameBatches with verdict, rule and weight columns.

    Timestamps are the kernel's CLOCK_MONOTONIC_COARSE (jiffy steps, as the inline flow map) moved
    to the epoch. A short drain waits
    `coalesce` seconds once for more (per-batch numpy overhead makes small batches costly).
    `loss()` is empty: the kernel counts what did not fit (`ring_full`), the runner reports it.
    """

    def __init__(self, program: RingProgram, coalesce: float = 0.0005) -> None:
        self.program = program
        self.ifindex = program.ifindex
        self.coalesce = coalesce
        self.reader = RingbufReader(program.ring_fd, program.ring_bytes())
        self._poll = select.poll()
        self._poll.register(program.ring_fd, select.POLLIN)
        self._closed = False
        # frames that rode on the records read (their weight - 1), by verdict: with what the
        # kernel still carries (XdpProgram.ring_state()), the frames sampled out
        self.sampled_out: dict[int, int] = {}

    def fileno(self) -> int:
        return self.program.ring_fd

    def read_batch(self, max_frames: int, timeout: float) -> FrameBatch | None:
        if self._closed:
            return None
        parts = self._drain(max_frames)
        if not parts and timeout > 0:
            self._poll.poll(max(1, int(timeout * 1000)))
            parts = self._drain(max_frames)
        got = sum(int(p[0].shape[0]) for p in parts)
        if parts and timeout > 0 and got < max_frames // 2 and self.coalesce > 0:
            time.sleep(self.coalesce)
            parts += self._drain(max_frames - got)
        if not parts:
            return FrameBatch.empty()
        return self._batch(parts)

    def _drain(self, max_frames: int) -> list[tuple[npt.NDArray[np.void], npt.NDArray[np.uint8]]]:
        parts = []
        left = max_frames
        while left > 0:
            headers, frames = self.reader.read(left)
            if headers.shape[0] == 0:
                break
            parts.append((headers, frames))
            left -= int(headers.shape[0])
        return parts

    def _batch(self, parts: list[tuple[npt.NDArray[np.void], npt.NDArray[np.uint8]]]
               ) -> FrameBatch:
        snap = max(int(p[1].shape[1]) for p in parts)
        if len(parts) == 1:
            headers, data = parts[0]
        elif all(p[1].shape[1] == snap for p in parts):
            headers = np.concatenate([p[0] for p in parts])
            data = np.concatenate([p[1] for p in parts])
        else:  # different snap sizes: pad to the widest so the rows stay fixed slots
            headers = np.concatenate([p[0] for p in parts])
            data = np.zeros((headers.shape[0], snap), np.uint8)
            at = 0
            for h, f in parts:
                data[at:at + h.shape[0], :f.shape[1]] = f
                at += h.shape[0]
        n = int(headers.shape[0])
        rode = headers["weight"].astype(np.int64) - 1
        for verdict in np.unique(headers["verdict"]).tolist():
            extra = int(rode[headers["verdict"] == verdict].sum())
            self.sampled_out[verdict] = self.sampled_out.get(verdict, 0) + extra
        offset = epoch_offset_ns()
        return FrameBatch(
            data=data.reshape(-1),
            offsets=np.arange(n, dtype=np.int64) * snap,
            lengths=np.minimum(headers["caplen"], headers["len"]).astype(np.uint32),
            wire_lengths=headers["len"].astype(np.uint32),
            ts_ns=headers["ts_ns"].astype(np.int64) + np.int64(offset),
            ifindex=np.full(n, self.ifindex, np.uint32),
            stride=snap,
            verdict=headers["verdict"].astype(np.uint8),
            rule_id=headers["rule_id"].astype(np.uint32),
            weight=headers["weight"].astype(np.uint32),
            weight_bytes=headers["weight_bytes"].astype(np.uint64),
        )

    def loss(self) -> dict[str, int]:
        return {}

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.reader.close()
