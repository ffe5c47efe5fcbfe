"""Pick the source for a `floe dataplane --mode`: one place that maps modes to sources."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from dataplane.sources.afpacket import AfPacketSource
from dataplane.sources.afxdp import AfXdpSource, XskRegistry, ZeroCopy
from dataplane.sources.base import Source, SourceError
from dataplane.sources.pcap import PcapSource
from dataplane.sources.ringbuf import RingProgram, RingSource

__all__ = ["SourceMode", "open_source"]

SourceMode = Literal["tap", "passthrough", "afpacket", "pcap"]


def open_source(
    mode: SourceMode,
    *,
    interface: str | None = None,
    program: XskRegistry | RingProgram | None = None,
    pcap_path: str | Path | None = None,
    speed: float | Literal["max"] = "max",
    ifindex: int = 0,
    zero_copy: ZeroCopy = "off",
) -> Source:
    """tap: AF_XDP on every RX queue of `interface`, registered in `program`'s XSKMAP
    (an attached `XdpProgram` in tap mode; `zero_copy` as AfXdpSource takes it);
    passthrough: the ring buffer of `program` (an `XdpProgram` in pass-through mode);
    afpacket: TPACKET_V3 on `interface`; pcap: replay `pcap_path` at `speed`, frames tagged
    with `ifindex`. Inline mode has no frame source: flows come from
    `XdpProgram.read_flows()` (and its dropped frames from the ring buffer)."""
    if mode == "tap":
        if interface is None or not isinstance(program, XskRegistry):
            raise SourceError("tap mode needs an interface and its XDP program")
        return AfXdpSource(interface, program, zero_copy=zero_copy)
    if mode == "passthrough":
        if not isinstance(program, RingProgram):
            raise SourceError("pass-through mode needs its XDP program")
        return RingSource(program)
    if mode == "afpacket":
        if interface is None:
            raise SourceError("afpacket mode needs an interface")
        return AfPacketSource(interface)
    if mode == "pcap":
        if pcap_path is None:
            raise SourceError("pcap mode needs a capture file (--pcap FILE)")
        return PcapSource(pcap_path, speed=speed, ifindex=ifindex)
    raise SourceError(f"no packet source for mode {mode!r}")
