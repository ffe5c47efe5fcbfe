"""Frame builders for the pipeline tests (exact bytes, checksums irrelevant to the parser)."""

from __future__ import annotations

import ipaddress
import struct

__all__ = ["eth", "frame", "icmp", "ipv4", "ipv6", "mapped", "tcp", "udp"]

SRC_MAC = bytes.fromhex("020000000001")
DST_MAC = bytes.fromhex("020000000002")


def mapped(addr: str) -> bytes:
    """16-byte form the parser produces: v4-mapped for IPv4."""
    ip = ipaddress.ip_address(addr)
    if ip.version == 4:
        return b"\x00" * 10 + b"\xff\xff" + ip.packed
    return ip.packed


def eth(payload: bytes, ethertype: int, vlans: tuple[int, ...] = (), qinq: bool = False) -> bytes:
    # tags sit between the MACs and the final EtherType: TPID(n) TCI(n) ... EtherType
    out = DST_MAC + SRC_MAC
    for i, vid in enumerate(vlans):
        tpid = 0x88A8 if (qinq and i == 0) else 0x8100
        out += struct.pack("!H", tpid) + struct.pack("!H", vid)
    return out + struct.pack("!H", ethertype) + payload


def ipv4(
    src: str,
    dst: str,
    proto: int,
    l4: bytes,
    frag: int = 0,
    mf: bool = False,
    ihl: int = 5,
    total: int | None = None,
    version: int = 4,
) -> bytes:
    options = b"\x01" * (max(ihl, 5) * 4 - 20)
    length = 20 + len(options) + len(l4) if total is None else total
    flags = (0x2000 if mf else 0) | frag
    hdr = struct.pack(
        "!BBHHHBBH4s4s",
        (version << 4) | ihl,
        0,
        length,
        1,
        flags,
        64,
        proto,
        0,
        ipaddress.ip_address(src).packed,
        ipaddress.ip_address(dst).packed,
    )
    return hdr + options + l4


def ipv6(
    src: str,
    dst: str,
    proto: int,
    l4: bytes,
    ext: list[tuple[int, bytes]] | None = None,
    payload_len: int | None = None,
) -> bytes:
    """ext: list of (header type, 8-byte-multiple body incl. its first two bytes placeholder)."""
    chain = b""
    ext = ext or []
    types = [t for t, _ in ext] + [proto]
    for i, (t, body) in enumerate(ext):
        nxt = types[i + 1]
        if t == 44:
            chain += struct.pack("!BBH", nxt, 0, (body[0] << 3) if body else 0) + b"\x00" * 4
        else:
            hlen = len(body) // 8 - 1 if len(body) >= 8 else 0
            padded = body if len(body) >= 8 else body + b"\x00" * (8 - len(body))
            chain += struct.pack("!BB", nxt, hlen) + padded[2:]
    first = types[0]
    payload = chain + l4
    plen = len(payload) if payload_len is None else payload_len
    hdr = struct.pack(
        "!IHBB16s16s",
        6 << 28,
        plen,
        first,
        64,
        ipaddress.ip_address(src).packed,
        ipaddress.ip_address(dst).packed,
    )
    return hdr + payload


def ipv6_frag(offset_units: int) -> tuple[int, bytes]:
    return (44, bytes([offset_units]))


def tcp(sport: int, dport: int, flags: int = 0x02, payload: bytes = b"", doff: int = 5) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, doff << 4, flags, 65535, 0, 0) + payload


def udp(sport: int, dport: int, payload: bytes = b"x" * 18) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def icmp(type_: int, code: int, payload: bytes = b"\x00" * 4) -> bytes:
    return struct.pack("!BBH", type_, code, 0) + payload


def frame(
    src: str,
    dst: str,
    l4proto: str = "udp",
    sport: int = 1000,
    dport: int = 53,
    flags: int = 0x02,
    vlans: tuple[int, ...] = (),
    payload: bytes = b"x" * 18,
) -> bytes:
    """A well-formed frame of either IP version."""
    v6 = ":" in src
    if l4proto == "tcp":
        proto, l4 = 6, tcp(sport, dport, flags, payload)
    elif l4proto == "udp":
        proto, l4 = 17, udp(sport, dport, payload)
    else:
        proto, l4 = (58 if v6 else 1), icmp(sport, dport)
    l3 = ipv6(src, dst, proto, l4) if v6 else ipv4(src, dst, proto, l4)
    return eth(l3, 0x86DD if v6 else 0x0800, vlans)
