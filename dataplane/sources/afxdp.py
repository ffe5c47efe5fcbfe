"""AF_XDP in pure Python: one socket (own UMEM, fill/completion/RX rings) per RX queue.

The XDP program redirects each RX queue's frames into the socket registered for that queue in
its XSKMAP (`register_xsk(queue_id, fd)`, done here). Rings are mmap'd and read through numpy
views: a drain takes the whole run of descriptors between consumer and producer at once,
copies the first `snaplen` bytes of every frame out of the UMEM with one fancy-index copy,
gives the chunks straight back to the fill ring and publishes both ring indices — no Python per
packet. The kernel's XDP_STATISTICS (ring full, fill ring empty, invalid descriptors, dropped)
are reported by `loss()`. Why Python rather than libxdp via ctypes: docs/adr/0005-afxdp-in-python.md
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import mmap
import os
import select
import socket
import struct
import time
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from dataplane.packets import FrameBatch
from dataplane.sources.base import SourceError

__all__ = ["AfXdpSocket", "AfXdpSource", "XskRegistry", "ZeroCopy", "rx_queues"]

AF_XDP = 44
SOL_XDP = 283
XDP_MMAP_OFFSETS = 1
XDP_RX_RING = 2
XDP_UMEM_REG = 4
XDP_UMEM_FILL_RING = 5
XDP_UMEM_COMPLETION_RING = 6
XDP_STATISTICS = 7
XDP_COPY = 1 << 1
XDP_ZEROCOPY = 1 << 2
XDP_PGOFF_RX_RING = 0
XDP_UMEM_PGOFF_FILL_RING = 0x100000000
XDP_UMEM_PGOFF_COMPLETION_RING = 0x180000000
XDP_PACKET_HEADROOM = 256

DESC_DTYPE = np.dtype([("addr", "<u8"), ("len", "<u4"), ("options", "<u4")])
STATS_FIELDS = (
    "rx_dropped",
    "rx_invalid_descs",
    "tx_invalid_descs",
    "rx_ring_full",
    "rx_fill_ring_empty_descs",
    "tx_ring_empty_descs",
)

_libc = ctypes.CDLL(None, use_errno=True)
log = logging.getLogger(__name__)

ZeroCopy = Literal["off", "try", "require"]


@runtime_checkable
class XskRegistry(Protocol):
    """What the source needs from the XDP program (dataplane.bpf.loader.XdpProgram)."""

    def register_xsk(self, queue_id: int, sock_fd: int) -> None: ...

    def unregister_xsk(self, queue_id: int) -> bool: ...


def rx_queues(ifname: str) -> list[int]:
    """RX queue ids in use on an interface of the calling thread's namespace (netlink and
    ethtool: /sys/class/net would show the namespace sysfs was mounted in)."""
    from dataplane.interfaces import InterfaceError, interface_facts

    try:
        return list(range(interface_facts(ifname).rx_queues))
    except InterfaceError as exc:
        raise SourceError(str(exc)) from exc


@dataclass(slots=True)
class _Ring:
    """One mmap'd ring: producer/consumer words and a descriptor array."""

    mm: mmap.mmap
    producer: npt.NDArray[np.uint32]
    consumer: npt.NDArray[np.uint32]
    desc: npt.NDArray[np.void] | npt.NDArray[np.uint64]
    mask: int


def _ring(fd: int, pgoff: int, offsets: tuple[int, int, int], size: int, dtype: np.dtype) -> _Ring:  # type: ignore[type-arg]
    prod_off, cons_off, desc_off = offsets
    length = desc_off + size * dtype.itemsize
    mm = mmap.mmap(fd, length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=pgoff)
    return _Ring(
        mm=mm,
        producer=np.frombuffer(mm, np.uint32, 1, prod_off),
        consumer=np.frombuffer(mm, np.uint32, 1, cons_off),
        desc=np.frombuffer(mm, dtype, size, desc_off),
        mask=size - 1,
    )


