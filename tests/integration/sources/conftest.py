"""Root fixtures for the packet-source tests: namespaces + veth, floe_xdp attach."""

from __future__ import annotations

from tests.support.topology import make_topology, make_xdp

__all__ = ["make_topology", "make_xdp"]
