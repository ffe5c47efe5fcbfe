"""Pass-through mode, side by side with the tap path (root; ~1 min).

1. Driver overhead: floe_xdp in pass-through (every frame recorded in the ring buffer, a
   consumer draining it) against an empty XDP_PASS, and floe_xdp inline (pass + kernel flow
   map) for reference; bursts of BPF_PROG_RUN live frames, interleaved, timed by the kernel
   (bench/xdp's method).
2. The host stack still gets every frame: a packet socket on the interface counts what XDP
   passed during pass-through bursts (PACKET_STATISTICS: nothing is missed even when the
   socket is not read).
3. Full flow accounting (parse, flow table, aggregates, the tick's flow work) in
   pass-through against the tap path: each consumer (bench/flows/tap_consumer.py) alone for
   SECONDS while the generator runs flat out. In pass-through the host stack behind XDP_PASS
   bounds the offered rate far below what the tap consumer takes, so the consumer's own
   throughput is also measured from a backlog: frames sent with no consumer into a 256 MiB
   ring, then drained at full speed (records per second of the drain, wall and CPU).

Usage (root): passthrough_bench.py [--seconds 4] [--bursts 40] [--burst 20000] [--backlog N]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import random
import socket
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dataplane.bpf import XdpProgram
from dataplane.bpf import libbpf as lb
from dataplane.bpf.testrun import prog_test_run
from dataplane.netns import Topology, VethPair, unique_prefix
from dataplane.trafficgen import FrameSpec, LiveFrameGenerator, build_frame

HERE = Path(__file__).resolve().parent
SOL_PACKET, PACKET_STATISTICS, ETH_P_ALL = 263, 6, 0x0003
RING_BYTES = 1 << 28  # 256 MiB: room for the backlog of part 3


def load_gen(name: str) -> tuple[int, int]:
    """floe_gen.o's `name`, loaded (not attached): (object, program fd)."""
    from dataplane.bpf.layout import GEN_OBJECT

    obj = lb.lib.bpf_object__open_file(str(GEN_OBJECT).encode(), None)
    lb.check(lb.lib.bpf_object__load(obj), RuntimeError, "load floe_gen.o")  # type: ignore[arg-type]
    prog = lb.lib.bpf_object__find_program_by_name(obj, name.encode())
    return obj, lb.lib.bpf_program__fd(prog)


