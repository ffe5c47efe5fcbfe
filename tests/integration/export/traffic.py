"""A known traffic set of flow records (uplink `FlowRecord`s), and what a collector must
read back for each: shared by the nfcapd tests and bench/observer/ipfix_bench.py."""

from __future__ import annotations

import asyncio
import ipaddress
import random
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import grpc

from floe.dataplane.v1 import uplink_pb2 as pb
from floe.dataplane.v1 import uplink_pb2_grpc
from tests.integration.export.nfdump import FlowRow

__all__ = ["Uplink", "ended_flows", "expected_row", "live_update", "uplink"]

# uplink EndReason → IPFIX flowEndReason (RFC 7012)
_IPFIX_END = {1: 1, 2: 2, 3: 3, 4: 3, 5: 5, 6: 4}
_BASE_NS = 1_796_000_000_000_000_000  # 2026-12


def _v4(value: int) -> bytes:
    return bytes(10) + b"\xff\xff" + value.to_bytes(4, "big")


def ended_flows(n: int, seed: int = 1, *, start: int = 0) -> list[Any]:
    """`n` distinct ended records: IPv4 and IPv6, TCP/UDP/ICMP, VLANs, interfaces, every end
    reason, counters from 1 packet to billions of bytes (above 2**32: 8-byte counters)."""
    rng = random.Random(seed)
    out = []
    for i in range(start, start + n):
        v6 = i % 3 == 2
        proto = (6, 17, 58 if v6 else 1)[(i // 3) % 3]
        if v6:
            a = bytes.fromhex("20010db8") + rng.getrandbits(96).to_bytes(12, "big")
            b = bytes.fromhex("20010db8") + rng.getrandbits(96).to_bytes(12, "big")
        else:
            a = _v4(0x0A000000 | (i & 0xFFFFFF))
            b = _v4(0xC0A80000 | rng.getrandbits(16))
        icmp = proto in (1, 58)
        packets = rng.randint(1, 5000)
        octets = packets * rng.randint(40, 1500) + (1 << 32 if i % 97 == 0 else 0)
        first = _BASE_NS + i * 1_000_003 + rng.randint(0, 999_999)
        out.append(pb.FlowRecord(
            addr_a=a, addr_b=b,
            port_a=0 if icmp else 1024 + i % 60000, port_b=0 if icmp else rng.randint(1, 65535),
            proto=proto, vlan=i % 4095 if i % 5 == 0 else 0, ifindex=1 + i % 7,
            interface=f"veth{i % 7}",
            packets_ab=packets, bytes_ab=octets,
            packets_ba=rng.randint(0, 4000) if i % 4 else 0,
            bytes_ba=rng.randint(0, 3_000_000) if i % 4 else 0,
            first_seen_unix_ns=first, last_seen_unix_ns=first + rng.randint(0, 300) * 10**9,
            tcp_flags=rng.getrandbits(8) if proto == 6 else 0,
            state=pb.FLOW_STATE_CLOSED, end_reason=1 + i % 6,  # type: ignore[arg-type]
        ))
    return out


def live_update(record: Any, factor: int = 1) -> Any:
    """The same flow while live (no end reason): an UPDATE event, never exported."""
    live = pb.FlowRecord()
    live.CopyFrom(record)
    live.end_reason = pb.END_REASON_NONE
    live.state = pb.FLOW_STATE_ESTABLISHED
    live.packets_ab = max(1, record.packets_ab // (2 * factor))
    live.bytes_ab = max(1, record.bytes_ab // (2 * factor))
    return live


def expected_row(record: Any) -> FlowRow:
    def text(raw: bytes) -> str:
        address = ipaddress.IPv6Address(raw)
        return str(address.ipv4_mapped or address)

    return FlowRow(
        src=text(record.addr_a), dst=text(record.addr_b), sport=record.port_a,
        dport=record.port_b, proto=record.proto, packets=record.packets_ab,
        octets=record.bytes_ab, reply_packets=record.packets_ba, reply_octets=record.bytes_ba,
        first_ms=record.first_seen_unix_ns // 1_000_000,
        last_ms=record.last_seen_unix_ns // 1_000_000, ingress=record.ifindex,
        vlan=record.vlan, tcp_flags=record.tcp_flags, end_reason=_IPFIX_END[record.end_reason],
    )


class Uplink:
    """One dataplane's uplink stream (a node-bound dataplane key), numbering its batches."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.seq = 0

    async def send(self, flows: Sequence[Any], timeout: float = 30.0) -> None:
        """One batch; returns once the control plane acknowledged (applied) it."""
        self.seq += 1
        await self.stream.write(pb.UplinkMessage(batch=pb.Batch(seq=self.seq, flows=flows)))
        await self._next("ack", timeout)

    async def _next(self, kind: str, timeout: float) -> Any:
        while True:
            message = await asyncio.wait_for(self.stream.read(), timeout)
            if message is grpc.aio.EOF:
                raise RuntimeError("the uplink stream ended")
            if message.WhichOneof("body") == kind:
                return message


@asynccontextmanager
async def uplink(grpc_port: int, key: str, node_id: str) -> AsyncIterator[Uplink]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        stream = uplink_pb2_grpc.UplinkStub(channel).Connect(
            metadata=(("authorization", f"Bearer {key}"),))
        await stream.write(pb.UplinkMessage(hello=pb.Hello(node_id=node_id,
                                                           instance_id=uuid.uuid4().hex)))
        link = Uplink(stream)
        await link._next("welcome", 10.0)
        try:
            yield link
        finally:
            stream.cancel()
