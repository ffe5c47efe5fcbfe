"""QUIC steering across `floe serve --instances N`: connection IDs that name their instance,
and the SO_REUSEPORT program (`bpf/floe_steer.c`) that reads them.

The kernel spreads datagrams over an SO_REUSEPORT group by a hash of the 4-tuple, which
changes when a client's address does (connection migration, NAT rebinding): the datagram
then reaches a process that does not know the connection. So every server-chosen connection
ID carries the instance index in its first byte, and the program steers on it (layout and
reasoning in `bpf/floe_steer.h` and docs/adr/0009-instances-and-quic-steering.md).

Two sides:

* the supervisor loads the program once (`SteeringProgram.load`) and hands its program and
  socket-array fds to every worker it spawns; it pins nothing, so the program lives as long
  as the supervisor and the workers' sockets;
* each worker puts its UDP socket into slot `index` of the array and attaches the program to
  the group (`join`). A worker's socket leaves the array by itself when the worker exits.

`CidLayout` makes the IDs (used by `app.serving.quic.SteeredQuicConnection`); `steer_index`
is the program's decision in Python, for tests and for reading.
"""

from __future__ import annotations

import ctypes
import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CID_LEN",
    "MAX_INSTANCES",
    "SO_ATTACH_REUSEPORT_EBPF",
    "CidLayout",
    "SteerStat",
    "SteeringError",
    "SteeringProgram",
    "fnv1a",
    "join",
    "steer_index",
]

# Mirrors of bpf/floe_steer.h (tests/unit/serving/test_steering_layout.py compares them).
MAX_INSTANCES = 64
CID_LEN = 8
MAX_CID_LEN = 20
UDP_HLEN = 8
FNV_OFFSET = 2166136261
FNV_PRIME = 16777619


class SteerStat:
    """enum floe_steer_stat: how the program placed a datagram."""

    BY_CID = 0
    BY_HASH = 1
    DEFAULT = 2
    NO_SOCKET = 3
    NSTATS = 4


class SteeringError(OSError):
    """The steering program cannot be loaded or joined; the text says why."""


SO_ATTACH_REUSEPORT_EBPF = 52  # <asm-generic/socket.h>; Python's socket module lacks it
PROGRAM = "floe_steer"


def fnv1a(data: bytes) -> int:
    """32-bit FNV-1a, as the program hashes a long header's DCID."""
    value = FNV_OFFSET
    for byte in data:
        value = ((value ^ byte) * FNV_PRIME) & 0xFFFFFFFF
    return value


@dataclass(slots=True, frozen=True)
class CidLayout:
    """Connection IDs of instance `index` out of `count`: byte 0 the index, 7 random bytes."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not (1 <= self.count <= MAX_INSTANCES and 0 <= self.index < self.count):
            raise ValueError(f"instance {self.index} of {self.count}: out of range")

    def cid(self) -> bytes:
        """A CID for NEW_CONNECTION_ID: short-header packets carrying it reach this instance."""
        return bytes((self.index,)) + os.urandom(CID_LEN - 1)

    def initial_cid(self) -> bytes:
        """The first (sequence 0) CID, which clients also put in long-header packets (their
        later Initials and Handshakes): its FNV-1a must name this instance as well. A random
        draw does so with probability 1/count, so this takes `count` draws on average."""
        while True:
            cid = self.cid()
            if fnv1a(cid) % self.count == self.index:
                return cid


def steer_index(payload: bytes, count: int) -> int | None:
    """The instance the program picks for a UDP payload (None: the kernel's own choice)."""
    if len(payload) < 1 + CID_LEN:
        return None
    if not payload[0] & 0x80:
        return payload[1] if payload[1] < count else None
    if len(payload) < 6 + MAX_CID_LEN:
        return None
    length = payload[5]
    if length > MAX_CID_LEN:
        return None
    return fnv1a(payload[6:6 + length]) % count


def join(sock: socket.socket, index: int, prog_fd: int, socks_fd: int) -> None:
    """Put `sock` (bound, SO_REUSEPORT) into slot `index` and attach the program to its group.

    Every worker attaches the same program: attaching replaces the group's program, so the
    last one wins and they are all the same."""
    from dataplane.bpf.errors import BpfError, MapError
    from dataplane.bpf.libbpf import BPF_ANY, check, lib

    key = ctypes.c_uint32(index)
    value = ctypes.c_uint64(sock.fileno())
    try:
        check(lib.bpf_map_update_elem(socks_fd, ctypes.byref(key), ctypes.byref(value),
                                      BPF_ANY),
              MapError, f"put the HTTP/3 socket of instance {index} into floe_steer_socks")
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, prog_fd)
    except (BpfError, OSError) as error:
        raise SteeringError(f"HTTP/3 steering for instance {index}: {error}") from None


