"""One collector: its UDP socket, the IPFIX stream of each observation domain, and what
became of every record sent to it.

The socket is connected and non-blocking: a send never waits. A full send buffer loses the
message (counted, reason `send_buffer`). Refusals come back as ICMP port unreachable, which
the kernel reports on a later send (ECONNREFUSED) or as the socket's pending error; that
says "a recent datagram was refused", not which one. So records are settled once a second
(`settle`): a second in which a refusal was heard counts every record sent in it as lost
(reason `refused`), any other second counts them exported. On loopback the report is
immediate and the count exact; across a network it can shift by the ICMP's round trip, and
routers rate-limit ICMP, so a refusing collector far away can be counted as partly up.
Loss the host never hears of (the network, a collector's full receive buffer) shows at the
collector as a gap in sequence numbers.

Per observation domain (RFC 7011 §3.1, §8.4): the sequence number counts the data records
sent before each message; the templates go in the first message, then again every
`template_seconds` or every `template_messages` messages, and after a refused second (a
collector that restarts has forgotten them).
"""

from __future__ import annotations

import errno
import logging
import socket
from dataclasses import dataclass, field

from app.export.ipfix import (
    TEMPLATES,
    Template,
    data_set,
    message,
    records_per_message,
    template_set,
)

__all__ = ["LOSS_REASONS", "CollectorLink", "DomainStream", "LinkLimits", "NodeCounts"]

log = logging.getLogger(__name__)

LOSS_REASONS = ("queue_full", "refused", "send_buffer", "send_error", "stopped", "error")
_TEMPLATE_SET = template_set(TEMPLATES)
_FULL = frozenset((errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS))
# What ICMP errors become on a connected UDP socket (reported on the next send, or pending).
_REPORTED = frozenset((errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH,
                       errno.EHOSTDOWN))
_SNDBUF = 1 << 20  # asked for; the kernel may give less (net.core.wmem_max)


@dataclass(slots=True, frozen=True)
class LinkLimits:
    mtu: int
    template_seconds: float
    template_messages: int


@dataclass(slots=True)
class DomainStream:
    """RFC 7011 state of one observation domain towards one collector."""

    sequence: int = 0  # data records sent so far (mod 2**32 on the wire)
    templates_at: float | None = None  # when the templates last went out (None: never)
    since_templates: int = 0  # messages since then

    def templates_due(self, now: float, limits: LinkLimits) -> bool:
        return (self.templates_at is None
                or now - self.templates_at >= limits.template_seconds
                or self.since_templates >= limits.template_messages)


@dataclass(slots=True)
class NodeCounts:
    """Records of one node towards one collector."""

    exported: int = 0
    lost: int = 0  # every reason but queue_full (that one is the node's, for every collector)
    pending: int = 0  # sent this second, not settled yet


@dataclass(slots=True)
class CollectorLink:
    label: str  # "host:port" as configured
    sock: socket.socket
    limits: LinkLimits
    streams: dict[int, DomainStream] = field(default_factory=dict)
    nodes: dict[str, NodeCounts] = field(default_factory=dict)
    exported: int = 0
    lost: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LOSS_REASONS, 0))
    messages: int = 0
    template_sets: int = 0
    up: bool = True  # no refusal heard in the last settled second
    _refused: bool = False  # a refusal was heard this second

    @classmethod
    def open(cls, label: str, address: tuple[int, tuple[object, ...]],
             limits: LinkLimits) -> CollectorLink:
        """A connected non-blocking UDP socket towards `address` ((family, sockaddr))."""
        family, sockaddr = address
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SNDBUF)
            sock.connect(sockaddr)
        except OSError:
            sock.close()
            raise
        return cls(label, sock, limits)

    def node(self, node_id: str) -> NodeCounts:
        counts = self.nodes.get(node_id)
        if counts is None:
            counts = self.nodes[node_id] = NodeCounts()
        return counts

    @property
    def pending(self) -> int:
        return sum(c.pending for c in self.nodes.values())

    def send(self, domain: int, node_id: str, template: Template, records: bytes,
             export_time: int, now: float) -> int:
        """`records` (whole records of `template`) in as many messages as the MTU needs;
        returns how many messages were sent."""
        stream = self.streams.get(domain)
        if stream is None:
            stream = self.streams[domain] = DomainStream()
        counts = self.node(node_id)
        size = template.record_size
        total = len(records) // size
        done = sent = 0
        while done < total:
            sets: list[bytes] = []
            extra = 0
            if stream.templates_due(now, self.limits):
                sets.append(_TEMPLATE_SET)
                extra = len(_TEMPLATE_SET)
            count = min(total - done, records_per_message(self.limits.mtu, template, extra))
            sets.append(data_set(template, records[done * size:(done + count) * size]))
            payload = message(domain, stream.sequence, export_time, sets)
            # The sequence counts the records whether or not this send works: a collector
            # then sees our losses as gaps, like the network's.
            stream.sequence += count
            done += count
            reason = self._transmit(payload)
            if reason is None:
                sent += 1
                self.messages += 1
                counts.pending += count
                if extra:
                    stream.templates_at, stream.since_templates = now, 0
                    self.template_sets += 1
                else:
                    stream.since_templates += 1
            else:
                self.lost[reason] += count
                counts.lost += count
        return sent

    def _transmit(self, payload: bytes) -> str | None:
        """None when the kernel took the datagram, else the loss reason."""
        for _attempt in range(2):
            try:
                self.sock.send(payload)
                return None
            except OSError as error:
                if error.errno in _FULL:
                    return "send_buffer"
                if error.errno not in _REPORTED:
                    return "send_error"
                # An ICMP error about an earlier datagram: this one was not sent. Once more.
                self._refused = True
        return "refused"

    def settle(self) -> None:
        """End the current second: its pending records become exported, or lost if a
        refusal was heard (on a send, or as the socket's pending error)."""
        pending_error = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        refused = self._refused or pending_error != 0
        self._refused = False
        settled = 0
        for counts in self.nodes.values():
            if refused:
                counts.lost += counts.pending
            else:
                counts.exported += counts.pending
            settled += counts.pending
            counts.pending = 0
        if refused:
            self.lost["refused"] += settled
            for stream in self.streams.values():
                stream.templates_at = None  # a collector that comes back needs them again
        else:
            self.exported += settled
        if refused and self.up:
            self.up = False
            log.warning("IPFIX collector %s refuses datagrams (%s); its records count as "
                        "lost until it accepts them again", self.label,
                        errno.errorcode.get(pending_error, "ICMP error") if pending_error
                        else "ICMP error")
        elif not refused and settled and not self.up:
            self.up = True
            log.info("IPFIX collector %s accepts datagrams again", self.label)

    def close(self) -> None:
        self.sock.close()
