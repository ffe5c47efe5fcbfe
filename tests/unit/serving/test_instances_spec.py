"""The worker contract of `floe serve --instances N`: the flag's bounds, FLOE_WORKER, and
listeners bound for sharing (SO_REUSEPORT, METRICS_PORT + index)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

import pytest

from app.cli import build_parser
from app.config import Settings
from app.serving.instances import WORKER_ENV, WorkerSpec, parse_instances
from app.serving.listeners import ListenerError, bind_listeners
from app.serving.run import build_hypercorn_config
from tests.support.ports import free_port_run, free_udp_port


@pytest.mark.parametrize("text", ["1", "2", "64"])
def test_instances_in_range(text: str) -> None:
    assert parse_instances(text) == int(text)
    assert build_parser().parse_args(["serve", "--instances", text]).instances == int(text)


@pytest.mark.parametrize(("text", "reason"), [
    ("0", "must be 1..64"), ("65", "must be 1..64"), ("-1", "must be 1..64"),
    ("2.5", "whole number"), ("", "whole number"),
])
def test_instances_out_of_range(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_instances(text)


def test_default_is_one_instance() -> None:
    assert build_parser().parse_args(["serve"]).instances == 1


def test_worker_spec_round_trip() -> None:
    spec = WorkerSpec(2, 3, os.getpid(), 7, 8, 9)
    assert WorkerSpec.from_env({WORKER_ENV: spec.to_env()}) == spec
    assert spec.steered
    assert WorkerSpec.from_env({}) is None
    assert not WorkerSpec(0, 2, 1).steered
    with pytest.raises(ValueError, match="instance 3 of 3"):
        WorkerSpec.from_env({WORKER_ENV: WorkerSpec(3, 3, 1).to_env()})


def test_die_with_supervisor_knows_its_parent() -> None:
    assert WorkerSpec(0, 2, os.getppid()).die_with_supervisor()
    assert not WorkerSpec(0, 2, os.getppid() + 1_000_000).die_with_supervisor()
    import ctypes
    import ctypes.util

    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    libc.prctl(1, 0, 0, 0, 0)  # undo PR_SET_PDEATHSIG for the test process


def test_workers_share_ports_and_metrics_are_per_instance(
    make_settings: Callable[..., Settings],
) -> None:
    https = free_udp_port()
    settings = make_settings(
        BIND_HOST="127.0.0.1", HTTP_PORT=str(free_port_run(1)), HTTPS_PORT=str(https),
        METRICS_PORT=str(free_port_run(2)), HTTP3_ENABLED="true", METRICS_ENABLED="true",
    )
    config = build_hypercorn_config(settings)
    first = bind_listeners(settings, config, reuseport=True, index=0)
    try:
        second = bind_listeners(settings, build_hypercorn_config(settings), reuseport=True,
                                index=1)
        try:
            assert len(first.hypercorn.quic_sockets) == 1
            for a, b in zip(first.hypercorn.quic_sockets, second.hypercorn.quic_sockets,
                            strict=True):
                assert a.getsockname() == b.getsockname()
                assert a.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
            assert first.metrics is not None and second.metrics is not None
            assert second.metrics.getsockname()[1] == first.metrics.getsockname()[1] + 1
        finally:
            second.close()
        first.hypercorn.insecure_sockets[0].listen()
        with pytest.raises(ListenerError, match=r"HTTP_PORT=.* is already in use"):
            bind_listeners(settings, config)  # one instance never joins a listening group
    finally:
        first.close()