class AfXdpSocket:
    """One AF_XDP socket bound to (ifindex, queue) in copy mode, with its own UMEM."""

    def __init__(
        self,
        ifindex: int,
        queue: int,
        frames: int = 4096,
        frame_size: int = 2048,
        ring_size: int = 4096,
        snaplen: int = 256,
        zerocopy: bool = False,
    ) -> None:
        for name, v in (("frames", frames), ("ring_size", ring_size), ("frame_size", frame_size)):
            if v & (v - 1):
                raise SourceError(f"{name} must be a power of two, not {v}")
        self.ifindex = ifindex
        self.queue = queue
        self.zerocopy = False  # set by a successful bind
        self._stats: dict[str, int] = {}  # last good XDP_STATISTICS (counters only grow)
        self.frame_size = frame_size
        self.snaplen = min(snaplen, frame_size)
        try:
            self.sock = socket.socket(AF_XDP, socket.SOCK_RAW, 0)
        except OSError as exc:
            raise SourceError(f"AF_XDP socket: {exc}") from exc
        try:
            self._setup(frames, ring_size, zerocopy)
        except BaseException:
            self.close()
            raise

    def _setup(self, frames: int, ring_size: int, zerocopy: bool) -> None:
        fd = self.sock.fileno()
        size = frames * self.frame_size
        self.umem_mm = mmap.mmap(-1, size, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self.umem = np.frombuffer(self.umem_mm, np.uint8)
        addr = self.umem.ctypes.data
        try:
            # struct xdp_umem_reg v1: addr, len, chunk_size, headroom (24 bytes: every kernel)
            self.sock.setsockopt(
                SOL_XDP, XDP_UMEM_REG, struct.pack("=QQII", addr, size, self.frame_size, 0)
            )
            for opt in (XDP_UMEM_FILL_RING, XDP_UMEM_COMPLETION_RING, XDP_RX_RING):
                self.sock.setsockopt(SOL_XDP, opt, struct.pack("=I", ring_size))
            raw = self.sock.getsockopt(SOL_XDP, XDP_MMAP_OFFSETS, 128)
        except OSError as exc:
            raise SourceError(f"AF_XDP setup on queue {self.queue}: {exc}") from exc
        # struct xdp_mmap_offsets: rx, tx, fr, cr, each {producer, consumer, desc, flags} u64
        off = struct.unpack("=16Q", raw)
        rx, fr = off[0:3], off[8:11]
        cr = off[12:15]
        self.rx = _ring(fd, XDP_PGOFF_RX_RING, rx, ring_size, DESC_DTYPE)
        self.fill = _ring(fd, XDP_UMEM_PGOFF_FILL_RING, fr, ring_size, np.dtype("<u8"))
        self.comp = _ring(fd, XDP_UMEM_PGOFF_COMPLETION_RING, cr, ring_size, np.dtype("<u8"))
        # Give the kernel every chunk the fill ring can hold.
        nfill = min(frames, ring_size)
        self.fill.desc[:nfill] = np.arange(nfill, dtype=np.uint64) * np.uint64(self.frame_size)
        self.fill.producer[0] = nfill
        self._rx_cons = int(self.rx.consumer[0])
        self._fill_prod = nfill
        self._bind(XDP_ZEROCOPY if zerocopy else XDP_COPY)
        self._umem2d = self.umem.reshape(-1, self.frame_size)

    def _bind(self, flags: int) -> None:
        sa = struct.pack("=HHIII", AF_XDP, flags, self.ifindex, self.queue, 0)
        buf = ctypes.create_string_buffer(sa, len(sa))
        if _libc.bind(self.sock.fileno(), buf, len(sa)) != 0:
            err = ctypes.get_errno()
            mode = "zero-copy" if flags & XDP_ZEROCOPY else "copy mode"
            raise SourceError(
                f"AF_XDP bind ({mode}) ifindex {self.ifindex} queue {self.queue}: "
                f"{os.strerror(err)}"
            )
        self.zerocopy = bool(flags & XDP_ZEROCOPY)

    def fileno(self) -> int:
        return self.sock.fileno()

    def pending(self) -> int:
        return (int(self.rx.producer[0]) - self._rx_cons) & 0xFFFFFFFF

    def drain(self, max_frames: int) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint32]]:
        """Copy out up to max_frames frames: ((n, snaplen) header bytes, wire lengths)."""
        n = min(self.pending(), max_frames)
        if n <= 0:
            return np.zeros((0, self.snaplen), np.uint8), np.zeros(0, np.uint32)
        cons = self._rx_cons
        idx = (cons + np.arange(n, dtype=np.int64)) & self.rx.mask
        desc = self.rx.desc[idx]
        addrs = desc["addr"]  # type: ignore[call-overload]
        lens = desc["len"].astype(np.uint32)  # type: ignore[call-overload]
        fs = self.frame_size
        rows = (addrs // np.uint64(fs)).astype(np.int64)
        inner = (addrs % np.uint64(fs)).astype(np.int64)
        snap = self.snaplen
        first = int(inner[0])
        if first + snap <= fs and bool((inner == first).all()):
            # copy mode puts every frame at the same offset: one row-gather copy
            data = self._umem2d[:, first : first + snap][rows]
        else:
            cols = np.minimum(inner[:, None] + np.arange(snap), fs - 1)
            data = self._umem2d[rows[:, None], cols]
        # chunks back to the fill ring, then release the RX descriptors
        fp = self._fill_prod
        fidx = (fp + np.arange(n, dtype=np.int64)) & self.fill.mask
        self.fill.desc[fidx] = rows.astype(np.uint64) * np.uint64(fs)
        self._fill_prod = (fp + n) & 0xFFFFFFFF
        self.fill.producer[0] = self._fill_prod
        self._rx_cons = (cons + n) & 0xFFFFFFFF
        self.rx.consumer[0] = self._rx_cons
        return data, lens

    def statistics(self) -> dict[str, int]:
        """The kernel's cumulative XDP_STATISTICS. If reading them fails (socket torn down
        under us) the last good values are returned: reported loss never drops back to 0."""
        try:
            raw = self.sock.getsockopt(SOL_XDP, XDP_STATISTICS, 48)
        except OSError:
            return dict(self._stats)
        values = struct.unpack(f"={len(raw) // 8}Q", raw)
        self._stats = dict(zip(STATS_FIELDS, values, strict=False))
        return dict(self._stats)

    def close(self) -> None:
        for name in ("rx", "fill", "comp"):
            ring = getattr(self, name, None)
            if ring is not None:
                del ring.producer, ring.consumer, ring.desc
                ring.mm.close()
        self.sock.close()
        for name in ("_umem2d", "umem"):  # views first: a set-up that failed has fewer
            if hasattr(self, name):
                delattr(self, name)
        if hasattr(self, "umem_mm"):
            self.umem_mm.close()


class AfXdpSource:
    """Tap-mode source: an AF_XDP socket on every RX queue of `ifname`, registered in the
    program's XSKMAP. Frames are truncated to `snaplen` bytes (headers are all the pipeline
    reads); `wire_lengths` keep the real sizes. Rings are deep (16k frames per queue) so a
    tick's pause does not overflow them, and a short drain waits `coalesce` seconds once for
    more frames: per-batch numpy overhead makes small batches expensive.

    `zero_copy`: "off" binds in copy mode; "try" asks the driver for zero-copy (it receives
    straight into the UMEM; native XDP and driver support needed) and falls back to copy mode
    queue by queue, logging why; "require" fails instead. `bind_mode` says what was used
    ("zerocopy" only if every queue got it), `fallback` why zero-copy was refused."""

    def __init__(
        self,
        ifname: str,
        program: XskRegistry,
        queues: list[int] | None = None,
        snaplen: int = 256,
        frames: int = 16384,
        ring_size: int = 16384,
        coalesce: float = 0.0005,
        zero_copy: ZeroCopy = "off",
    ) -> None:
        self.ifname = ifname
        self.coalesce = coalesce
        self.zero_copy = zero_copy
        self.fallback = ""
        try:
            self.ifindex = socket.if_nametoindex(ifname)
        except OSError as exc:
            raise SourceError(f"no interface {ifname}: {exc}") from exc
        self.program = program
        self.queues = rx_queues(ifname) if queues is None else queues
        self.sockets: list[AfXdpSocket] = []
        try:
            for q in self.queues:
                xsk = self._socket(q, frames, ring_size, snaplen)
                self.sockets.append(xsk)
                program.register_xsk(q, xsk.fileno())
        except BaseException:
            self.close()
            raise
        self._turn = 0
        self._poll = select.poll()
        for xsk in self.sockets:
            self._poll.register(xsk.fileno(), select.POLLIN)
        self._closed = False

    def _socket(self, queue: int, frames: int, ring_size: int, snaplen: int) -> AfXdpSocket:
        """A socket on `queue`, zero-copy when asked and the driver agrees."""
        if self.zero_copy != "off":
            try:
                return AfXdpSocket(self.ifindex, queue, frames=frames, ring_size=ring_size,
                                   snaplen=snaplen, zerocopy=True)
            except SourceError as error:
                if self.zero_copy == "require":
                    raise SourceError(f"{error}; zero-copy is required (--zero-copy require): "
                                      "use --zero-copy try to fall back to copy mode") from error
                if not self.fallback:
                    log.warning("%s: zero-copy AF_XDP refused (%s); copy mode", self.ifname,
                                error)
                self.fallback = str(error)
        return AfXdpSocket(self.ifindex, queue, frames=frames, ring_size=ring_size,
                           snaplen=snaplen)

    @property
    def bind_mode(self) -> str:
        """"zerocopy" when every socket is zero-copy, else "copy"."""
        if self.sockets and all(xsk.zerocopy for xsk in self.sockets):
            return "zerocopy"
        return "copy"

    def read_batch(self, max_frames: int, timeout: float) -> FrameBatch | None:
        if self._closed:
            return None
        parts = self._drain(max_frames)
        if not parts and timeout > 0:
            self._poll.poll(int(timeout * 1000))
            parts = self._drain(max_frames)
        got = sum(int(p[1].shape[0]) for p in parts)
        if parts and timeout > 0 and got < max_frames // 2 and self.coalesce > 0:
            # a short batch costs nearly as much as a full one: wait a moment for more
            time.sleep(self.coalesce)
            parts += self._drain(max_frames - got)
        if not parts:
            return FrameBatch.empty()
        now = time.time_ns()
        snap = parts[0][0].shape[1]
        data = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
        lens = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
        n = int(lens.shape[0])
        return FrameBatch(
            data=data.reshape(-1),
            offsets=np.arange(n, dtype=np.int64) * snap,  # (n, snap) rows laid end to end
            lengths=np.minimum(lens, np.uint32(snap)),
            wire_lengths=lens,
            ts_ns=np.full(n, now, np.int64),
            ifindex=np.full(n, self.ifindex, np.uint32),
            stride=snap,
        )

    def _drain(self, max_frames: int) -> list[tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint32]]]:
        parts = []
        left = max_frames
        k = len(self.sockets)
        self._turn = (self._turn + 1) % k if k else 0  # rotate: no queue starves the others
        for i in range(k):
            xsk = self.sockets[(self._turn + i) % k]
            if left <= 0:
                break
            data, lens = xsk.drain(left)
            if lens.size:
                parts.append((data, lens))
                left -= int(lens.size)
        return parts

    def loss(self) -> dict[str, int]:
        """Frames the kernel could not hand us, summed over queues, one key per cause so the
        values add up: `fill_ring_empty` (we returned chunks too slowly), `rx_ring_full` (we
        drained too slowly), `dropped_other` (rest of the kernel's rx_dropped), and
        `invalid_descs` (bad fill-ring entries: a bug here if ever non-zero)."""
        total = dict.fromkeys(STATS_FIELDS, 0)
        for xsk in self.sockets:
            for key, value in xsk.statistics().items():
                total[key] += value
        fill_empty = total["rx_fill_ring_empty_descs"]
        ring_full = total["rx_ring_full"]
        return {
            "fill_ring_empty": fill_empty,
            "rx_ring_full": ring_full,
            "dropped_other": max(0, total["rx_dropped"] - fill_empty - ring_full),
            "invalid_descs": total["rx_invalid_descs"],
        }

    def close(self) -> None:
        if getattr(self, "_closed", False):
            return
        self._closed = True
        for xsk in self.sockets:
            with contextlib.suppress(Exception):  # best effort: the program may be gone already
                self.program.unregister_xsk(xsk.queue)
            xsk.close()
        self.sockets = []
