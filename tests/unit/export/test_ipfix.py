"""The IPFIX encoder against the RFCs' wire formats, written out by hand here (the real
collector's reading is tests/integration/export)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from app.export.ipfix import (
    COUNTER_DTYPE,
    IPV4,
    IPV6,
    build_records,
    data_set,
    message,
    records_per_message,
    template_set,
)
from app.observer.ring import EVENT_DTYPE

# (IANA id, length, enterprise) per RFC 7012 / RFC 5103, in template order.
TAIL = [(7, 2, 0), (11, 2, 0), (4, 1, 0), (1, 8, 0), (2, 8, 0), (1, 8, 29305), (2, 8, 29305),
        (152, 8, 0), (153, 8, 0), (58, 2, 0), (10, 4, 0), (6, 2, 0), (136, 1, 0)]
V4_FIELDS = [(8, 4, 0), (12, 4, 0), *TAIL]
V6_FIELDS = [(27, 16, 0), (28, 16, 0), *TAIL]


def specifiers(fields: list[tuple[int, int, int]]) -> bytes:
    out = b""
    for ie, length, pen in fields:
        out += struct.pack("!HHI", 0x8000 | ie, length, pen) if pen else \
            struct.pack("!HH", ie, length)
    return out


def test_template_set_is_rfc7011_with_rfc5103_reverse_elements() -> None:
    v4 = struct.pack("!HH", 256, 15) + specifiers(V4_FIELDS)
    v6 = struct.pack("!HH", 257, 15) + specifiers(V6_FIELDS)
    assert template_set() == struct.pack("!HH", 2, 4 + len(v4) + len(v6)) + v4 + v6
    assert IPV4.record_size == sum(length for _, length, _ in V4_FIELDS) == 70
    assert IPV6.record_size == sum(length for _, length, _ in V6_FIELDS) == 94


def rows(n: int, v6: bool) -> np.ndarray:
    columns = np.zeros(n, EVENT_DTYPE)
    if v6:
        columns["src_hi"], columns["src_lo"] = 0x20010DB800000000, 1
        columns["dst_hi"], columns["dst_lo"] = 0x20010DB8FFFF0000, 0xABCDEF
    else:
        columns["src_lo"] = 0xFFFF_0A000001
        columns["dst_lo"] = 0xFFFF_C0A80102
    columns["sport"], columns["dport"], columns["proto"] = 40000, 443, 6
    columns["vlan"], columns["ifindex"], columns["flags"] = 42, 7, 0x1B
    columns["end"] = 4  # TCP_RST
    columns["time"] = 1_796_000_002_345_678_901
    return columns


def counters(n: int) -> np.ndarray:
    out = np.zeros(n, COUNTER_DTYPE)
    out["packets"], out["bytes"] = 10, (1 << 32) + 5
    out["reply_packets"], out["reply_bytes"] = 7, 5000
    out["first_ns"] = 1_796_000_001_000_999_999
    return out


def test_an_ipv4_record_in_template_order() -> None:
    record = build_records(IPV4, rows(1, v6=False), counters(1)).tobytes()
    assert record == struct.pack(
        "!IIHHBQQQQQQHIHB", 0x0A000001, 0xC0A80102, 40000, 443, 6, (1 << 32) + 5, 10, 5000,
        7, 1_796_000_001_000, 1_796_000_002_345, 42, 7, 0x1B, 3)


def test_an_ipv6_record_in_template_order() -> None:
    record = build_records(IPV6, rows(1, v6=True), counters(1)).tobytes()
    src = bytes.fromhex("20010db8000000000000000000000001")
    dst = bytes.fromhex("20010db8ffff00000000000000abcdef")
    assert record == src + dst + struct.pack(
        "!HHBQQQQQQHIHB", 40000, 443, 6, (1 << 32) + 5, 10, 5000, 7, 1_796_000_001_000,
        1_796_000_002_345, 42, 7, 0x1B, 3)


@pytest.mark.parametrize(("end", "reason"), [(1, 1), (2, 2), (3, 3), (4, 3), (5, 5), (6, 4)])
def test_end_reasons_map_to_flow_end_reason(end: int, reason: int) -> None:
    columns = rows(1, v6=False)
    columns["end"] = end
    assert build_records(IPV4, columns, counters(1))["flowEndReason"][0] == reason


def test_message_header_and_data_set() -> None:
    body = data_set(IPV4, b"\x01" * 140)
    assert body[:4] == struct.pack("!HH", 256, 144)
    payload = message(0xDEADBEEF, 2**32 + 5, 1_796_000_000, [template_set(), body])
    version, length, export_time, sequence, domain = struct.unpack("!HHIII", payload[:16])
    assert (version, length, export_time, sequence, domain) == (
        10, len(payload), 1_796_000_000, 5, 0xDEADBEEF)
    with pytest.raises(ValueError, match="at most 65535"):
        message(1, 0, 0, [b"\0" * 65535])


def test_records_per_message_keeps_to_the_mtu() -> None:
    with_templates = len(template_set())
    for mtu in (512, 1400, 9000):
        for template in (IPV4, IPV6):
            for extra in (0, with_templates):
                n = records_per_message(mtu, template, extra)
                assert 16 + extra + 4 + n * template.record_size <= mtu
                assert 16 + extra + 4 + (n + 1) * template.record_size > mtu
    assert records_per_message(1400, IPV4) == 19
    assert records_per_message(1400, IPV6, with_templates) == 13
