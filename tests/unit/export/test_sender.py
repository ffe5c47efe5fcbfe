"""One collector link over real loopback sockets: MTU, sequence numbers per observation
domain, template refresh by messages and by seconds, and the fate of every record (sent,
refused by ICMP, or lost to a full send buffer)."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import numpy as np
import pytest

from app.export.ipfix import COUNTER_DTYPE, IPV4, IPV6, build_records
from app.export.sender import CollectorLink, LinkLimits
from app.observer.ring import EVENT_DTYPE
from tests.support.ports import free_udp_port


def records(template: object, n: int) -> bytes:
    columns = np.zeros(n, EVENT_DTYPE)
    columns["sport"] = np.arange(n)
    return build_records(IPV4 if template is IPV4 else IPV6, columns,
                         np.zeros(n, COUNTER_DTYPE)).tobytes()


@pytest.fixture
def receiver() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2.0)
    yield sock
    sock.close()


def link_to(port: int, **limits: float) -> CollectorLink:
    settings = {"mtu": 1400, "template_seconds": 60, "template_messages": 3} | limits
    return CollectorLink.open(f"127.0.0.1:{port}", (socket.AF_INET, ("127.0.0.1", port)),
                              LinkLimits(int(settings["mtu"]), settings["template_seconds"],
                                         int(settings["template_messages"])))


def read_all(sock: socket.socket, count: int) -> list[bytes]:
    return [sock.recv(65535) for _ in range(count)]


def parse(datagram: bytes) -> tuple[int, int, list[int], int]:
    """(sequence, domain, set ids, data records) — the framing only."""
    version, length, _time, sequence, domain = struct.unpack("!HHIII", datagram[:16])
    assert version == 10 and length == len(datagram)
    sets, offset, data = [], 16, 0
    while offset < length:
        set_id, set_length = struct.unpack("!HH", datagram[offset:offset + 4])
        sets.append(set_id)
        if set_id == 256:
            data += (set_length - 4) // IPV4.record_size
        elif set_id == 257:
            data += (set_length - 4) // IPV6.record_size
        offset += set_length
    assert offset == length
    return sequence, domain, sets, data


def test_messages_keep_to_the_mtu_and_sequence_counts_data_records(
    receiver: socket.socket,
) -> None:
    link = link_to(receiver.getsockname()[1], template_messages=3)
    sent = link.send(9, "n1", IPV4, records(IPV4, 200), 1_796_000_000, now=0.0)
    datagrams = read_all(receiver, sent)
    assert max(len(d) for d in datagrams) <= 1400
    messages = [parse(d) for d in datagrams]
    assert sum(m[3] for m in messages) == 200
    sequence = 0
    for i, (seq, domain, sets, data) in enumerate(messages):
        assert (seq, domain) == (sequence, 9)
        # templates in the first message, then after every 3 without them
        assert sets == ([2, 256] if i % 4 == 0 else [256])
        sequence += data
    assert link.node("n1").pending == 200 and link.messages == sent
    assert link.template_sets == len([m for m in messages if 2 in m[2]])


def test_every_datagram_fits_1400_bytes(receiver: socket.socket) -> None:
    link = link_to(receiver.getsockname()[1], template_messages=1)
    count = link.send(1, "n1", IPV6, records(IPV6, 100), 0, now=0.0)
    sizes = [len(d) for d in read_all(receiver, count)]
    assert max(sizes) <= 1400 and min(sizes[:-1]) > 1400 - IPV6.record_size - 148


def test_each_domain_has_its_own_sequence_and_templates(receiver: socket.socket) -> None:
    link = link_to(receiver.getsockname()[1])
    link.send(1, "a", IPV4, records(IPV4, 5), 0, now=0.0)
    link.send(2, "b", IPV6, records(IPV6, 3), 0, now=0.0)
    link.send(1, "a", IPV4, records(IPV4, 4), 0, now=0.0)
    got = [parse(d) for d in read_all(receiver, 3)]
    assert got == [(0, 1, [2, 256], 5), (0, 2, [2, 257], 3), (5, 1, [256], 4)]


def test_templates_are_resent_after_template_seconds(receiver: socket.socket) -> None:
    link = link_to(receiver.getsockname()[1], template_seconds=60, template_messages=1000)
    for now in (0.0, 59.0, 60.0, 61.0):
        link.send(1, "a", IPV4, records(IPV4, 1), 0, now=now)
    assert [parse(d)[2] for d in read_all(receiver, 4)] == [[2, 256], [256], [2, 256], [256]]


def test_a_closed_port_is_counted_as_refused_then_recovers() -> None:
    """Nothing listens: ICMP port unreachable comes back and every record sent in that
    second is lost. Once a collector listens there, the next second is exported, and its
    first message carries the templates again."""
    port = free_udp_port()
    link = link_to(port)
    for _ in range(5):
        link.send(1, "a", IPV4, records(IPV4, 40), 0, now=0.0)
    link.settle()
    assert (link.exported, link.lost["refused"], link.up) == (0, 200, False)
    assert (link.node("a").lost, link.node("a").pending) == (200, 0)

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as collector:
        collector.bind(("127.0.0.1", port))
        collector.settimeout(2.0)
        link.send(1, "a", IPV4, records(IPV4, 10), 0, now=1.0)
        link.settle()
        assert parse(collector.recv(65535)) == (200, 1, [2, 256], 10)
    assert (link.exported, link.lost["refused"], link.up) == (10, 200, True)
    assert (link.node("a").exported, link.node("a").lost) == (10, 200)
    link.close()


def test_a_full_send_buffer_loses_the_message_and_counts_it() -> None:
    """A datagram socket whose peer does not read: once its queue is full the send would
    block; the link drops the message instead and counts its records."""
    ours, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    ours.setblocking(False)
    link = CollectorLink("unix", ours, LinkLimits(1400, 60, 1000))
    total = 0
    for _ in range(2000):
        link.send(1, "a", IPV4, records(IPV4, 19), 0, now=0.0)
        total += 19
        if link.lost["send_buffer"]:
            break
    assert link.lost["send_buffer"] == 19
    assert link.node("a").pending + link.node("a").lost == total
    link.settle()
    assert link.exported + link.lost["send_buffer"] == total
    link.close()
    peer.close()
