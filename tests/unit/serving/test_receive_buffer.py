"""The HTTP/3 socket's receive buffer (QUIC_RECEIVE_BUFFER): asked for, forced past
net.core.rmem_max when the process may, and said plainly when it cannot be had."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from app.config import Settings
from app.serving.listeners import bind_listeners, size_receive_buffer
from app.serving.run import build_hypercorn_config
from tests.support.ports import free_port_run, free_udp_port

RMEM_MAX = int(Path("/proc/sys/net/core/rmem_max").read_text())


def _udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def test_the_https_udp_socket_gets_the_configured_buffer(
        make_settings: Callable[..., Settings]) -> None:
    https = free_udp_port()
    settings = make_settings(BIND_HOST="127.0.0.1", HTTP_PORT=str(free_port_run(1)),
                             HTTPS_PORT=str(https), HTTP3_ENABLED="true",
                             METRICS_ENABLED="false", QUIC_RECEIVE_BUFFER=str(1 << 20))
    bound = bind_listeners(settings, build_hypercorn_config(settings))
    try:
        (quic,) = bound.hypercorn.quic_sockets
        assert quic.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2 >= 1 << 20
    finally:
        bound.close()


def test_zero_keeps_the_kernel_default(make_settings: Callable[..., Settings]) -> None:
    with _udp() as plain:
        default = plain.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    settings = make_settings(BIND_HOST="127.0.0.1", HTTP_PORT=str(free_port_run(1)),
                             HTTPS_PORT=str(free_udp_port()), HTTP3_ENABLED="true",
                             METRICS_ENABLED="false", QUIC_RECEIVE_BUFFER="0")
    bound = bind_listeners(settings, build_hypercorn_config(settings))
    try:
        (quic,) = bound.hypercorn.quic_sockets
        assert quic.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == default
    finally:
        bound.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="SO_RCVBUFFORCE needs CAP_NET_ADMIN")
def test_past_rmem_max_root_forces_it(caplog: pytest.LogCaptureFixture) -> None:
    wanted = RMEM_MAX * 2
    with _udp() as sock, caplog.at_level(logging.WARNING, logger="app.serving.listeners"):
        assert size_receive_buffer(sock, wanted) >= wanted
    assert not caplog.records


def test_a_capped_buffer_is_reported_with_the_sysctl(caplog: pytest.LogCaptureFixture) -> None:
    """Without CAP_NET_ADMIN (or past what even root may force, 2 GiB) the granted size is
    returned and the warning names net.core.rmem_max."""
    with _udp() as sock, caplog.at_level(logging.WARNING, logger="app.serving.listeners"):
        granted = size_receive_buffer(sock, (1 << 31) - 1)
    assert granted < (1 << 31) - 1
    assert "net.core.rmem_max" in caplog.text
