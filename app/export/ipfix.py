"""IPFIX (RFC 7011) encoding of Floe's ended flows as biflow records (RFC 5103).

Pure bytes, no sockets: the two templates (IPv4 and IPv6), template and data sets, message
headers, and the flow records themselves, built for a whole batch at once as one numpy array
in the template's wire layout (so a record costs no Python step of its own).

Each exported record is one record of a dataplane's flow table, sent once, when it ends (an
active timeout ends a record too; the dataplane then starts a new one). Its counters are the
record's totals, so they are *delta* counters in IPFIX terms (octetDeltaCount: "since the
previous report", and there was none): a collector adding records up gets exact totals.
The reverse direction uses the RFC 5103 reverse Information Elements: the forward element's
id with the enterprise bit, enterprise number 29305.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = [
    "COUNTER_DTYPE",
    "END_REASONS",
    "HEADER_SIZE",
    "IPV4",
    "IPV6",
    "REVERSE_PEN",
    "SET_HEADER_SIZE",
    "TEMPLATES",
    "Element",
    "Template",
    "build_records",
    "data_set",
    "message",
    "records_per_message",
    "template_set",
]

VERSION = 10
HEADER = struct.Struct("!HHIII")  # version, length, export time, sequence, observation domain
SET_HEADER = struct.Struct("!HH")  # set id, length
HEADER_SIZE = HEADER.size
SET_HEADER_SIZE = SET_HEADER.size
TEMPLATE_SET_ID = 2
ENTERPRISE_BIT = 0x8000
REVERSE_PEN = 29305  # RFC 5103: reverse Information Elements
MAX_MESSAGE = 65535  # the header's length field


@dataclass(slots=True, frozen=True)
class Element:
    """One Information Element of a template: IANA id and length on the wire, the numpy
    type that lays it out (big-endian), and the enterprise number (0: IANA)."""

    name: str
    id: int
    length: int
    dtype: str | tuple[str, int]
    enterprise: int = 0

    def specifier(self) -> bytes:
        """The field specifier of a template record (RFC 7011 §3.2)."""
        if self.enterprise:
            return struct.pack("!HHI", self.id | ENTERPRISE_BIT, self.length, self.enterprise)
        return struct.pack("!HH", self.id, self.length)


@dataclass(slots=True, frozen=True)
class Template:
    id: int
    elements: tuple[Element, ...]
    dtype: np.dtype[np.void] = field(init=False)

    def __post_init__(self) -> None:
        layout = np.dtype([(e.name, e.dtype) for e in self.elements])
        if layout.itemsize != sum(e.length for e in self.elements):
            raise ValueError(f"template {self.id}: numpy layout differs from the IE lengths")
        object.__setattr__(self, "dtype", layout)

    @property
    def record_size(self) -> int:
        return int(self.dtype.itemsize)

    def record(self) -> bytes:
        """This template as a template record (id, field count, specifiers)."""
        return (struct.pack("!HH", self.id, len(self.elements))
                + b"".join(e.specifier() for e in self.elements))


# Both templates: the addresses, then these.
_SHARED = (
    Element("sourceTransportPort", 7, 2, ">u2"),
    Element("destinationTransportPort", 11, 2, ">u2"),
    Element("protocolIdentifier", 4, 1, "u1"),
    Element("octetDeltaCount", 1, 8, ">u8"),
    Element("packetDeltaCount", 2, 8, ">u8"),
    Element("reverseOctetDeltaCount", 1, 8, ">u8", REVERSE_PEN),
    Element("reversePacketDeltaCount", 2, 8, ">u8", REVERSE_PEN),
    Element("flowStartMilliseconds", 152, 8, ">u8"),
    Element("flowEndMilliseconds", 153, 8, ">u8"),
    Element("vlanId", 58, 2, ">u2"),
    Element("ingressInterface", 10, 4, ">u4"),
    Element("tcpControlBits", 6, 2, ">u2"),
    Element("flowEndReason", 136, 1, "u1"),
)


IPV4 = Template(256, (
    Element("sourceIPv4Address", 8, 4, ">u4"),
    Element("destinationIPv4Address", 12, 4, ">u4"),
    *_SHARED,
))
IPV6 = Template(257, (
    Element("sourceIPv6Address", 27, 16, (">u8", 2)),
    Element("destinationIPv6Address", 28, 16, (">u8", 2)),
    *_SHARED,
))
TEMPLATES = (IPV4, IPV6)

# observer EndReason → IPFIX flowEndReason (RFC 7012 / IANA): 1 idle timeout, 2 active
# timeout, 3 end of flow detected (FIN or RST), 4 forced end (shutdown), 5 lack of resources.
END_REASONS = np.array([0, 1, 2, 3, 3, 5, 4, 0], np.uint8)

_LOW32 = np.uint64(0xFFFFFFFF)


def template_set(templates: Iterable[Template] = TEMPLATES) -> bytes:
    body = b"".join(t.record() for t in templates)
    return SET_HEADER.pack(TEMPLATE_SET_ID, SET_HEADER_SIZE + len(body)) + body


def data_set(template: Template, records: bytes) -> bytes:
    return SET_HEADER.pack(template.id, SET_HEADER_SIZE + len(records)) + records


def message(domain: int, sequence: int, export_time: int, sets: Sequence[bytes]) -> bytes:
    """One IPFIX message: the header, then `sets` as they are. `sequence` is the number of
    data records this domain sent before this message, modulo 2**32 (RFC 7011 §3.1)."""
    length = HEADER_SIZE + sum(len(s) for s in sets)
    if length > MAX_MESSAGE:
        raise ValueError(f"an IPFIX message is at most {MAX_MESSAGE} bytes, not {length}")
    header = HEADER.pack(VERSION, length, export_time & 0xFFFFFFFF, sequence & 0xFFFFFFFF,
                         domain)
    return header + b"".join(sets)


def records_per_message(mtu: int, template: Template, templates_bytes: int = 0) -> int:
    """How many of `template`'s records fit one message of at most `mtu` bytes, beside a
    template set of `templates_bytes` bytes."""
    room = mtu - HEADER_SIZE - templates_bytes - SET_HEADER_SIZE
    return max(0, room // template.record_size)


COUNTER_DTYPE = np.dtype([
    ("packets", np.uint64), ("bytes", np.uint64),
    ("reply_packets", np.uint64), ("reply_bytes", np.uint64),
    ("first_ns", np.uint64),
])


def build_records(template: Template, columns: npt.NDArray[np.void],
                  counters: npt.NDArray[np.void]) -> npt.NDArray[np.void]:
    """`template`'s records for observer event rows (`app.observer.ring.EVENT_DTYPE`) and
    their counters (`COUNTER_DTYPE`: the END event's cumulative values, the record's totals).
    `.tobytes()` of the result is the data set's body."""
    out = np.zeros(len(columns), template.dtype)
    if template is IPV4:
        out["sourceIPv4Address"] = columns["src_lo"] & _LOW32
        out["destinationIPv4Address"] = columns["dst_lo"] & _LOW32
    else:
        out["sourceIPv6Address"][:, 0] = columns["src_hi"]
        out["sourceIPv6Address"][:, 1] = columns["src_lo"]
        out["destinationIPv6Address"][:, 0] = columns["dst_hi"]
        out["destinationIPv6Address"][:, 1] = columns["dst_lo"]
    out["sourceTransportPort"] = columns["sport"]
    out["destinationTransportPort"] = columns["dport"]
    out["protocolIdentifier"] = columns["proto"]
    out["octetDeltaCount"] = counters["bytes"]
    out["packetDeltaCount"] = counters["packets"]
    out["reverseOctetDeltaCount"] = counters["reply_bytes"]
    out["reversePacketDeltaCount"] = counters["reply_packets"]
    out["flowStartMilliseconds"] = counters["first_ns"] // np.uint64(1_000_000)
    out["flowEndMilliseconds"] = columns["time"] // np.uint64(1_000_000)
    out["vlanId"] = columns["vlan"] & np.uint16(0x0FFF)
    out["ingressInterface"] = columns["ifindex"]
    out["tcpControlBits"] = columns["flags"]
    out["flowEndReason"] = END_REASONS[np.minimum(columns["end"], len(END_REASONS) - 1)]
    return out
