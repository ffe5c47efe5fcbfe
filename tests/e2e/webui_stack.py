"""The real product for the Playwright suite: `floe serve` on fixed ports with the built
dashboard, plus (as root) `floe demo`'s namespace, veth, tap-mode dataplane and generated
traffic. A small control endpoint lets a test kill and restart the control plane.

    python -m tests.e2e.webui_stack            # ports from FLOE_E2E_BASE_PORT (default 21000)

Ports: base = HTTP, +1 HTTPS (and HTTP/3), +2 gRPC, +3 metrics, +4 the control endpoint
(127.0.0.1 only): `GET /state` → {"traffic", "http_port", ...}; `POST /restart?down=2` →
SIGKILL the control plane, wait `down` seconds (at most 30), start it again on the same
ports and data, answer when it is ready. SIGTERM/SIGINT stop everything (the demo removes
its namespace). Playwright's `webServer` runs this and waits for /healthz.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from tests.support.server import PYTHON, REPO_ROOT, FloeServer

__all__ = ["Stack", "main"]

MAX_DOWN_SECONDS = 30.0


class Stack:
    def __init__(self, base_port: int, data_dir: Path, traffic: bool) -> None:
        self.env = {
            "FLOE_ENV": "development",
            "FLOE_DATA_DIR": str(data_dir),
            "HTTP_PORT": str(base_port),
            "HTTPS_PORT": str(base_port + 1),
            "GRPC_PORT": str(base_port + 2),
            "METRICS_PORT": str(base_port + 3),
            "FLOE_ARGON2_PROFILE": "fast",
        }
        self.control_port = base_port + 4
        self.traffic = traffic
        self.server: FloeServer | None = None
        self.demo: subprocess.Popen[bytes] | None = None
        self.lock = threading.Lock()
        self.restarts = 0

    def start_server(self) -> None:
        self.server = FloeServer.start(env=self.env, timeout=60.0)

    def start_demo(self) -> None:
        assert self.server is not None
        env = dict(self.server.env)  # the same ports, data directory (dataplane key) and secret
        log = open(Path(self.env["FLOE_DATA_DIR"]).parent / "demo.log", "wb")
        self.demo = subprocess.Popen([str(PYTHON), "-m", "app.cli", "demo", "--pps", "400"],
                                     cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

    def restart(self, down: float) -> None:
        with self.lock:
            assert self.server is not None
            self.server.process.kill()  # abrupt, as a crash would be
            self.server.process.wait(10)
            time.sleep(max(0.0, min(down, MAX_DOWN_SECONDS)))
            self.start_server()
            self.restarts += 1

    def state(self) -> dict[str, object]:
        return {"traffic": self.traffic, "restarts": self.restarts,
                "http_port": int(self.env["HTTP_PORT"]), "https_port": int(self.env["HTTPS_PORT"])}

    def stop(self) -> None:
        if self.demo is not None and self.demo.poll() is None:
            self.demo.send_signal(signal.SIGTERM)
            try:
                self.demo.wait(20)
            except subprocess.TimeoutExpired:
                self.demo.kill()
        if self.server is not None:
            self.server.stop()
            self.server.cleanup()


def _handler(stack: Stack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._answer(200, stack.state())

        def do_POST(self) -> None:
            url = urlparse(self.path)
            if url.path != "/restart":
                self._answer(404, {"error": "unknown"})
                return
            down = float(parse_qs(url.query).get("down", ["2"])[0])
            stack.restart(down)
            self._answer(200, stack.state())

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


def main() -> int:
    base = int(os.environ.get("FLOE_E2E_BASE_PORT", "21000"))
    traffic = os.geteuid() == 0 and os.environ.get("FLOE_E2E_TRAFFIC", "1") != "0"
    with tempfile.TemporaryDirectory(prefix="floe-e2e-") as tmp:
        stack = Stack(base, Path(tmp) / "data", traffic)
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        control = ThreadingHTTPServer(("127.0.0.1", stack.control_port), _handler(stack))
        try:
            stack.start_server()
            if traffic:
                stack.start_demo()
            threading.Thread(target=control.serve_forever, daemon=True).start()
            print(f"webui e2e stack: http://127.0.0.1:{base} (traffic: {traffic}), "
                  f"control on {stack.control_port}", file=sys.stderr, flush=True)
            stop.wait()
        finally:
            control.shutdown()
            stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
