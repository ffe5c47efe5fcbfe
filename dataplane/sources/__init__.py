"""Packet sources feeding the pipeline: AF_XDP (tap), AF_PACKET TPACKET_V3, pcap replay."""

from dataplane.sources.base import Source, SourceError

__all__ = ["Source", "SourceError"]
