"""pcap files: a classic-pcap writer (tests write known captures) and a replaying `Source`.

Classic pcap in both byte orders and both timestamp resolutions (µs magic a1b2c3d4, ns magic
a1b23c4d) and pcapng (section/interface/enhanced and simple packet blocks, if_tsresol) are read;
only Ethernet link type (pcapng packets of other interfaces are counted, not delivered).
The file is memory-mapped and each batch is one contiguous slice of it, so a batch costs one
copy; the record headers are walked with `struct` (a pcap is sequential by
construction), which is fine for replay and keeps the hot AF_XDP path untouched.
Replay runs at maximum speed or paced to the recorded timestamps (`speed` multiplier); a
progress bar goes to stderr only when stderr is a terminal.
"""

from __future__ import annotations

import mmap
import struct
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Literal, TextIO

import numpy as np

from dataplane.packets import FrameBatch
from dataplane.sources.base import SourceError

__all__ = ["LINKTYPE_ETHERNET", "PcapSource", "PcapWriter", "read_pcap"]

LINKTYPE_ETHERNET = 1
MAGIC_US = 0xA1B2C3D4
MAGIC_NS = 0xA1B23C4D
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_IDB = 1
PCAPNG_SPB = 3
PCAPNG_EPB = 6
PCAPNG_BOM = 0x1A2B3C4D
GLOBAL_HEADER = 24
RECORD_HEADER = 16
INT64_MAX = (1 << 63) - 1
# Smallest well-formed pcapng blocks: header + fixed fields + trailing length.
PCAPNG_MIN_BLOCK = {PCAPNG_IDB: 20, PCAPNG_SPB: 16, PCAPNG_EPB: 32}


def _ng_ns(ticks: int, tsresol: int) -> int:
    """pcapng timestamp -> ns: tsresol is 10^-n, or 2^-n with the high bit set."""
    if tsresol & 0x80:
        ns = (ticks * 1_000_000_000) >> (tsresol & 0x7F)
    elif tsresol <= 9:
        ns = ticks * int(10 ** (9 - tsresol))
    else:
        ns = ticks // int(10 ** (tsresol - 9))
    return min(ns, INT64_MAX)  # a coarse resolution with huge ticks must not overflow ts_ns


