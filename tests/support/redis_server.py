"""A private `redis-server` per test module: isolated from other suites, and restartable.

Tests that restart or flush Redis must not touch the shared one on 6379 (other suites use
it), so they start their own on a free loopback port, with nothing persisted (a restart
comes back empty, as a Redis without persistence does).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field

from tests.support.ports import free_port
from tests.support.server import tcp_open

__all__ = ["RedisServer", "redis_available"]


def redis_available() -> bool:
    return shutil.which("redis-server") is not None


@dataclass(slots=True)
class RedisServer:
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not tcp_open(self.port):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def restart(self, down_for: float = 0.0) -> None:
        """Kill (SIGKILL: nothing saved) and start again on the same port, empty."""
        self.stop()
        time.sleep(down_for)
        self.start()