def consumer(ifname: str, seconds: float, *extra: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(HERE.parents[1]))  # this checkout's code
    proc = subprocess.Popen([sys.executable, str(HERE / "tap_consumer.py"), ifname,
                             str(seconds), *extra], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise SystemExit(f"consumer did not start: {extra}")
    return proc


def results(proc: subprocess.Popen[str], timeout: float) -> dict[str, float]:
    out = proc.communicate(timeout=timeout)[0].split()
    return {k: float(v) for k, v in zip(out[::2], out[1::2], strict=False)}


def driver_overhead(topo: Topology, ns: str, pair: VethPair, prog: XdpProgram,
                    gen: LiveFrameGenerator, frame: bytes, bursts: int, burst: int
                    ) -> dict[str, list[float]]:
    """Kernel seconds per burst for each configuration, interleaved."""
    _obj, pass_fd = load_gen("floe_gen_pass")
    floe_fd = prog.prog_fd()
    configs = [("empty XDP_PASS", pass_fd, None),
               ("floe_xdp pass-through, every frame recorded", floe_fd, "passthrough"),
               ("floe_xdp inline, pass + kernel flow map", floe_fd, "inline")]
    drain = consumer(pair.host, bursts * len(configs) * 0.2 + 30, "--ring", "--count-only")
    seconds: dict[str, list[float]] = {}
    try:
        def send() -> float:
            os.sched_setaffinity(0, {(os.cpu_count() or 1) - 1})
            result = prog_test_run(gen.prog_fd, frame, repeat=burst,
                                   ingress_ifindex=pair.peer_ifindex, live=True, batch_size=64)
            return result.duration_ns * burst / 1e9

        order = random.Random(7)
        for _ in range(bursts):
            for label, fd, mode in order.sample(configs, len(configs)):
                lb.check(lb.lib.bpf_xdp_attach(pair.host_ifindex, fd, lb.XDP_FLAGS_DRV_MODE,
                                               None), RuntimeError, "attach")  # type: ignore[arg-type]
                if mode is not None:
                    prog.set_config(mode=mode)  # type: ignore[arg-type]
                seconds.setdefault(label, []).append(topo.call_in(ns, send))
            time.sleep(0.002)
    finally:
        lb.lib.bpf_xdp_attach(pair.host_ifindex, floe_fd, lb.XDP_FLAGS_DRV_MODE, None)
        drain.terminate()
        drain.wait(30)
        os.close(floe_fd)
    return seconds


def host_delivery(topo: Topology, ns: str, pair: VethPair, prog: XdpProgram,
                  gen: LiveFrameGenerator, frame: bytes, count: int) -> tuple[int, int, int]:
    """(sent, seen by the packet socket, ring records) for `count` pass-through frames."""
    prog.set_config(mode="passthrough")
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    with sock:
        sock.bind((pair.host, ETH_P_ALL))
        sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)  # reading resets the counts
        before = prog.counters().ring_passed + prog.counters().ring_full
        sent = gen.send(frame, pair.peer, ns, count=count, timeout=60).frames
        time.sleep(0.3)
        packets, _drops = struct.unpack("II", sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
        after = prog.counters().ring_passed + prog.counters().ring_full
    return sent, packets, after - before


def accounting(pair: VethPair, ns: str, prog: XdpProgram, gen: LiveFrameGenerator,
               frames: list[bytes], mode: str, seconds: float) -> dict[str, float]:
    """One consumer with the full pipeline for `seconds` under a flat-out generator."""
    prog.set_config(mode=mode)  # type: ignore[arg-type]
    extra = ("--ring",) if mode == "passthrough" else ()
    proc = consumer(pair.host, seconds + 1.0, *extra)
    sent, i = 0, 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        sent += gen.send(frames[i % len(frames)], pair.peer, ns, count=100_000,
                         timeout=seconds).frames
        i += 1
    elapsed = time.monotonic() - start
    out = results(proc, seconds + 60)
    out["dropped"] += out["fill_empty"]  # tap: a consumer behind starves its fill ring
    out["offered_pps"] = sent / elapsed
    out["pps"] = out["received"] / elapsed
    out["pkts_per_cpu_s"] = out["received"] / max(out["cpu_s"], 1e-9)
    return out


def backlog_drain(pair: VethPair, ns: str, prog: XdpProgram, gen: LiveFrameGenerator,
                  frames: list[bytes], backlog: int) -> dict[str, float]:
    """Fill the ring with no consumer, then drain it with the full pipeline."""
    prog.set_config(mode="passthrough")
    full0 = prog.counters().ring_full
    sent = 0
    per = max(1, backlog // len(frames))
    for frame in frames:
        sent += gen.send(frame, pair.peer, ns, count=per, timeout=60).frames
    full = prog.counters().ring_full - full0
    proc = consumer(pair.host, 30.0, "--ring")
    out = results(proc, 90)
    out["sent"] = sent
    out["ring_full"] = full
    out["drain_pps"] = out["received"] / max(out["busy_s"], 1e-9)
    out["pkts_per_cpu_s"] = out["received"] / max(out["busy_cpu_s"], 1e-9)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--bursts", type=int, default=40)
    ap.add_argument("--burst", type=int, default=20_000)
    ap.add_argument("--flows", type=int, default=256)
    ap.add_argument("--backlog", type=int, default=1_000_000)
    args = ap.parse_args()
    bursts, burst = min(args.bursts, 500), min(args.burst, 200_000)
    backlog = min(args.backlog, RING_BYTES // 168 - 1000)
    frames = [build_frame(FrameSpec(src=f"10.{i >> 8 & 255}.{i & 255}.1", dst="10.250.0.1",
                                    proto="udp" if i % 2 else "tcp", sport=1024 + i, dport=443))
              for i in range(args.flows)]
    with contextlib.ExitStack() as stack:
        topo = stack.enter_context(Topology(unique_prefix("ptb")))
        gen = stack.enter_context(LiveFrameGenerator())
        ns = topo.add_namespace()
        pair = topo.add_veth(namespace=ns)
        prog = XdpProgram.attach(pair.host, mode="passthrough", prefer="native",
                                 ring_bytes=RING_BYTES)
        stack.callback(prog.detach)
        prog.set_config(drop_rate_cap=0)
        overhead = driver_overhead(topo, ns, pair, prog, gen, frames[0], bursts, burst)
        delivery = host_delivery(topo, ns, pair, prog, gen, frames[0], 200_000)
        tap = accounting(pair, ns, prog, gen, frames, "tap", args.seconds)
        live = accounting(pair, ns, prog, gen, frames, "passthrough", args.seconds)
        drained = backlog_drain(pair, ns, prog, gen, frames, backlog)
        attach_mode = prog.attach_mode

    print(f"interpreter   {platform.python_version()} ({sys.executable}), kernel "
          f"{platform.release()}, attach {attach_mode}, {len(frames[0])}-byte frames, "
          f"{args.flows} flows")
    print(f"1. driver overhead: {bursts} interleaved bursts x {burst} frames, kernel-timed")
    base = overhead["empty XDP_PASS"]
    for label, times in overhead.items():
        mpps = len(times) * burst / sum(times) / 1e6
        paired = statistics.median(b / t for t, b in zip(times, base, strict=True))
        print(f"   {label:46s} {mpps:6.3f} Mpps  {sum(base) / sum(times):6.3f}x  "
              f"(paired {paired:.3f}x)")
    sent, seen, records = delivery
    print(f"2. host stack: sent {sent}, received at a packet socket on {pair.host} {seen} "
          f"({'all' if seen == sent else f'MISSING {sent - seen}'}), ring records + ring "
          f"full {records}")
    print("3. full flow accounting (parse + flow table + aggregates + tick work)")
    for name, r in (("tap (AF_XDP)", tap), ("pass-through, live", live)):
        print(f"   {name:22s} offered {r['offered_pps'] / 1e6:5.2f} Mpps  consumed "
              f"{r['pps'] / 1e6:5.2f} Mpps  lost {r['dropped']:>9.0f}  "
              f"{r['pkts_per_cpu_s'] / 1e6:5.2f} M pkts/CPU-s")
    print(f"   pass-through, backlog  {drained['received']:.0f} records of {drained['sent']:.0f} "
          f"sent (ring full {drained['ring_full']:.0f}) drained at "
          f"{drained['drain_pps'] / 1e6:5.2f} Mpps, {drained['pkts_per_cpu_s'] / 1e6:5.2f} "
          f"M pkts/CPU-s, worst tick {drained['worst_tick_ms']:.1f} ms")
    print(f"   ratio pass-through drain / tap consumed: {drained['drain_pps'] / tap['pps']:.2f}"
          f"  (goal >= 0.9); per CPU-second: "
          f"{drained['pkts_per_cpu_s'] / tap['pkts_per_cpu_s']:.2f}")


if __name__ == "__main__":
    main()
