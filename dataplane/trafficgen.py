"""Known traffic on demand: exact frame builders and two bounded senders.

- `build_frame(FrameSpec)` / `malformed_frame(reason)`: byte-exact Ethernet frames, IPv4 or
  IPv6, TCP/UDP/ICMP/ICMPv6, 0-2 VLAN tags (802.1Q / 802.1ad), and one malformed variant
  per reason the XDP program counts.
- `AfPacketSender`: exact frames through an AF_PACKET socket with sendmmsg (bounded).
- `LiveFrameGenerator`: BPF_PROG_RUN with live frames on a tiny XDP_TX program — the rate
  generator (~1.9 Mpps into a veth here), bounded in count and time.
Both senders work from inside a network namespace (see dataplane.netns.call_in).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import ipaddress
import random
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from dataplane.bpf import libbpf as lb
from dataplane.bpf.assets import BPF_FILES
from dataplane.bpf.errors import ObjectFileError, ProgramLoadError, TestRunError
from dataplane.bpf.layout import GEN_OBJECT
from dataplane.bpf.testrun import prog_test_run
from dataplane.netns import call_in
from dataplane.parse import ETH_P_8021AD, ETH_P_8021Q, ETH_P_IP, ETH_P_IPV6

__all__ = [
    "MALFORMED_REASONS",
    "AfPacketSender",
    "FrameSpec",
    "GenResult",
    "LiveFrameGenerator",
    "build_frame",
    "malformed_frame",
    "mixed_frames",
]

PROTO = {"icmp": 1, "tcp": 6, "udp": 17, "icmpv6": 58}
SRC_MAC = bytes.fromhex("020000000001")
DST_MAC = bytes.fromhex("020000000002")
MAX_SEND = 10_000_000


@dataclass(slots=True, frozen=True)
class FrameSpec:
    """One frame to build. `proto` is tcp|udp|icmp|icmpv6 or a protocol number."""

    src: str = "10.0.0.1"
    dst: str = "10.0.0.2"
    proto: str | int = "udp"
    sport: int = 12345
    dport: int = 80
    vlans: tuple[int, ...] = ()  # outer first; 2 tags = 802.1ad outer + 802.1Q inner
    tcp_flags: int = 0x02
    payload: int = 18  # payload bytes after the L4 header
    ipv6_ext: tuple[int, ...] = ()  # IPv6 extension headers in order: 0, 43, 44, 51, 60
    frag_offset: int = 0  # fragment offset in 8-byte units (IPv4 field / IPv6 fragment header)
    more_fragments: bool = False
    src_mac: bytes = SRC_MAC
    dst_mac: bytes = DST_MAC


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return int(~total & 0xFFFF)


def _eth(spec: FrameSpec, ethertype: int) -> bytes:
    head = spec.dst_mac + spec.src_mac
    if len(spec.vlans) == 1:
        tpids = [ETH_P_8021Q]
    else:  # QinQ: 802.1ad service tag outside, 802.1Q tags inside
        tpids = [ETH_P_8021AD] + [ETH_P_8021Q] * (len(spec.vlans) - 1)
    for tpid, vid in zip(tpids, spec.vlans, strict=False):
        head += struct.pack("!HH", tpid, vid & 0x0FFF)
    return head + struct.pack("!H", ethertype)


def _l4(proto: int, spec: FrameSpec, pseudo: bytes, v6: bool) -> bytes:
    payload = bytes(spec.payload)
    if proto == 6:
        seg = struct.pack("!HHIIBBHHH", spec.sport, spec.dport, 1, 0, 5 << 4, spec.tcp_flags,
                          65535, 0, 0) + payload
    elif proto == 17:
        seg = struct.pack("!HHHH", spec.sport, spec.dport, 8 + len(payload), 0) + payload
    elif proto in (1, 58):
        seg = struct.pack("!BBHHH", 128 if v6 else 8, 0, 0, 1, 1) + payload
    else:
        return payload
    csum_at = {6: 16, 17: 6, 1: 2, 58: 2}[proto]
    if proto == 1:  # ICMPv4: no pseudo-header
        covered = seg
    elif v6:
        covered = pseudo + struct.pack("!I3xB", len(seg), proto) + seg
    else:
        covered = pseudo + struct.pack("!BBH", 0, proto, len(seg)) + seg
    csum = _checksum(covered) or (0xFFFF if proto == 17 else 0)
    return seg[:csum_at] + struct.pack("!H", csum) + seg[csum_at + 2:]


def _proto(proto: str | int) -> int:
    return int(PROTO[proto]) if isinstance(proto, str) else int(proto)


def _ipv4(spec: FrameSpec, proto: int, body: bytes, *, ihl: int = 5, total: int | None = None,
          frag: int = 0, version: int = 4) -> bytes:
    src = ipaddress.IPv4Address(spec.src).packed
    dst = ipaddress.IPv4Address(spec.dst).packed
    options = bytes(max(ihl - 5, 0) * 4)
    length = 20 + len(options) + len(body) if total is None else total
    head = struct.pack("!BBHHHBBH4s4s", version << 4 | ihl, 0, length, 1, frag, 64, proto, 0,
                       src, dst) + options
    head = head[:10] + struct.pack("!H", _checksum(head)) + head[12:]
    return head + body


def _ipv6(spec: FrameSpec, nexthdr: int, body: bytes, version: int = 6) -> bytes:
    src = ipaddress.IPv6Address(spec.src).packed
    dst = ipaddress.IPv6Address(spec.dst).packed
    return struct.pack("!IHBB16s16s", version << 28, len(body), nexthdr, 64, src, dst) + body


def _ipv6_ext(kind: int, nexthdr: int, spec: FrameSpec) -> bytes:
    """One 8-byte extension header of type `kind` followed by `nexthdr`."""
    if kind == 44:  # fragment: offset (8-byte units) << 3 | M
        return struct.pack("!BBHI", nexthdr, 0, spec.frag_offset << 3 | spec.more_fragments, 7)
    if kind == 51:  # AH: length in 4-byte units minus 2 -> 8 bytes
        return struct.pack("!BBH4s", nexthdr, 0, 0, bytes(4))
    if kind == 43:  # routing, segments left 0
        return struct.pack("!BBBB4s", nexthdr, 0, 0, 0, bytes(4))
    return _ext(nexthdr)  # hop-by-hop / destination options: PadN


def build_frame(spec: FrameSpec) -> bytes:
    """The exact frame for `spec` (IP version from the addresses).

    A non-zero `frag_offset` builds a later fragment: the payload carries no L4 header.
    """
    proto = _proto(spec.proto)
    v6 = ipaddress.ip_address(spec.src).version == 6
    later = spec.frag_offset > 0
    if v6:
        pseudo = ipaddress.IPv6Address(spec.src).packed + ipaddress.IPv6Address(spec.dst).packed
        body = bytes(spec.payload) if later else _l4(proto, spec, pseudo, True)
        chain = list(spec.ipv6_ext)
        if (spec.frag_offset or spec.more_fragments) and 44 not in chain:
            chain.append(44)
        nexthdrs = [*chain[1:], proto] if chain else []
        exts = b"".join(_ipv6_ext(k, n, spec) for k, n in zip(chain, nexthdrs, strict=True))
        first = chain[0] if chain else proto
        return _eth(spec, ETH_P_IPV6) + _ipv6(spec, first, exts + body)
    pseudo = ipaddress.IPv4Address(spec.src).packed + ipaddress.IPv4Address(spec.dst).packed
    body = bytes(spec.payload) if later else _l4(proto, spec, pseudo, False)
    frag = spec.frag_offset | (0x2000 if spec.more_fragments else 0)
    return _eth(spec, ETH_P_IP) + _ipv4(spec, proto, body, frag=frag)


def mixed_frames(flows: int = 48, heavy: int = 3, seed: int = 1) -> list[bytes]:
    """A deterministic traffic mix for demos: TCP/UDP/ICMP over IPv4 and IPv6, a few heavy
    hitters (`heavy` flows carrying ~half the frames), some VLAN-tagged; one pass = one round."""
    rng = random.Random(seed)  # noqa: S311 - not cryptographic
    frames: list[bytes] = []
    for i in range(flows):
        v6 = i % 3 == 2
        host = 10 + i % 40
        src, dst = (f"fd00:f10e::{host:x}", "fd00:f10e::1") if v6 else (f"10.77.0.{host}",
                                                                         "10.77.1.1")
        proto = rng.choice(("tcp", "tcp", "udp", "udp", "icmpv6" if v6 else "icmp"))
        spec = FrameSpec(src=src, dst=dst, proto=proto, sport=rng.randrange(1024, 65535),
                         dport=rng.choice((22, 53, 80, 123, 443, 3306, 5432, 8080)),
                         vlans=(100,) if i % 7 == 0 else (), payload=rng.randrange(18, 1200))
        repeat = 1 + (flows // max(heavy, 1) if i < heavy else 0)
        frames += [build_frame(spec)] * repeat
    rng.shuffle(frames)
    return frames


def _ext(nexthdr: int) -> bytes:
    """An 8-byte IPv6 destination-options header (PadN)."""
    return struct.pack("!BBBB4s", nexthdr, 0, 1, 4, bytes(4))


def _malformed_frames() -> dict[str, bytes]:
    v4 = FrameSpec(src="10.9.0.1", dst="10.9.0.2", proto="tcp", sport=1000, dport=2000)
    v6 = FrameSpec(src="fd00::1", dst="fd00::2", proto="udp", sport=1000, dport=2000)
    tcp = build_frame(v4)[14 + 20:]
    udp6 = build_frame(v6)[14 + 40:]
    chain = _ext(17)
    for _ in range(7):  # 8 destination-options headers: more than FLOE_MAX_EXT_HDRS
        chain = _ext(60) + chain
    bad_doff = bytearray(tcp)
    bad_doff[12] = 4 << 4
    return {
        "vlan_truncated": _eth(v4, ETH_P_8021Q) + b"\x00",
        "vlan_too_deep": _eth(FrameSpec(vlans=(10, 20, 30)), ETH_P_IP) + bytes(40),
        "l3_truncated": _eth(v4, ETH_P_IP) + _ipv4(v4, 6, tcp)[:19],
        "ipv4_bad_version": _eth(v4, ETH_P_IP) + _ipv4(v4, 6, tcp, version=5),
        "ipv4_bad_ihl": _eth(v4, ETH_P_IP) + _ipv4(v4, 6, tcp, ihl=4, total=20 + len(tcp)),
        "ipv4_bad_total_len": _eth(v4, ETH_P_IP) + _ipv4(v4, 6, tcp, total=500),
        "ipv6_bad_version": _eth(v6, ETH_P_IPV6) + _ipv6(v6, 17, udp6, version=4),
        "ipv6_ext_truncated": _eth(v6, ETH_P_IPV6) + _ipv6(v6, 60, _ext(17)[:5]),
        "ipv6_bad_payload_len": _eth(v6, ETH_P_IPV6) + _ipv6(v6, 17, udp6)[:40 + 4],
        "ipv6_too_many_ext": _eth(v6, ETH_P_IPV6) + _ipv6(v6, 60, chain + udp6),
        "l4_truncated": _eth(v4, ETH_P_IP) + _ipv4(v4, 6, tcp[:12]),
        "tcp_bad_doff": _eth(v4, ETH_P_IP) + _ipv4(v4, 6, bytes(bad_doff)),
    }


_MALFORMED = _malformed_frames()
# Reasons that can be put on a wire (l2_truncated cannot: the kernel pads sends to 14 bytes).
MALFORMED_REASONS: tuple[str, ...] = tuple(_MALFORMED)


def malformed_frame(reason: str) -> bytes:
    """A frame the XDP program counts under `mal_<reason>` (see MALFORMED_REASONS)."""
    try:
        return _MALFORMED[reason]
    except KeyError:
        raise ValueError(
            f"unknown malformed reason {reason!r}; one of {MALFORMED_REASONS}") from None


# ---- AF_PACKET sendmmsg --------------------------------------------------------------------

class _IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _MsgHdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32),
                ("iov", ctypes.POINTER(_IoVec)), ("iovlen", ctypes.c_size_t),
                ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]


class _MMsgHdr(ctypes.Structure):
    _fields_ = [("hdr", _MsgHdr), ("len", ctypes.c_uint)]


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.sendmmsg.argtypes = [ctypes.c_int, ctypes.POINTER(_MMsgHdr), ctypes.c_uint, ctypes.c_int]
_libc.sendmmsg.restype = ctypes.c_int


class AfPacketSender:
    """Sends exact frames out of `ifname` (in `namespace`) with sendmmsg, in batches."""

    def __init__(self, ifname: str, namespace: str | None = None, batch: int = 256) -> None:
        self.ifname = ifname
        self.batch = max(1, min(batch, 1024))

        def make() -> socket.socket:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            sock.bind((ifname, 0))
            return sock

        self._sock = call_in(namespace, make)

    def send(self, frames: Sequence[bytes], *, timeout: float = 30.0,
             pps: float | None = None) -> int:
        """Send every frame once, in order; retries when the device queue is full.

        `pps` paces the sending (batches of `batch` frames). Returns how many were sent
        (all of them unless `timeout` expired).
        """
        if len(frames) > MAX_SEND:
            raise ValueError(f"at most {MAX_SEND} frames per call")
        start = time.monotonic()
        deadline = start + timeout
        sent = 0
        while sent < len(frames) and time.monotonic() < deadline:
            if pps:
                ahead = start + sent / pps - time.monotonic()
                if ahead > 0:
                    time.sleep(min(ahead, max(deadline - time.monotonic(), 0)))
            chunk = frames[sent: sent + self.batch]
            bufs = [ctypes.create_string_buffer(f, len(f)) for f in chunk]
            iovs = (_IoVec * len(chunk))(*[_IoVec(ctypes.cast(b, ctypes.c_void_p), len(f))
                                           for b, f in zip(bufs, chunk, strict=True)])
            msgs = (_MMsgHdr * len(chunk))()
            for i in range(len(chunk)):
                msgs[i].hdr.iov = ctypes.pointer(iovs[i])
                msgs[i].hdr.iovlen = 1
            n = _libc.sendmmsg(self._sock.fileno(), msgs, len(chunk), 0)
            if n < 0:
                err = ctypes.get_errno()
                if err in (errno.ENOBUFS, errno.EAGAIN, errno.EINTR):
                    time.sleep(0.001)
                    continue
                raise OSError(err, f"sendmmsg on {self.ifname}: {errno.errorcode.get(err, err)}")
            sent += n
        return sent

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> AfPacketSender:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


# ---- BPF_PROG_RUN live frames --------------------------------------------------------------

@dataclass(slots=True, frozen=True)
class GenResult:
    """Frames pushed through XDP_TX, wall time, and the resulting rate."""

    frames: int
    seconds: float

    @property
    def pps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class LiveFrameGenerator:
    """Loads floe_gen.o and transmits a frame N times out of an interface via XDP_TX.

    The frames leave `ifname` (in `namespace`) and arrive on its veth peer, which must have a
    native XDP program attached (a veth drops XDP_TX frames otherwise).
    """

    def __init__(self, program: str = "floe_gen_tx", object_path: Path = GEN_OBJECT) -> None:
        if not Path(object_path).is_file():
            raise ObjectFileError(BPF_FILES.missing(Path(object_path)))
        with lb.capture_log() as lines:
            obj = lb.lib.bpf_object__open_file(str(object_path).encode(), None)
            lb.check_ptr(obj, ObjectFileError, f"open {object_path}", lines)
        self._obj: int | None = obj
        try:
            with lb.capture_log() as lines:
                lb.check(lb.lib.bpf_object__load(obj), ProgramLoadError,
                         f"load {object_path}", lines)
            prog = lb.lib.bpf_object__find_program_by_name(obj, program.encode())
            lb.check_ptr(prog, ObjectFileError, f"{object_path} has no program {program}")
            self.prog_fd = lb.check(lb.lib.bpf_program__fd(prog), ProgramLoadError, "program fd")
        except BaseException:
            self.close()
            raise

    def send(self, frame: bytes, ifname: str, namespace: str | None = None, *, count: int,
             timeout: float = 10.0, batch_size: int = 64, queue: int = 0) -> GenResult:
        """Transmit `frame` `count` times (bounded by `timeout`) out of `ifname`."""
        if not 0 < count <= 1_000_000_000:
            raise TestRunError("count must be in 1..1e9")

        def run() -> GenResult:
            ifindex = socket.if_nametoindex(ifname)
            start = time.monotonic()
            deadline = start + timeout
            done = 0
            while done < count and time.monotonic() < deadline:
                n = min(count - done, 200_000)  # one BPF_PROG_RUN call
                prog_test_run(self.prog_fd, frame, repeat=n, ingress_ifindex=ifindex,
                              rx_queue=queue, live=True, batch_size=batch_size)
                done += n
            return GenResult(done, time.monotonic() - start)

        return call_in(namespace, run)

    def close(self) -> None:
        if self._obj:
            lb.lib.bpf_object__close(self._obj)
        self._obj = None

    def __enter__(self) -> LiveFrameGenerator:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
