"""Time the namespace + veth set-up that `floe demo` and the root tests do (and its teardown).

Imports `dataplane.netns` from the first entry of sys.path, so `run.sh` runs this one script
against this checkout and against an export of a baseline commit, alternating rounds, and
compares the medians. Every round is bounded (a count, and the netns module's own timeouts).

Scenarios:
- `veth_ns`: a namespace and a quiet veth pair into it — the `veth_ns` test fixture and
  exactly what `floe demo` builds;
- `addressed`: the same plus an IPv4 address on each end (the pass-through tests' hosts);
- `queues4`: a quiet pair with 4 RX/TX queues (the multi-queue AF_XDP tests).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable

from dataplane.netns import Topology, unique_prefix


def _veth_ns(topo: Topology) -> None:
    topo.add_veth(namespace=topo.add_namespace())


def _addressed(topo: Topology) -> None:
    namespace = topo.add_namespace()
    pair = topo.add_veth(namespace=namespace)
    topo.add_address(None, pair.host, "10.251.0.1/24")
    topo.add_address(namespace, pair.peer, "10.251.0.2/24")


def _queues4(topo: Topology) -> None:
    topo.add_veth(namespace=topo.add_namespace(), queues=4)


SCENARIOS: dict[str, Callable[[Topology], None]] = {
    "veth_ns": _veth_ns, "addressed": _addressed, "queues4": _queues4,
}


def _round(build: Callable[[Topology], None]) -> tuple[float, float]:
    topo = Topology(unique_prefix("bn"))
    started = time.perf_counter()
    try:
        build(topo)
        built = time.perf_counter()
    finally:
        closing = time.perf_counter()
        topo.close()
    return (built - started) * 1e3, (time.perf_counter() - closing) * 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--label", default="this")
    args = parser.parse_args()
    rounds = max(1, min(args.rounds, 500))
    for name, build in SCENARIOS.items():
        _round(build)  # warm-up: imports, first netlink socket, /run/netns mount
        setup, teardown = [], []
        for _ in range(rounds):
            up, down = _round(build)
            setup.append(up)
            teardown.append(down)
        print(json.dumps({
            "label": args.label, "scenario": name, "rounds": rounds,
            "setup_ms_median": round(statistics.median(setup), 2),
            "setup_ms_p90": round(sorted(setup)[int(0.9 * (rounds - 1))], 2),
            "teardown_ms_median": round(statistics.median(teardown), 2),
        }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