@dataclass(slots=True)
class SteeringProgram:
    """floe_steer loaded (not attached, not pinned): the fds the workers inherit."""

    prog_fd: int
    socks_fd: int
    config_fd: int
    stats_fd: int

    @classmethod
    def load(cls, count: int, object_path: Path | None = None) -> SteeringProgram:
        """Load bpf/build/floe_steer.o and write N into its config (SteeringError)."""
        from dataplane.bpf.errors import BpfError

        try:
            return cls._load(count, object_path)
        except BpfError as error:
            raise SteeringError(f"cannot load the HTTP/3 steering program: {error}") from None

    @classmethod
    def _load(cls, count: int, object_path: Path | None) -> SteeringProgram:
        from dataplane.bpf import libbpf as lb
        from dataplane.bpf.assets import BPF_FILES
        from dataplane.bpf.errors import MapError, ObjectFileError, ProgramLoadError

        path = object_path or BPF_FILES.steer_object
        if not path.is_file():
            raise ObjectFileError(BPF_FILES.missing(path))
        with lb.capture_log() as lines:
            obj = lb.check_ptr(lb.lib.bpf_object__open_file(str(path).encode(), None),
                               ObjectFileError, f"open BPF object {path}", lines)
        fds: dict[str, int] = {}
        try:
            with lb.capture_log() as lines:
                lb.check(lb.lib.bpf_object__load(obj), ProgramLoadError, "load floe_steer", lines)
            prog = lb.check_ptr(lb.lib.bpf_object__find_program_by_name(obj, PROGRAM.encode()),
                                ObjectFileError, f"{path} has no program {PROGRAM}")
            fds["prog"] = os.dup(lb.check(lb.lib.bpf_program__fd(prog), ProgramLoadError,
                                          "program fd"))
            bpf_map = None
            while bpf_map := lb.lib.bpf_object__next_map(obj, bpf_map):
                name = (lb.lib.bpf_map__name(bpf_map) or b"").decode()
                fds[name] = os.dup(lb.check(lb.lib.bpf_map__fd(bpf_map), MapError, name))
            missing = {"floe_steer_socks", "floe_steer_cfg", "floe_steer_stats"} - fds.keys()
            if missing:
                raise ObjectFileError(f"{path} lacks maps {sorted(missing)}")
            program = cls(fds.pop("prog"), fds.pop("floe_steer_socks"),
                          fds.pop("floe_steer_cfg"), fds.pop("floe_steer_stats"))
        except BaseException:
            for fd in fds.values():
                os.close(fd)
            raise
        finally:
            lb.lib.bpf_object__close(obj)  # the dup'd fds keep program and maps alive
        for fd in fds.values():  # maps this release does not use (none today)
            os.close(fd)
        key, value = ctypes.c_uint32(0), ctypes.c_uint32(count)
        try:
            lb.check(lb.lib.bpf_map_update_elem(program.config_fd, ctypes.byref(key),
                                                ctypes.byref(value), lb.BPF_ANY),
                     MapError, "write floe_steer_cfg")
        except BaseException:
            program.close()
            raise
        return program

    @property
    def fds(self) -> tuple[int, int]:
        """(program, socket array): what a worker needs for `join`."""
        return self.prog_fd, self.socks_fd

    def stats(self) -> dict[str, int]:
        """The per-CPU counters summed: by_cid, by_hash, default, no_socket."""
        from dataplane.bpf.maps import BpfMap, possible_cpus

        ncpus = possible_cpus()
        counters = BpfMap("floe_steer_stats", self.stats_fd, 4, 8, percpu=True, ncpus=ncpus,
                          owned=False)
        totals = []
        for stat in range(SteerStat.NSTATS):
            raw = counters.lookup(struct.pack("<I", stat)) or b""
            totals.append(sum(struct.unpack(f"<{len(raw) // 8}Q", raw)))
        return dict(zip(("by_cid", "by_hash", "default", "no_socket"), totals, strict=True))

    def close(self) -> None:
        for fd in (self.prog_fd, self.socks_fd, self.config_fd, self.stats_fd):
            os.close(fd)
