"""Count the frames the host stack receives on an interface: an AF_PACKET socket after XDP.

A packet socket bound to an interface sees every frame the device hands the stack (what XDP
passed), whatever its destination MAC; outgoing frames are left out. Opened in a namespace
through `dataplane.netns.call_in`, the socket stays there and is read from this thread.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from types import TracebackType

from dataplane.netns import call_in

__all__ = ["HostCounter"]

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


class HostCounter:
    """Frames received by `ifname` (in `namespace`) since opening, kept if `keep(frame)`."""

    def __init__(self, ifname: str, namespace: str | None = None,
                 keep: Callable[[bytes], bool] | None = None) -> None:
        def make() -> socket.socket:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 24)
            sock.bind((ifname, ETH_P_ALL))
            sock.setblocking(False)
            return sock

        self._sock = call_in(namespace, make)
        self._keep = keep
        self.count = 0
        self.frames: list[bytes] = []

    def poll(self, keep_frames: bool = False) -> int:
        """Read what arrived; returns the running count."""
        while True:
            try:
                frame, address = self._sock.recvfrom(65535)
            except BlockingIOError:
                return self.count
            if address[2] == PACKET_OUTGOING:
                continue
            if self._keep is None or self._keep(frame):
                self.count += 1
                if keep_frames:
                    self.frames.append(frame)

    def wait_for(self, expected: int, timeout: float = 5.0) -> int:
        """Poll until `expected` frames arrived or `timeout`; then a short settle for extras."""
        deadline = time.monotonic() + timeout
        while self.poll() < expected and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)
        return self.poll()

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> HostCounter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