class PcapWriter:
    """Write frames to a classic pcap file (little-endian unless `big_endian`)."""

    def __init__(
        self,
        path: str | Path,
        nanosecond: bool = True,
        big_endian: bool = False,
        snaplen: int = 65535,
    ) -> None:
        self._endian = ">" if big_endian else "<"
        self._ns = nanosecond
        self._file: BinaryIO = open(path, "wb")  # closed by close() / __exit__
        magic = MAGIC_NS if nanosecond else MAGIC_US
        self._file.write(
            struct.pack(self._endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, LINKTYPE_ETHERNET)
        )

    def write(self, frame: bytes, ts_ns: int, wire_length: int | None = None) -> None:
        sec, frac = divmod(ts_ns, 1_000_000_000)
        if not self._ns:
            frac //= 1000
        wire = len(frame) if wire_length is None else wire_length
        self._file.write(struct.pack(self._endian + "IIII", sec, frac, len(frame), wire))
        self._file.write(frame)

    def write_batch(self, batch: FrameBatch) -> None:
        for i in range(len(batch)):
            self.write(batch.frame(i), int(batch.ts_ns[i]), int(batch.wire_lengths[i]))

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class PcapSource:
    """Replay a pcap file as FrameBatches.

    `speed="max"` replays as fast as the reader goes; a number paces the replay to the
    recorded inter-frame times divided by it (1.0 = recorded speed). Frame timestamps stay the
    recorded ones. `read_batch` returns None at end of file.
    """

    def __init__(
        self,
        path: str | Path,
        speed: float | Literal["max"] = "max",
        ifindex: int = 0,
        progress: bool | None = None,
        progress_stream: TextIO | None = None,
    ) -> None:
        self.path = Path(path)
        self.speed = speed
        self.ifindex = ifindex
        stream = progress_stream if progress_stream is not None else sys.stderr
        self._stream = stream
        self._progress = stream.isatty() if progress is None else progress
        try:
            with open(self.path, "rb") as fh:
                self._mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as exc:
            raise SourceError(f"cannot open pcap {self.path}: {exc}") from exc
        self._size = len(self._mm)
        if self._size < GLOBAL_HEADER:
            raise SourceError(f"{self.path}: not a pcap file (too short)")
        (magic,) = struct.unpack_from("<I", self._mm, 0)
        self._ng = magic == PCAPNG_SHB
        self._pos = GLOBAL_HEADER
        self._ifaces: list[tuple[int, int]] = []  # pcapng: (linktype, tsresol code)
        self._unsupported = 0
        self._malformed = 0
        if self._ng:
            self._endian = "<"
            self._pos = 0  # the section header block is read as the first block
            self._rec = struct.Struct("<II")
        elif magic in (MAGIC_US, MAGIC_NS):
            self._endian = "<"
        else:
            (magic,) = struct.unpack_from(">I", self._mm, 0)
            if magic not in (MAGIC_US, MAGIC_NS):
                raise SourceError(f"{self.path}: unknown pcap magic {magic:#x}")
            self._endian = ">"
        if not self._ng:
            self._scale = 1 if magic == MAGIC_NS else 1000
            linktype = struct.unpack_from(self._endian + "I", self._mm, 20)[0] & 0x0FFFFFFF
            if linktype != LINKTYPE_ETHERNET:
                raise SourceError(f"{self.path}: link type {linktype} is not Ethernet")
            self._rec = struct.Struct(self._endian + "IIII")
        self._frames = 0
        self._truncated = 0
        self._first_ts: int | None = None
        self._wall0 = 0.0
        self._last_draw = 0.0
        self._closed = False

    def _due(self, ts_ns: int) -> float:
        """Seconds until a frame recorded at ts_ns is due (paced replay)."""
        if self.speed == "max" or self._first_ts is None:
            return 0.0
        target = self._wall0 + (ts_ns - self._first_ts) / 1e9 / float(self.speed)
        return target - time.monotonic()

    def read_batch(self, max_frames: int, timeout: float) -> FrameBatch | None:
        if self._closed:
            return None
        pos = self._pos
        first = self._record(pos)
        if first is None:
            self._draw(final=True)
            return None
        deadline = time.monotonic() + timeout
        start = pos  # the batch is one copy of the file from here to the last record
        offsets: list[int] = []
        caplens: list[int] = []
        wires: list[int] = []
        stamps: list[int] = []
        rec: tuple[int, int, int, int, int] | None = first
        while rec is not None and len(offsets) < max_frames:
            data_at, caplen, wire, ts, after = rec
            if self._first_ts is None:
                self._first_ts = ts
                self._wall0 = time.monotonic()
            wait = self._due(ts)
            if wait > 0:
                if offsets:
                    break  # hand over what is due now
                if time.monotonic() + wait > deadline:
                    time.sleep(max(0.0, deadline - time.monotonic()))
                    self._pos = pos
                    return FrameBatch.empty()
                time.sleep(wait)
            offsets.append(data_at - start)
            caplens.append(caplen)
            wires.append(wire)
            stamps.append(ts)
            pos = after
            rec = self._record(pos) if len(offsets) < max_frames else None
        if rec is None and len(offsets) < max_frames:
            pos = max(pos, self._pos_after_scan)  # skipped blocks, or a cut-off tail
        self._pos = pos
        n = len(offsets)
        if n == 0:
            return None
        data = np.frombuffer(self._mm, np.uint8, count=pos - start, offset=start).copy()
        self._frames += n
        self._draw()
        return FrameBatch(
            data=data,
            offsets=np.asarray(offsets, np.int64),
            lengths=np.asarray(caplens, np.uint32),
            wire_lengths=np.asarray(wires, np.uint32),
            ts_ns=np.asarray(stamps, np.int64),
            ifindex=np.full(n, self.ifindex, np.uint32),
        )

    def _record(self, pos: int) -> tuple[int, int, int, int, int] | None:
        """The next frame at or after `pos`: (data offset, caplen, wire length, ts_ns, offset
        after it), or None at the end. Sets `_pos_after_scan` to where reading stopped."""
        mm, size = self._mm, self._size
        if not self._ng:
            self._pos_after_scan = pos
            if pos + RECORD_HEADER > size:
                if pos < size:  # a partial record header at the end
                    self._truncated += 1
                    self._pos_after_scan = size
                return None
            sec, frac, caplen, wire = self._rec.unpack_from(mm, pos)
            if pos + RECORD_HEADER + caplen > size:
                self._truncated += 1
                self._pos_after_scan = size
                return None
            ts = sec * 1_000_000_000 + frac * self._scale
            return pos + RECORD_HEADER, caplen, wire, ts, pos + RECORD_HEADER + caplen
        while True:  # pcapng: walk blocks until a packet block
            self._pos_after_scan = pos
            if pos + 12 > size:
                if pos < size:
                    self._truncated += 1
                    self._pos_after_scan = size
                return None
            btype, blen = self._rec.unpack_from(mm, pos)
            if btype == PCAPNG_SHB:
                (bom,) = struct.unpack_from("<I", mm, pos + 8)
                self._endian = "<" if bom == PCAPNG_BOM else ">"
                self._rec = struct.Struct(self._endian + "II")
                btype, blen = self._rec.unpack_from(mm, pos)
                self._ifaces = []
            if blen < 12 or blen % 4 or pos + blen > size:
                self._truncated += 1
                self._pos_after_scan = size
                return None
            e = self._endian
            if blen < PCAPNG_MIN_BLOCK.get(btype, 12):
                self._malformed += 1  # too short for its fixed fields: skip, never misread
                pos += blen
                continue
            if btype == PCAPNG_IDB:
                linktype = struct.unpack_from(e + "H", mm, pos + 8)[0]
                self._ifaces.append((linktype, self._tsresol(pos + 16, pos + blen - 4)))
            elif btype == PCAPNG_EPB:
                iface, hi, lo, caplen, wire = struct.unpack_from(e + "IIIII", mm, pos + 8)
                if iface < len(self._ifaces) and self._ifaces[iface][0] == LINKTYPE_ETHERNET:
                    ts = _ng_ns((hi << 32) | lo, self._ifaces[iface][1])
                    return pos + 28, min(caplen, blen - 32), wire, ts, pos + blen
                self._unsupported += 1
            elif btype == PCAPNG_SPB:
                (wire,) = struct.unpack_from(e + "I", mm, pos + 8)
                if self._ifaces and self._ifaces[0][0] == LINKTYPE_ETHERNET:
                    return pos + 12, min(wire, blen - 16), wire, 0, pos + blen
                self._unsupported += 1
            pos += blen

    def _tsresol(self, opt: int, end: int) -> int:
        """if_tsresol option of an interface description block (default 6: microseconds)."""
        e = self._endian
        while opt + 4 <= end:
            code, length = struct.unpack_from(e + "HH", self._mm, opt)
            if code == 0:
                break
            if code == 9 and length >= 1:
                return int(self._mm[opt + 4])
            opt += 4 + (length + 3) // 4 * 4
        return 6

    def _draw(self, final: bool = False) -> None:
        if not self._progress:
            return
        now = time.monotonic()
        if not final and now - self._last_draw < 0.2:
            return
        self._last_draw = now
        frac = self._pos / self._size if self._size else 1.0
        filled = int(frac * 30)
        self._stream.write(
            f"\r{self.path.name} [{'#' * filled}{' ' * (30 - filled)}] "
            f"{frac * 100:5.1f}% {self._frames} frames" + ("\n" if final else "")
        )
        self._stream.flush()
        if final:
            self._progress = False

    def loss(self) -> dict[str, int]:
        """Frames we could not deliver: records cut short, (pcapng) packets of non-Ethernet
        interfaces, and (pcapng) blocks too short for their own fixed fields."""
        return {
            "truncated_records": self._truncated,
            "unsupported_link": self._unsupported,
            "malformed_records": self._malformed,
        }

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._mm.close()


def read_pcap(path: str | Path, ifindex: int = 0) -> FrameBatch:
    """Whole file as one batch (tests, small captures)."""
    src = PcapSource(path, ifindex=ifindex, progress=False)
    try:
        batches = []
        while (b := src.read_batch(1 << 16, 0.0)) is not None:
            batches.append(b)
        return FrameBatch.concat(batches)
    finally:
        src.close()
