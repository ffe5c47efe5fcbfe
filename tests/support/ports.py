"""Free loopback ports for servers the tests start."""

from __future__ import annotations

import socket

__all__ = ["free_port", "free_port_run", "free_udp_port"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_udp_port() -> int:
    """A port free for both TCP and UDP (HTTPS and HTTP/3 share it)."""
    for _ in range(50):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free TCP+UDP port")


def free_port_run(count: int) -> int:
    """The first of `count` consecutive free TCP ports (`count` 1: any free port)."""
    if count <= 1:
        return free_port()
    for _ in range(100):
        base = free_port()
        if base + count > 65536:
            continue
        probes = []
        try:
            for port in range(base, base + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                probes.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in probes:
                sock.close()
        return base
    raise RuntimeError(f"no run of {count} free ports")
