"""QUIC steering for `floe serve --instances N`: the CID layout, its mirror of
bpf/floe_steer.h, aioquic's CIDs through `SteeredQuicConnection`, and the BPF program itself
on a real SO_REUSEPORT group of UDP sockets on 127.0.0.1.

The kernel offers no BPF_PROG_TEST_RUN for BPF_PROG_TYPE_SK_REUSEPORT (its prog_ops have no
test_run: -ENOTSUPP, checked below), so the program is tested the only way it runs: datagrams
sent to a group with the program attached, and which socket received each.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import selectors
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

from app.serving import steering
from app.serving.quic import SteeredQuicConnection
from app.serving.steering import CidLayout, SteeringProgram, SteerStat, fnv1a, steer_index
from app.serving.tls import ensure_dev_certificate

HEADER = Path(__file__).resolve().parents[3] / "bpf" / "floe_steer.h"
ENOTSUPP = 524  # kernel-internal errno: "operation not supported" for this program type


def _defines() -> dict[str, int]:
    text = HEADER.read_text()
    return {k: int(v.rstrip("u"), 0) for k, v in re.findall(r"#define (FLOE_\w+)\s+(\d+u?)", text)}


def test_python_mirrors_the_header() -> None:
    defines = _defines()
    assert defines["FLOE_STEER_MAX_INSTANCES"] == steering.MAX_INSTANCES
    assert defines["FLOE_QUIC_CID_LEN"] == steering.CID_LEN
    assert defines["FLOE_QUIC_MAX_CID_LEN"] == steering.MAX_CID_LEN
    assert defines["FLOE_UDP_HLEN"] == steering.UDP_HLEN
    assert defines["FLOE_FNV_OFFSET"] == steering.FNV_OFFSET
    assert defines["FLOE_FNV_PRIME"] == steering.FNV_PRIME
    body = re.search(r"enum floe_steer_stat \{(.*?)\};", HEADER.read_text(), re.S)
    assert body is not None
    enum = {k: int(v) for k, v in re.findall(r"FLOE_STEER_(\w+)\s*=\s*(\d+)", body.group(1))}
    assert enum == {name: getattr(SteerStat, name) for name in
                    ("BY_CID", "BY_HASH", "DEFAULT", "NO_SOCKET", "NSTATS")}


def test_fnv1a_known_values() -> None:
    assert fnv1a(b"") == 0x811C9DC5
    assert fnv1a(b"a") == 0xE40C292C
    assert fnv1a(b"foobar") == 0xBF9CF968


@pytest.mark.parametrize("count", [1, 2, 3, 7, 64])
def test_cids_name_their_instance(count: int) -> None:
    for index in range(count):
        layout = CidLayout(index, count)
        for _ in range(20):
            cid = layout.cid()
            assert len(cid) == steering.CID_LEN and cid[0] == index
            first = layout.initial_cid()
            assert first[0] == index and fnv1a(first) % count == index
    assert len({CidLayout(0, 2).cid() for _ in range(100)}) == 100  # 7 random bytes


@pytest.mark.parametrize(("index", "count"), [(0, 0), (1, 1), (-1, 2), (64, 65), (2, 2)])
def test_layout_bounds(index: int, count: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        CidLayout(index, count)


def _server_connection(tmp_path: Path) -> QuicConnection:
    cert, key = ensure_dev_certificate(tmp_path)
    config = QuicConfiguration(is_client=False)
    config.load_cert_chain(str(cert), str(key))
    return SteeredQuicConnection(configuration=config,
                                 original_destination_connection_id=os.urandom(8))


def test_aioquic_connection_ids_carry_the_instance(tmp_path: Path) -> None:
    """The first CID (in the server's Initial) and those sent in NEW_CONNECTION_ID."""
    SteeredQuicConnection.layout = CidLayout(2, 3)
    try:
        conn = _server_connection(tmp_path)
        assert conn.host_cid[0] == 2 and fnv1a(conn.host_cid) % 3 == 2
        assert conn._local_initial_source_connection_id == conn.host_cid
        conn._remote_active_connection_id_limit = 8
        conn._replenish_connection_ids()
        cids = [c.cid for c in conn._host_cids]
        assert len(cids) == 8 and len(set(cids)) == 8
        assert all(cid[0] == 2 and len(cid) == 8 for cid in cids)
        assert [c.sequence_number for c in conn._host_cids] == list(range(8))
    finally:
        SteeredQuicConnection.layout = CidLayout(0, 1)


# --- the program, on real sockets -------------------------------------------------------


def _short(cid: bytes) -> bytes:
    return bytes((0x40,)) + cid + os.urandom(40)


def _long(dcid: bytes) -> bytes:
    return (bytes((0xC0,)) + b"\x00\x00\x00\x01" + bytes((len(dcid),)) + dcid + b"\x08"
            + os.urandom(8) + os.urandom(1200))


class Group:
    """N UDP sockets sharing a port with floe_steer attached, and a client socket."""

    def __init__(self, count: int) -> None:
        self.program = SteeringProgram.load(count)
        self.sockets: list[socket.socket] = []
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(("127.0.0.1", self.sockets[0].getsockname()[1] if self.sockets else 0))
            self.sockets.append(sock)
        for index, sock in enumerate(self.sockets):
            steering.join(sock, index, *self.program.fds)
        self.port = self.sockets[0].getsockname()[1]
        self.client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.client.bind(("127.0.0.1", 0))

    def receiver(self, payload: bytes, client: socket.socket | None = None) -> int:
        """Index of the socket that received `payload` (sent from `client`)."""
        (client or self.client).sendto(payload, ("127.0.0.1", self.port))
        with selectors.DefaultSelector() as selector:  # poll/epoll: no FD_SETSIZE limit
            for sock in self.sockets:
                if sock.fileno() >= 0:
                    selector.register(sock, selectors.EVENT_READ)
            ready = [key.fileobj for key, _ in selector.select(2.0)]
        assert len(ready) == 1, "the datagram reached no socket, or more than one"
        sock = ready[0]
        assert isinstance(sock, socket.socket)
        sock.recv(4096)
        return self.sockets.index(sock)

    def close(self) -> None:
        for sock in [*self.sockets, self.client]:
            sock.close()
        self.program.close()


@pytest.fixture
def group3() -> Iterator[Group]:
    try:
        group = Group(3)
    except steering.SteeringError as error:
        pytest.skip(f"needs BPF (root): {error}")
    yield group
    group.close()


def test_short_headers_reach_the_instance_in_byte_0(group3: Group) -> None:
    for index in range(3):
        layout = CidLayout(index, 3)
        assert {group3.receiver(_short(layout.cid())) for _ in range(10)} == {index}
    assert group3.program.stats()["by_cid"] == 30


def test_short_headers_follow_the_cid_from_any_client_address(group3: Group) -> None:
    """Connection migration: a new source port changes the kernel's hash, not the choice."""
    cid = CidLayout(1, 3).cid()
    for _ in range(12):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as moved:
            moved.bind(("127.0.0.1", 0))
            assert group3.receiver(_short(cid), moved) == 1


def test_long_headers_by_hash_of_the_dcid(group3: Group) -> None:
    seen = set()
    for _ in range(60):
        dcid = os.urandom(8 + os.urandom(1)[0] % 13)  # clients choose 8..20 bytes
        packet = _long(dcid)
        got = group3.receiver(packet)
        assert got == steer_index(packet, 3) == fnv1a(dcid) % 3
        seen.add(got)
    assert seen == {0, 1, 2}  # one client address, spread by DCID alone
    for index in range(3):  # the server's first CID in a client's later Initial/Handshake
        assert group3.receiver(_long(CidLayout(index, 3).initial_cid())) == index
    assert group3.program.stats()["by_hash"] == 63


def test_what_it_cannot_place_goes_to_the_kernel(group3: Group) -> None:
    before = group3.program.stats()
    group3.receiver(b"\x40\x07" + os.urandom(30))  # byte 0 = 7: no such instance
    group3.receiver(b"\x40\x01")  # shorter than a CID
    group3.receiver(bytes((0xC0,)) + b"\x00\x00\x00\x01" + bytes((21,)) + os.urandom(40))
    after = group3.program.stats()
    assert after["default"] - before["default"] == 3


def test_a_closed_socket_leaves_the_array(group3: Group) -> None:
    """A worker that exits takes its socket out: its datagrams fall back to the kernel."""
    group3.sockets[2].close()
    cid = CidLayout(2, 3).cid()
    assert group3.receiver(_short(cid)) in (0, 1)
    assert group3.program.stats()["no_socket"] == 1


def test_prog_test_run_is_not_offered_for_sk_reuseport(group3: Group) -> None:
    """Why these tests use sockets. If a kernel adds it, BPF_PROG_TEST_RUN tests could too."""
    from dataplane.bpf import libbpf as lb

    data = ctypes.create_string_buffer(64)
    opts = lb.TestRunOpts(sz=ctypes.sizeof(lb.TestRunOpts))
    opts.data_in = ctypes.cast(data, ctypes.c_void_p)
    opts.data_size_in = 64
    ret = lb.lib.bpf_prog_test_run_opts(group3.program.prog_fd, ctypes.byref(opts))
    assert ret in (-ENOTSUPP, -errno.EOPNOTSUPP, -errno.EINVAL)
