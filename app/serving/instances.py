"""What a worker of `floe serve --instances N` is told by its supervisor, and its side of
the contract.

The supervisor (`app.serving.supervisor`) starts each worker as `python -m app.cli serve`
with one internal variable, FLOE_WORKER (JSON): its index and N, the inherited fds of the
QUIC steering program, the fd on which it says "started", and the supervisor's pid. A
process without FLOE_WORKER is a plain `floe serve` (N = 1): nothing here applies.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import signal
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from app.serving.steering import MAX_INSTANCES

__all__ = ["WORKER_ENV", "WorkerSpec", "parse_instances"]

WORKER_ENV = "FLOE_WORKER"
_PR_SET_PDEATHSIG = 1


def parse_instances(text: str) -> int:
    """`--instances` value: an integer 1..MAX_INSTANCES (ValueError with the reason)."""
    try:
        count = int(text)
    except ValueError:
        raise ValueError(f"must be a whole number 1..{MAX_INSTANCES}, not {text!r}") from None
    if not 1 <= count <= MAX_INSTANCES:
        raise ValueError(f"must be 1..{MAX_INSTANCES} (one process per instance), not {count}")
    return count


@dataclass(slots=True, frozen=True)
class WorkerSpec:
    """One worker's place among N; fds are -1 when absent."""

    index: int
    count: int
    supervisor_pid: int
    steer_prog_fd: int = -1  # floe_steer program (only with HTTP/3)
    steer_socks_fd: int = -1  # floe_steer_socks socket array
    started_fd: int = -1  # write end of a pipe: one byte once start-up is done

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WorkerSpec | None:
        raw = (os.environ if env is None else env).get(WORKER_ENV)
        if not raw:
            return None
        spec = cls(**json.loads(raw))
        if not 0 <= spec.index < spec.count <= MAX_INSTANCES:
            raise ValueError(f"{WORKER_ENV}: instance {spec.index} of {spec.count}")
        return spec

    @property
    def steered(self) -> bool:
        return self.steer_prog_fd >= 0 and self.steer_socks_fd >= 0

    def die_with_supervisor(self) -> bool:
        """SIGTERM this worker when the supervisor dies (even by SIGKILL): no orphans.

        False when the supervisor is already gone (then the worker should not start)."""
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        return os.getppid() == self.supervisor_pid

    def notify_started(self) -> None:
        """Tell the supervisor start-up is done (it starts the next workers then)."""
        if self.started_fd < 0:
            return
        with contextlib.suppress(OSError):
            os.write(self.started_fd, b"1")
        with contextlib.suppress(OSError):
            os.close(self.started_fd)
