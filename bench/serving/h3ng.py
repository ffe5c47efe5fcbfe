"""HTTP/3 load from ngtcp2's C example client (`gtlsclient`, Debian package ngtcp2-client).

    python h3ng.py PORT SECONDS [--procs P] [--requests R] [--path /api/v2/ping] [--json]
                   [--metrics URL ...] [--server-pid PID ...]

`h3load.py` is a Python QUIC client: it needs about as much CPU per request as the server, so
on this 2-core machine it cannot load two server instances at once (issue 13). gtlsclient
needs ~20 µs of CPU per request: each run opens one QUIC connection, sends R requests as
concurrent streams (up to the server's stream limit), and exits when all are answered. This
keeps P of them running for SECONDS (a finished one is replaced; then the last ones finish)
and reports requests/s over the whole time, with the client's own CPU. A run that exits
non-zero counts as failed, its requests not as answered; the caller can check the answers
against the server's `floe_http_requests_total`. Every new process is a new connection (a new
source port), so with `floe serve --instances N` the kernel spreads them over the instances.

A connection lives for seconds (R requests sharing the server with the other P - 1), so the
ramp and the tail — the last runs finishing, one instance idle once its own are done — weigh
on the whole-run rate. With `--metrics` (every instance's /metrics) the steady rate is also
taken from the server: 200 answers on PATH counted WARMUP seconds in and at SECONDS, while
all P runs are going. With `--server-pid` (a `floe serve` process; its children count too) the
servers' CPU over that window is reported as well: cores busy, and µs per answer — what shows
whether N instances each work as hard per request as one does.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.serving.procstat import tree_cpu_seconds

CLIENT = "gtlsclient"
RUN_TIMEOUT = 60.0  # one connection's R requests; a stuck run is killed and counted as failed
WARMUP = 2.0  # seconds before the steady window opens


def answered_by_servers(urls: list[str], path: str) -> float:
    """200 answers on `path` so far, summed over the instances' /metrics."""
    total = 0.0
    wanted = f'route="{path}",status="200"}}'
    for url in urls:
        with urllib.request.urlopen(url, timeout=5) as reply:
            for line in reply.read().decode().splitlines():
                if line.startswith("floe_http_requests_total{") and wanted in line:
                    total += float(line.rsplit(" ", 1)[1])
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("port", type=int)
    parser.add_argument("seconds", type=float)
    parser.add_argument("--procs", type=int, default=8, help="client processes at once")
    parser.add_argument("--requests", type=int, default=2000, help="requests per connection")
    parser.add_argument("--path", default="/api/v2/ping")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--metrics", action="append", default=[],
                        help="an instance's /metrics URL (repeat for each instance)")
    parser.add_argument("--server-pid", type=int, action="append", default=[],
                        help="a server process whose CPU (with its children's) is reported "
                             "over the steady window (needs --metrics)")
    opts = parser.parse_args()
    client = shutil.which(CLIENT)
    if client is None:
        sys.exit(f"h3ng: {CLIENT} not found (apt install ngtcp2-client; `make install` does it)")
    url = f"https://127.0.0.1:{opts.port}{opts.path}"
    argv = [client, "-q", "--exit-on-all-streams-close", "-n", str(opts.requests),
            "127.0.0.1", str(opts.port), url]

    def spawn() -> tuple[subprocess.Popen[bytes], float]:
        return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), \
            time.monotonic()

    started = time.monotonic()
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    running = [spawn() for _ in range(opts.procs)]
    answered = failed_runs = 0
    window: list[tuple[float, float, float]] = []  # (time, answers, server CPU s) at its ends
    while running:
        time.sleep(0.005)
        now = time.monotonic()
        due = (WARMUP, opts.seconds)[len(window)] if opts.metrics and len(window) < 2 else None
        if due is not None and now - started >= due:
            window.append((now, answered_by_servers(opts.metrics, opts.path),
                           tree_cpu_seconds(opts.server_pid)))
        still = []
        for proc, began in running:
            code = proc.poll()
            if code is None and now - began > RUN_TIMEOUT:
                proc.kill()
                code = proc.wait()
            if code is None:
                still.append((proc, began))
                continue
            if code == 0:
                answered += opts.requests
            else:
                failed_runs += 1
            if now - started < opts.seconds:
                still.append(spawn())
        running = still
    elapsed = time.monotonic() - started
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    steady = (window[1][1] - window[0][1]) / (window[1][0] - window[0][0]) \
        if len(window) == 2 else None
    server_cpu = window[1][2] - window[0][2] if len(window) == 2 and opts.server_pid else None
    report = {
        "rps": round(answered / elapsed, 1), "answered": answered, "failed_runs": failed_runs,
        "seconds": round(elapsed, 2), "procs": opts.procs, "requests_per_connection": opts.requests,
        "client_cores": round(client_cpu / elapsed, 2),
        "client_us_per_request": round(client_cpu / max(1, answered) * 1e6, 1),
        "steady_rps": round(steady, 1) if steady is not None else None,
        "server_cores": (round(server_cpu / (window[1][0] - window[0][0]), 2)
                         if server_cpu is not None else None),
        "server_us_per_request": (round(server_cpu / max(1.0, window[1][1] - window[0][1]) * 1e6)
                                  if server_cpu is not None else None),
    }
    if opts.json:
        print(json.dumps(report))
    else:
        print(f"{steady if steady is not None else report['rps']:.0f} {failed_runs} "
              f"{report['client_cores']} {report['rps']:.0f} {report['server_cores']} "
              f"{report['server_us_per_request']}")


if __name__ == "__main__":
    main()
