"""Fixtures for the XDP integration tests: a namespace + veth, floe_xdp on the host end."""

from __future__ import annotations

import subprocess

import pytest

from dataplane.bpf.layout import BPF_DIR, GEN_OBJECT, XDP_OBJECT
from tests.support.topology import make_topology, make_xdp, veth_ns

__all__ = ["bpf_objects", "make_topology", "make_xdp", "veth_ns"]


@pytest.fixture(scope="session", autouse=True)
def bpf_objects() -> None:
    """Build the BPF objects if `make bpf` has not run."""
    if not (XDP_OBJECT.is_file() and GEN_OBJECT.is_file()):
        subprocess.run(["make", "-s", "-C", str(BPF_DIR)], check=True, timeout=120)
