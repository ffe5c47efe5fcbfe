"""Fixtures for the XDP integration tests: a namespace + veth, floe_xdp on the host end."""

from __future__ import annotations

from tests.support.topology import make_topology, make_xdp, veth_ns

__all__ = ["make_topology", "make_xdp", "veth_ns"]
