"""wrk / h2load output → one JSON object with a `human` line (for concurrency.sh).

    python tcpload_parse.py wrk|h2load OUTPUT H2LOAD_LOG SERVER_CORES OVERFLOWS DROPS CONNS

Both tools print their failures in their own words; this keeps every kind apart
(wrk: connect/read/write/timeout socket errors and non-2xx; h2load: failed/errored/timeout
requests and status classes) so a 503 from admission control is not mistaken for a drop.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path
from typing import Any


def ms(text: str) -> float:
    """wrk/h2load durations ('812.34us', '1.20ms', '2.01s') in milliseconds."""
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(out: str) -> dict[str, Any]:
    r: dict[str, Any] = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])}  # type: ignore[index]
    for pct in ("50", "99"):
        if m := re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M):
            r[f"p{pct}_ms"] = round(ms(m[1]), 1)
    r["ok_or_any"] = int(re.search(r"(\d+) requests in", out)[1])  # type: ignore[index]
    errors: dict[str, int] = {}
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors = {k: int(v) for k, v in zip(("connect", "read", "write", "timeout"), m.groups(),
                                            strict=True) if int(v)}
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors["non_2xx"] = int(m[1])
    r["error_kinds"] = errors
    seconds = float(re.search(r"requests in ([\d.]+)s", out)[1])  # type: ignore[index]
    r["ok_rps"] = round((r["ok_or_any"] - errors.get("non_2xx", 0)) / seconds, 1)  # 2xx only
    return r


def h2load(out: str, log: Path) -> dict[str, Any]:
    r: dict[str, Any] = {"rps": float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)[1])}  # type: ignore[index]
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", out)
    errors: dict[str, int] = {}
    if m:
        r["ok_or_any"] = int(m[4])
        seconds = ms(re.search(r"finished in ([\d.]+\w+),", out)[1]) / 1000  # type: ignore[index]
        r["ok_rps"] = round(int(m[4]) / seconds, 1)  # h2load's "succeeded": 2xx/3xx
        errors = {k: int(v) for k, v in zip(("failed", "errored", "timeout"), m.groups()[4:],
                                            strict=True) if int(v)}
    if m := re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out):
        errors |= {k: int(v) for k, v in zip(("3xx", "4xx", "5xx"), m.groups()[1:],
                                             strict=True) if int(v)}
    r["error_kinds"] = errors
    if m := re.search(r"time for connect:\s+(\S+)\s+(\S+)\s+(\S+)", out):
        r["connect_max_ms"], r["connect_mean_ms"] = round(ms(m[2]), 1), round(ms(m[3]), 1)
    if log.exists():
        lat = sorted(int(line.split()[2]) / 1000 for line in log.read_text().splitlines()
                     if line.strip())
        for name, q in (("p50_ms", 0.5), ("p99_ms", 0.99), ("p999_ms", 0.999)):
            if lat:
                r[name] = round(lat[min(len(lat) - 1, math.ceil(q * len(lat)) - 1)], 1)
    return r


def main() -> None:
    tool, out_path, log_path, cores, overflows, drops, conns = sys.argv[1:8]
    out = Path(out_path).read_text()
    try:
        r = wrk(out) if tool == "wrk" else h2load(out, Path(log_path))
    except (TypeError, AttributeError):  # the tool failed before printing its summary
        r = {"rps": 0.0, "error_kinds": {"no_summary": 1}, "raw": out[-400:]}
    r |= {"server_cores": round(float(cores), 2), "listen_overflows": int(overflows),
          "listen_drops": int(drops)}
    label = "HTTP/1.1 wrk" if tool == "wrk" else "TLS h2 h2load"
    connect = f", connect max {r['connect_max_ms']} ms" if "connect_max_ms" in r else ""
    r["human"] = (f"{label} c={conns}: {r['rps']:.0f} req/s ({r.get('ok_rps', 0):.0f} 2xx/s), "
                  f"p50/p99/p99.9 {r.get('p50_ms')}/{r.get('p99_ms')}/{r.get('p999_ms', '-')} ms, "
                  f"failed {r['error_kinds'] or 0}{connect}, "
                  f"listen overflows {overflows}, server {r['server_cores']} cores")
    print(json.dumps(r))


if __name__ == "__main__":
    main()
