"""AF_XDP tap path: Python pipeline (parse + flow table + aggregates) vs C libxdp rx-drop.

Same veth, same floe_xdp (tap mode, native), same BPF_PROG_RUN live-frame generator driven
for the same time; each consumer runs alone in its own process. Prints offered and consumed
rates and the ratio python/C.
Usage (root): tap_bench.py --rxdrop PATH [--seconds 4] [--rounds 2] [--flows 256]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from dataplane.bpf import XdpProgram
from dataplane.netns import Topology, unique_prefix
from dataplane.sources.afxdp import rx_queues
from dataplane.trafficgen import FrameSpec, LiveFrameGenerator, build_frame

HERE = Path(__file__).resolve().parent


def run_consumer(
    argv: list[str],
    gen: LiveFrameGenerator,
    frames: list[bytes],
    peer: str,
    ns: str,
    prog: XdpProgram,
    seconds: float,
) -> dict[str, float]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "ready":
        proc.kill()
        raise SystemExit(f"consumer failed to start: {argv} -> {line!r}")
    before = prog.counters().redirected
    sent = 0
    t0 = time.monotonic()
    i = 0
    while time.monotonic() - t0 < seconds:
        res = gen.send(frames[i % len(frames)], peer, ns, count=200_000, timeout=seconds)
        sent += res.frames
        i += 1
    elapsed = time.monotonic() - t0
    out = proc.communicate(timeout=seconds + 30)[0].split()
    redirected = prog.counters().redirected - before
    vals = dict(zip(out[::2], out[1::2], strict=False))
    received = int(vals["received"])
    return {
        "offered_pps": sent / elapsed,
        "redirected": redirected,
        "received": received,
        "pps": received / elapsed,
        "lost": redirected - received,  # kernel's redirect count minus what reached us
        "worst_tick_ms": float(vals.get("worst_tick_ms", 0.0)),
        # packets per CPU-second of the consumer: cost per packet, robust to a busy machine
        "pkts_per_cpu_s": received / max(float(vals["cpu_s"]), 1e-9),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rxdrop", required=True)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--flows", type=int, default=256)
    args = ap.parse_args()
    frames = [
        build_frame(
            FrameSpec(
                src=f"10.{i >> 8 & 255}.{i & 255}.1",
                dst="10.250.0.1",
                proto="udp" if i % 2 else "tcp",
                sport=1024 + i,
                dport=443,
            )
        )
        for i in range(args.flows)
    ]
    results: dict[str, list[dict[str, float]]] = {"c": [], "py": [], "py-count": []}
    with Topology(unique_prefix("flows")) as topo:
        ns = topo.add_namespace()
        pair = topo.add_veth(namespace=ns)
        prog = XdpProgram.attach(pair.host, mode="tap", prefer="native")
        attach_mode = prog.attach_mode
        try:
            queues = [str(q) for q in rx_queues(pair.host)]
            pin = str(prog.pin_dir / "floe_xsks")
            # consumer run time covers the generator window plus start/stop slack
            life = str(args.seconds + 1.0)
            argv = {
                "c": [args.rxdrop, pair.host, pin, life, *queues],
                "py": [sys.executable, str(HERE / "tap_consumer.py"), pair.host, life],
                "py-count": [
                    sys.executable,
                    str(HERE / "tap_consumer.py"),
                    pair.host,
                    life,
                    "--count-only",
                ],
            }
            with LiveFrameGenerator() as gen:
                for _ in range(args.rounds):
                    for name in ("c", "py", "py-count"):
                        results[name].append(
                            run_consumer(argv[name], gen, frames, pair.peer, ns, prog, args.seconds)
                        )
        finally:
            prog.detach()
    print(f"interpreter   {sys.version.split()[0]} ({sys.executable})")
    print(
        f"attach mode   {attach_mode}; queues {len(queues)}; flows {args.flows}; "
        f"{args.seconds:.0f} s x {args.rounds} rounds"
    )
    best = {}
    eff = {}
    for name, runs in results.items():
        for r in runs:
            print(
                f"{name:9s} offered {r['offered_pps'] / 1e6:5.2f} Mpps  consumed "
                f"{r['pps'] / 1e6:5.2f} Mpps  received {r['received']:>9.0f}  lost "
                f"{r['lost']:>8.0f}  {r['pkts_per_cpu_s'] / 1e6:5.2f} M pkts/CPU-s  "
                f"worst tick {r['worst_tick_ms']:.1f} ms"
            )
        best[name] = max(r["pps"] for r in runs)
        eff[name] = max(r["pkts_per_cpu_s"] for r in runs)
    print(f"ratio python full pipeline / C rx-drop : {best['py'] / best['c']:.2f}  (goal >= 0.9)")
    print(f"ratio python ring drain only / C rx-drop: {best['py-count'] / best['c']:.2f}")
    print(
        f"CPU cost ratio (pkts per CPU-second) full pipeline / C: {eff['py'] / eff['c']:.2f}, "
        f"drain only / C: {eff['py-count'] / eff['c']:.2f}"
    )


if __name__ == "__main__":
    main()
