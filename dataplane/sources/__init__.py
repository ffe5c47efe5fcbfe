"""Packet sources feeding the pipeline: AF_XDP (tap), the XDP ring buffer (pass-through, dropped
frames), AF_PACKET TPACKET_V3, pcap replay."""

from dataplane.sources.afpacket import AfPacketSource
from dataplane.sources.afxdp import AfXdpSource
from dataplane.sources.base import Source, SourceError
from dataplane.sources.modes import SourceMode, open_source
from dataplane.sources.pcap import PcapSource, PcapWriter, read_pcap
from dataplane.sources.ringbuf import RingSource

__all__ = [
    "AfPacketSource",
    "AfXdpSource",
    "PcapSource",
    "PcapWriter",
    "RingSource",
    "Source",
    "SourceError",
    "SourceMode",
    "open_source",
    "read_pcap",
]
