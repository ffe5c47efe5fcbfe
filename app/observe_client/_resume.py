"""`--resume-file`: the last cursor printed, kept across runs so the next run goes on after it.

The file holds one decimal cursor and a newline. It is replaced atomically (a temporary file
in the same directory, fsync, rename), so a crash or a full disk leaves the previous cursor,
never half a number. Writes are throttled to one per `interval` (0.5 s) while events flow —
a busy stream costs two small writes a second, not one per event — and the last cursor is
written at exit. A run killed with SIGKILL may therefore print again up to `interval` worth
of events on its next run; it never skips one.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path

from app.observe_client._errors import ObserveError

__all__ = ["WRITE_INTERVAL", "ResumeFile"]

WRITE_INTERVAL = 0.5  # seconds between writes while events flow
_MAX_BYTES = 64  # a cursor is at most 20 digits: anything longer is not ours


class ResumeFile:
    def __init__(self, path: Path, interval: float = WRITE_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.interval = interval
        self.clock = clock
        self.cursor: int | None = None  # the newest cursor given to `update`
        self._written: int | None = None
        self._last_write = -interval
        self.writes = 0

    def load(self) -> int | None:
        """The saved cursor, None when there is no file yet (a first run)."""
        try:
            with self.path.open("rb") as handle:
                raw = handle.read(_MAX_BYTES + 1)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise ObserveError(f"--resume-file {self.path}: {error.strerror}") from error
        text = raw.decode("ascii", "replace").strip()
        if len(raw) > _MAX_BYTES or not text.isdigit() or int(text) >= 2**64:
            raise ObserveError(f"--resume-file {self.path}: not a cursor (one decimal number); "
                               "remove it to start afresh")
        self.cursor = self._written = int(text)
        return self.cursor

    def update(self, cursor: int) -> None:
        """Remember `cursor`; write it when the last write is `interval` old."""
        self.cursor = cursor
        if self.clock() - self._last_write >= self.interval:
            self.flush()

    def flush(self) -> None:
        """Write the newest cursor if it is not on disk yet."""
        if self.cursor is None or self.cursor == self._written:
            return
        self._write(self.cursor)
        self._written = self.cursor
        self._last_write = self.clock()
        self.writes += 1

    def _write(self, cursor: int) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, f"{cursor}\n".encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
        except OSError as error:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise ObserveError(f"--resume-file {self.path}: {error.strerror}") from error
