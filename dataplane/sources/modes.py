"""Pick the source for a `floe dataplane --mode`: one place that maps modes to sources."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from dataplane.sources.afpacket import AfPacketSource
from dataplane.sources.afxdp import AfXdpSource, XskRegistry
from dataplane.sources.base import Source, SourceError
from dataplane.sources.pcap import PcapSource

__all__ = ["SourceMode", "open_source"]

SourceMode = Literal["tap", "afpacket", "pcap"]


def open_source(
    mode: SourceMode,
    *,
    interface: str | None = None,
    program: XskRegistry | None = None,
    pcap_path: str | Path | None = None,
    speed: float | Literal["max"] = "max",
    ifindex: int = 0,
) -> Source:
    """tap: AF_XDP on every RX queue of `interface`, registered in `program`'s XSKMAP
    (an attached `XdpProgram` in tap mode); afpacket: TPACKET_V3 on `interface`;
    pcap: replay `pcap_path` at `speed`, frames tagged with `ifindex`.
    Inline mode has no frame source: flows come from `XdpProgram.read_flows()`."""
    if mode == "tap":
        if interface is None or program is None:
            raise SourceError("tap mode needs an interface and its XDP program")
        return AfXdpSource(interface, program)
    if mode == "afpacket":
        if interface is None:
            raise SourceError("afpacket mode needs an interface")
        return AfPacketSource(interface)
    if mode == "pcap":
        if pcap_path is None:
            raise SourceError("pcap mode needs a capture file (--pcap FILE)")
        return PcapSource(pcap_path, speed=speed, ifindex=ifindex)
    raise SourceError(f"no packet source for mode {mode!r}")
