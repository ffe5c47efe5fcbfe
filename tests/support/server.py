"""Start a real `floe serve` subprocess on free ports and wait until it is ready.

Reusable by every area's integration tests:

    with FloeServer.start(env={"GRPC_ENABLED": "true"}) as server:
        httpx.get(server.url("/healthz"))

Every port is chosen free on 127.0.0.1 (HTTPS shares its number with the HTTP/3 UDP
port); FLOE_DATA_DIR is a fresh temporary directory unless given. The caller's FLOE_*,
DB_*, HTTP*, GRPC* variables are not inherited (pass them in `env`), so a developer's
shell cannot change what a test sees; the default database is SQLite in the data dir.
`stop()` sends SIGTERM and returns the exit code; the output (JSON log lines) is kept in
`server.output()` for assertions. Extra CLI flags go in `args` (e.g. `("-vvv",)`), flags of
`serve` in `serve_args`: with `("--instances", "N")` the metrics ports are N consecutive free
ports and readiness waits for every instance's.
"""

from __future__ import annotations

import os
import signal as _signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from tests.support.ports import free_port, free_port_run, free_udp_port

__all__ = ["REPO_ROOT", "FloeServer", "tcp_open"]

REPO_ROOT = Path(__file__).resolve().parents[2]
PYTHON = REPO_ROOT / ".venv" / "bin" / "python"


def tcp_open(port: int) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:`port`."""
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass(slots=True)
class FloeServer:
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    http_port: int
    https_port: int
    grpc_port: int
    metrics_port: int
    data_dir: Path
    log_path: Path
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)
    instances: int = 1

    @classmethod
    def start(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        wait: bool = True,
        timeout: float = 20.0,
        args: tuple[str, ...] = (),
        serve_args: tuple[str, ...] = (),
    ) -> FloeServer:
        """Spawn `python -m app.cli serve` with env overrides (defaults: everything on)."""
        instances = 1
        if "--instances" in serve_args:
            instances = int(serve_args[serve_args.index("--instances") + 1])
        tmp = tempfile.TemporaryDirectory(prefix="floe-test-")
        data_dir = Path(tmp.name) / "data"
        full = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("FLOE_", "DB_", "HTTP", "GRPC", "TLS_"))
        }
        full.update(
            {
                "FLOE_DATA_DIR": str(data_dir),
                "BIND_HOST": "127.0.0.1",
                "HTTP_PORT": str(free_port()),
                "HTTPS_PORT": str(free_udp_port()),
                "GRPC_PORT": str(free_port()),
                "METRICS_PORT": str(free_port_run(instances)),
                "SECRET_KEY": "test-secret-key-not-for-production-0123456789",
                "LOG_JSON": "true",
                "FLOE_ENV": "development",
                "PYTHONPATH": str(REPO_ROOT),
            }
        )
        full.update(env or {})
        log_path = Path(tmp.name) / "server.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [str(PYTHON), "-m", "app.cli", *args, "serve", *serve_args],
                cwd=tmp.name,
                env=full,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = cls(
            process,
            full,
            int(full["HTTP_PORT"]),
            int(full["HTTPS_PORT"]),
            int(full["GRPC_PORT"]),
            int(full["METRICS_PORT"]),
            data_dir,
            log_path,
            tmp,
            instances,
        )
        if wait:
            try:
                server.wait_ready(timeout)
            except BaseException:
                server.stop()
                server.cleanup()
                raise
        return server

    def _enabled(self, name: str) -> bool:
        return self.env.get(name, "true").lower() in ("1", "true", "yes", "on")

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Wait until every enabled TCP listener accepts connections."""
        ports = []
        if self._enabled("HTTP1_ENABLED") or self._enabled("HTTP2_ENABLED"):
            ports += [self.http_port, self.https_port]
        if self._enabled("GRPC_ENABLED"):
            ports.append(self.grpc_port)
        if self._enabled("METRICS_ENABLED"):  # one per instance: all of them are serving
            ports += [self.metrics_port + index for index in range(self.instances)]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"floe serve exited with {self.process.returncode}:\n{self.output()}"
                )
            if all(tcp_open(port) for port in ports) and (
                self.instances == 1 or f"{self.instances} instances started" in self.output()
            ):
                return
            time.sleep(0.05)
        raise TimeoutError(f"floe serve not ready after {timeout}s:\n{self.output()}")

    def url(self, path: str = "/", *, tls: bool = False) -> str:
        if tls:
            return f"https://127.0.0.1:{self.https_port}{path}"
        return f"http://127.0.0.1:{self.http_port}{path}"

    @property
    def cert_file(self) -> Path:
        return Path(self.env.get("TLS_CERT_FILE") or self.data_dir / "tls" / "dev-cert.pem")

    def ssl_context(self) -> ssl.SSLContext:
        """A client context trusting this server's certificate (for httpx `verify=`)."""
        return ssl.create_default_context(cafile=str(self.cert_file))

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, sig: int = _signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)

    def stop(self, timeout: float = 10.0, sig: int = _signal.SIGTERM) -> int:
        """SIGTERM, wait (SIGKILL after `timeout`); returns the exit code (`cleanup()` after)."""
        self.signal(sig)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        return code

    def cleanup(self) -> None:
        """Remove the server's directory (FLOE_TEST_KEEP=DIR copies server.log there first)."""
        keep = os.environ.get("FLOE_TEST_KEEP")
        if keep and self.log_path.exists():
            Path(keep).mkdir(parents=True, exist_ok=True)
            kept = Path(keep) / f"{self.log_path.parent.name}.log"
            kept.write_bytes(self.log_path.read_bytes())
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> FloeServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        self.cleanup()


if __name__ == "__main__":  # manual smoke run: python -m tests.support.server
    with FloeServer.start() as srv:
        print(srv, file=sys.stderr)
        time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0)
