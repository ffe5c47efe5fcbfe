"""Floe dataplane sidecar: XDP loader, packet sources, flow table, gRPC uplink."""

from __future__ import annotations

__all__: list[str] = []
