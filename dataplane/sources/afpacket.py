"""AF_PACKET TPACKET_V3 source: a block-based mmap ring, for hosts where XDP is unavailable.

The kernel fills whole blocks (or retires a partial block after `block_timeout_ms`) and hands
them over by flipping the block status; we copy each ready block out in one piece, walk its
packet headers, and give it back. Kernel-side drops come from PACKET_STATISTICS (reading them
resets them, so they are accumulated here). Linux strips the 802.1Q tag of received frames into
packet metadata; it is put back into the copied frame so the parser sees the same bytes the XDP
path sees.
"""

from __future__ import annotations

import mmap
import select
import socket
import struct

import numpy as np
import numpy.typing as npt

from dataplane.packets import FrameBatch
from dataplane.sources.base import SourceError

__all__ = ["AfPacketSource"]

SOL_PACKET = 263
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
PACKET_IGNORE_OUTGOING = 23
TPACKET_V3 = 2
ETH_P_ALL = 0x0003
TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_VLAN_TPID_VALID = 1 << 6

# struct tpacket3_hdr: next_offset, sec, nsec, snaplen, len, status, mac(u16), net(u16),
# rxhash, vlan_tci, vlan_tpid(u16)
_PKT = struct.Struct("=IIIIIIHHIIH")
# struct tpacket_block_desc: version, offset_to_priv, then hdr_v1: block_status, num_pkts,
# offset_to_first_pkt, blk_len
_BLOCK = struct.Struct("=IIIIII")


def _insert_vlan_tags(
    data: npt.NDArray[np.uint8],
    offsets: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.uint32],
    tags: npt.NDArray[np.uint32],
    tagged: npt.NDArray[np.bool_],
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], npt.NDArray[np.uint32]]:
    """Re-insert a 4-byte tag (TPID<<16 | TCI) after the MACs of every `tagged` frame."""
    n = offsets.shape[0]
    length = lengths.astype(np.int64)
    new_len = length + 4 * tagged
    new_off = np.zeros(n, np.int64)
    np.cumsum(new_len[:-1], out=new_off[1:])
    total = int(new_len.sum())
    frame = np.repeat(np.arange(n), new_len)
    local = np.arange(total, dtype=np.int64) - new_off[frame]
    shift = np.where(tagged[frame] & (local >= 16), 4, 0)
    src = np.minimum(offsets[frame] + local - shift, max(0, data.shape[0] - 1))
    out = data[src] if data.shape[0] else np.zeros(total, np.uint8)
    in_tag = tagged[frame] & (local >= 12) & (local < 16)
    tag_bytes = tags.astype(">u4").view(np.uint8).reshape(n, 4)
    out[in_tag] = tag_bytes[frame[in_tag], local[in_tag] - 12]
    return out, new_off, new_len.astype(np.uint32)


class AfPacketSource:
    """Receive every frame of `ifname` through a TPACKET_V3 ring.

    `max_frames` in `read_batch` is honoured per block: whole blocks are taken until it is
    reached (a block is released only as a whole).
    """

    def __init__(
        self,
        ifname: str,
        block_size: int = 1 << 20,
        block_count: int = 16,
        frame_size: int = 2048,
        block_timeout_ms: int = 10,
        ignore_outgoing: bool = False,
    ) -> None:
        self.ifname = ifname
        try:
            self.ifindex = socket.if_nametoindex(ifname)
            # protocol 0 until bind: a socket opened with ETH_P_ALL would capture every
            # interface's traffic into the ring until it is bound to ours
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except OSError as exc:
            raise SourceError(f"AF_PACKET on {ifname}: {exc}") from exc
        try:
            self.sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
            if ignore_outgoing:
                self.sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            req = struct.pack(
                "=7I",
                block_size,
                block_count,
                frame_size,
                block_size * block_count // frame_size,
                block_timeout_ms,
                0,
                0,
            )
            self.sock.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
            self.mm = mmap.mmap(
                self.sock.fileno(),
                block_size * block_count,
                mmap.MAP_SHARED,
                mmap.PROT_READ | mmap.PROT_WRITE,
            )
            self.sock.bind((ifname, ETH_P_ALL))
        except OSError as exc:
            self.sock.close()
            raise SourceError(f"AF_PACKET ring on {ifname}: {exc}") from exc
        self.block_size = block_size
        self.block_count = block_count
        self._block = 0
        self._drops = 0
        self._poll = select.poll()
        self._poll.register(self.sock.fileno(), select.POLLIN | select.POLLERR)
        self._closed = False

    def _ready(self) -> bool:
        status = _BLOCK.unpack_from(self.mm, self._block * self.block_size)[2]
        return bool(status & TP_STATUS_USER)

    def read_batch(self, max_frames: int, timeout: float) -> FrameBatch | None:
        if self._closed:
            return None
        if not self._ready() and timeout > 0:
            self._poll.poll(int(timeout * 1000))
        chunks: list[npt.NDArray[np.uint8]] = []
        rows: list[tuple[int, int, int, int, int]] = []  # offset, snap, wire, ts, tag
        base = 0
        taken = 0
        while taken < max_frames and self._ready():
            start = self._block * self.block_size
            _, _, _, num, first, used = _BLOCK.unpack_from(self.mm, start)
            used = min(max(used, first), self.block_size)
            block = np.frombuffer(self.mm, np.uint8, used, start).copy()
            pos = first
            for _ in range(num):
                nxt, sec, nsec, snap, wire, status, mac, _net, _h, tci, tpid = _PKT.unpack_from(
                    block, pos
                )
                vlan = 0
                if status & TP_STATUS_VLAN_VALID:
                    tpid = tpid if status & TP_STATUS_VLAN_TPID_VALID else 0x8100
                    vlan = (tpid << 16) | tci
                rows.append((base + pos + mac, snap, wire, sec * 1_000_000_000 + nsec, vlan))
                pos += nxt
            chunks.append(block)
            base += used
            taken += num
            # hand the block back to the kernel
            struct.pack_into("=I", self.mm, start + 8, TP_STATUS_KERNEL)
            self._block = (self._block + 1) % self.block_count
        if not rows:
            return FrameBatch.empty()
        cols = np.array(rows, dtype=np.int64)
        data = np.concatenate(chunks) if len(chunks) > 1 else chunks[0]
        offsets = cols[:, 0]
        lengths = cols[:, 1].astype(np.uint32)
        wire = cols[:, 2].astype(np.uint32)
        tagged = cols[:, 4] != 0
        if tagged.any():
            data, offsets, lengths = _insert_vlan_tags(
                data, offsets, lengths, cols[:, 4].astype(np.uint32), tagged
            )
            wire = wire + (4 * tagged).astype(np.uint32)
        n = offsets.shape[0]
        return FrameBatch(
            data=data,
            offsets=offsets,
            lengths=lengths,
            wire_lengths=wire,
            ts_ns=cols[:, 3].copy(),
            ifindex=np.full(n, self.ifindex, np.uint32),
        )

    def loss(self) -> dict[str, int]:
        """Frames the kernel dropped because the ring was full (cumulative)."""
        if not self._closed:
            raw = self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 12)
            _packets, drops, _freezes = struct.unpack("=III", raw)
            self._drops += drops
        return {"kernel_drops": self._drops}

    def close(self) -> None:
        if self._closed:
            return
        self.loss()
        self._closed = True
        self.mm.close()
        self.sock.close()
