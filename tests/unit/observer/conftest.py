"""Flow records as the uplink delivers them, for the observer's unit tests."""

from __future__ import annotations

import ipaddress
from typing import Any

from floe.dataplane.v1 import uplink_pb2 as up


def record(src: str = "10.0.0.1", dst: str = "10.0.0.2", sport: int = 40000, dport: int = 80,
           proto: int = 6, *, packets: int = 1, octets: int = 60, reply_packets: int = 0,
           reply_octets: int = 0, interface: str = "veth0", vlan: int = 0, flags: int = 0,
           state: int = up.FLOW_STATE_ESTABLISHED, end: int = up.END_REASON_NONE,
           first_ns: int = 1_000, last_ns: int = 2_000_000_000) -> Any:
    def packed(text: str) -> bytes:
        address = ipaddress.ip_address(text)
        if address.version == 4:
            return ipaddress.IPv6Address(f"::ffff:{text}").packed
        return address.packed

    return up.FlowRecord(
        addr_a=packed(src), addr_b=packed(dst), port_a=sport, port_b=dport, proto=proto,
        vlan=vlan, ifindex=3, interface=interface, packets_ab=packets, bytes_ab=octets,
        packets_ba=reply_packets, bytes_ba=reply_octets, first_seen_unix_ns=first_ns,
        last_seen_unix_ns=last_ns, tcp_flags=flags, state=state, end_reason=end)
