"""The one interface every packet source implements, so the pipeline never knows which it reads."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from dataplane.packets import FrameBatch

__all__ = ["Source", "SourceError"]


class SourceError(Exception):
    """A source could not be opened or read (bad file, missing interface, no permission)."""


@runtime_checkable
class Source(Protocol):
    """Pull frames in batches.

    `read_batch` returns up to `max_frames` frames, waiting at most `timeout` seconds for the
    first; `None` once the source is exhausted (pcap end of file) — an empty batch means "no
    traffic yet". `loss()` returns cumulative counters of frames lost before they reached us
    (ring overflow, fill-ring starvation, invalid descriptors, kernel drops), keyed by reason.
    """

    def read_batch(self, max_frames: int, timeout: float) -> FrameBatch | None: ...

    def loss(self) -> dict[str, int]: ...

    def close(self) -> None: ...
