"""In-kernel path benchmark: floe_xdp (1k CIDR rules) vs empty XDP programs, same veth + generator.

Generator: BPF_PROG_RUN live frames (XDP_TX) from a namespace into a veth whose host end
runs the program under test natively. All programs are loaded once; between bursts the
attached one is swapped on the same veth, so configurations are interleaved finely. The
veth's own XDP statistics (ethtool -S) confirm every frame reached a program.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dataplane.bpf import BpfError, BpfPermissionError, Rule, RuleSet, XdpProgram
from dataplane.bpf import libbpf as lb
from dataplane.bpf.layout import GEN_OBJECT
from dataplane.bpf.testrun import prog_test_run
from dataplane.netns import Topology, unique_prefix
from dataplane.trafficgen import FrameSpec, LiveFrameGenerator, build_frame

PROGRAM_ROUNDS = 40
PROGRAM_REPEAT = 100_000


def empty_for(label: str) -> str:
    """The empty program a configuration's ratio is taken against: same verdict, same frame."""
    return ("empty XDP_PASS" if "pass" in label.lower()
            else "empty XDP_DROP, v6 frame" if "v6" in label else "empty XDP_DROP")


def fastest_quarter(times: list[int]) -> float:
    """Mean of the fastest quarter of `times`."""
    fastest = sorted(times)[:max(1, len(times) // 4)]
    return sum(fastest) / len(fastest)


def xdp_rx(topo: Topology, ifname: str) -> int:
    out = topo.run(None, ["ethtool", "-S", ifname]).stdout
    return sum(int(line.split(":")[1]) for line in out.splitlines()
               if line.strip().startswith("rx_queue_") and line.strip().split(":")[0].endswith(
                   "_xdp_packets"))


def attach_gen(ifindex: int, name: str) -> int:
    """Attach one of floe_gen.o's programs natively; returns the libbpf object pointer."""
    obj = lb.check_ptr(lb.lib.bpf_object__open_file(str(GEN_OBJECT).encode(), None),
                       RuntimeError, "open")  # type: ignore[arg-type]
    lb.check(lb.lib.bpf_object__load(obj), RuntimeError, "load")  # type: ignore[arg-type]
    prog = lb.lib.bpf_object__find_program_by_name(obj, name.encode())
    fd = lb.lib.bpf_program__fd(prog)
    lb.check(lb.lib.bpf_xdp_attach(ifindex, fd, lb.XDP_FLAGS_DRV_MODE, None), RuntimeError,
             "attach")  # type: ignore[arg-type]
    return obj


def program_fd(ifindex: int) -> int:
    opts = lb.XdpQueryOpts(sz=ctypes.sizeof(lb.XdpQueryOpts))
    lb.check(lb.lib.bpf_xdp_query(ifindex, 0, ctypes.byref(opts)), RuntimeError,
             "query")  # type: ignore[arg-type]
    return lb.check(lb.lib.bpf_prog_get_fd_by_id(opts.prog_id), RuntimeError,
                    "prog fd")  # type: ignore[arg-type]


def load_floor(path: str, prog: XdpProgram) -> tuple[int, dict[str, int]]:
    """bench/xdp/floor.c (reference rows: the least a counting CIDR filter does), its index
    a copy of the one floe_xdp built for the same rules. Returns (object, {name: prog fd})."""
    obj = lb.check_ptr(lb.lib.bpf_object__open_file(path.encode(), None), RuntimeError,
                       "open floor.o")  # type: ignore[arg-type]
    lb.check(lb.lib.bpf_object__load(obj), RuntimeError, "load floor.o")  # type: ignore[arg-type]
    maps, bpf_map = {}, None
    while bpf_map := lb.lib.bpf_object__next_map(obj, bpf_map):
        maps[lb.lib.bpf_map__name(bpf_map).decode()] = lb.lib.bpf_map__fd(bpf_map)
    zero = ctypes.c_uint32(0)
    for level in ("l1", "l2", "l3"):
        value = prog.map(f"floe_src_v4_{level}").lookup(bytes(4))
        assert value is not None
        buf = ctypes.create_string_buffer(value, len(value))
        fd = maps[f".bss.floor_{level}"]
        lb.check(lb.lib.bpf_map_update_elem(fd, ctypes.byref(zero), buf, 0), RuntimeError,
                 "fill floor index")  # type: ignore[arg-type]
    fds = {}
    for name in ("floor_lookup", "floor_count", "floor_count7"):
        program = lb.lib.bpf_object__find_program_by_name(obj, name.encode())
        fds[name] = lb.lib.bpf_program__fd(program)
    return obj, fds


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--burst", type=int, default=20_000, help="frames per burst")
    parser.add_argument("--rounds", type=int, default=150, help="bursts per configuration")
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--floor", help="bench/xdp/floor.c built: adds its reference rows")
    parser.add_argument("--no-live", action="store_true",
                        help="only the program-alone rows (plain BPF_PROG_RUN, no live frames)")

    args = parser.parse_args()
    burst = min(args.burst, 1_000_000)
    rounds = min(args.rounds, 1000)

    deny_rules = [Rule(i + 1, "deny", src=f"10.{(i >> 8) & 255}.{i & 255}.0/24")
                  for i in range(args.rules)]
    # as many IPv6 /48s (LPM trie; the v4 paths never look at them)
    deny_rules += [Rule(100_000 + i, "deny", src=f"2001:db8:{i:x}::/48")
                   for i in range(args.rules)]
    hit = build_frame(FrameSpec(src="10.1.244.7", dst="192.168.0.1", proto="udp"))  # rule 501
    hit6 = build_frame(FrameSpec(src="2001:db8:1f4::7", dst="2001:db8:ffff::1", proto="udp"))
    miss = build_frame(FrameSpec(src="172.16.0.1", dst="192.168.0.1", proto="udp"))
    seconds: dict[str, list[float]] = {}  # kernel-timed, per burst
    wall: dict[str, list[float]] = {}  # wall clock around each BPF_PROG_RUN call
    current = [""]
    cost_ns: dict[str, float] = {}

    with contextlib.ExitStack() as stack:
        topo = stack.enter_context(Topology(unique_prefix("bx")))
        gen = stack.enter_context(LiveFrameGenerator())
        ns = topo.add_namespace()

        pair = topo.add_veth(namespace=ns)
        ifindex = pair.host_ifindex
        prog = XdpProgram.attach(pair.host, mode="inline")
        stack.callback(prog.detach)
        prog.rules.apply(RuleSet(deny_rules))
        floe_fd = prog.prog_fd()
        empty_fds = {}
        for name in ("floe_gen_drop", "floe_gen_pass", "floe_gen_read_drop"):
            obj = attach_gen(ifindex, name)  # loaded once; attached only while measured
            stack.callback(lb.lib.bpf_object__close, obj)
            empty_fds[name] = program_fd(ifindex)
            stack.callback(os.close, empty_fds[name])
        stack.callback(lb.lib.bpf_xdp_attach, ifindex, floe_fd, lb.XDP_FLAGS_DRV_MODE, None)
        floor: dict[str, int] = {}
        if args.floor:
            floor_obj, floor = load_floor(args.floor, prog)
            stack.callback(lb.lib.bpf_object__close, floor_obj)

        # (label, program fd, floe default action, frame). Every configuration runs on the same
        # veth from the same generator: the generator alternates short bursts between them,
        # swapping the attached program (and floe's default action) between bursts, so
        # neighbours' noise (+-20 % on the live rate within a second here) hits all alike.
        configs = [
            ("empty XDP_DROP", empty_fds["floe_gen_drop"], None, hit),
            ("read saddr + XDP_DROP (reference)", empty_fds["floe_gen_read_drop"], None, hit),
            ("floe_xdp 1k rules, deny hit", floe_fd, "allow", hit),
            ("empty XDP_DROP, v6 frame", empty_fds["floe_gen_drop"], None, hit6),
            ("floe_xdp 1k v6 rules, v6 deny hit", floe_fd, "allow", hit6),
            *([("floor: parse + index read (reference)", floor["floor_lookup"], None, hit),
               ("floor: + hit + fast pair (reference)", floor["floor_count"], None, hit),
               ("floor: + hit + 7 counters (reference)", floor["floor_count7"], None, hit)]
              if floor else []),
            ("floe_xdp 1k rules, miss->default deny", floe_fd, "deny", miss),
            ("empty XDP_PASS", empty_fds["floe_gen_pass"], None, miss),
            ("floe_xdp 1k rules, pass+flow", floe_fd, "allow", miss),
        ]

        def use(fd: int, default: str | None) -> None:
            lb.check(lb.lib.bpf_xdp_attach(ifindex, fd, lb.XDP_FLAGS_DRV_MODE, None),
                     BpfError, "attach")
            if default is not None:
                prog.set_config(default_action=default)  # type: ignore[arg-type]

        # The program alone: plain BPF_PROG_RUN on each program's fd, no live frames. The kernel
        # times in whole ns and the neighbours only ever add, so: rounds interleaved, and the
        # mean of each configuration's fastest quarter.
        runs: dict[str, list[int]] = {}
        for _ in range(PROGRAM_ROUNDS):
            for label, fd, default, frame in configs:
                if default is not None:
                    prog.set_config(default_action=default)  # type: ignore[arg-type]
                runs.setdefault(label, []).append(prog_test_run(
                    fd, frame, repeat=PROGRAM_REPEAT, ingress_ifindex=ifindex).duration_ns)
        cost_ns.update({label: fastest_quarter(times) for label, times in runs.items()})
        live = not args.no_live
        if live:  # one live frame first: some machines refuse live frames (docs/benchmarks.md)
            try:
                topo.call_in(ns, lambda: prog_test_run(
                    gen.prog_fd, hit, repeat=1, ingress_ifindex=pair.peer_ifindex, live=True))
            except BpfPermissionError as error:
                print(f"bench/xdp: {error}; only the program-alone rows follow", flush=True)
                live = False
        if not live:
            rounds = 0
        before = xdp_rx(topo, pair.host)

        def send(frame: bytes) -> float:  # runs in the namespace, pinned to the last CPU
            """Seconds the kernel spent on the burst, by BPF_PROG_RUN's own timer.

            Wall time around the call would add ~20 ms of page-pool set-up and teardown per
            call (measured: 24 ms for 20k frames, 48 ms for 200k) and dilute every ratio.
            The receiving veth's NAPI runs in the same loop (softirq on this CPU), so the
            program under test is inside the timed part.
            """
            os.sched_setaffinity(0, {(os.cpu_count() or 1) - 1})
            start = time.perf_counter()
            result = prog_test_run(gen.prog_fd, frame, repeat=burst,
                                   ingress_ifindex=pair.peer_ifindex, live=True, batch_size=64)
            wall.setdefault(current[0], []).append(time.perf_counter() - start)
            return result.duration_ns * burst / 1e9

        order = random.Random(4)
        for _ in range(rounds):
            for label, fd, default, frame in order.sample(configs, len(configs)):
                use(fd, default)  # here: the host end is in this namespace
                current[0] = label
                seconds.setdefault(label, []).append(topo.call_in(ns, lambda f=frame: send(f)))
            time.sleep(0.002)  # let the stack drain what the PASS bursts handed it
        time.sleep(0.05)
        seen = xdp_rx(topo, pair.host) - before - (1 if live else 0)
        if live and seen != rounds * burst * len(configs):
            print(f"  note: sent {rounds * burst * len(configs)} frames, seen by XDP {seen}")

    if not live:
        print(f"python {platform.python_version()} ({sys.executable}), kernel "
              f"{platform.release()}: the program alone (plain BPF_PROG_RUN, {PROGRAM_ROUNDS} "
              f"interleaved rounds x {PROGRAM_REPEAT // 1000}k runs, fastest quarter)")
        print(f"  {'configuration':40s} {'ns/frame':>8s}  {'over the empty program':>22s}")
        for label, _fd, _default, _frame in configs:
            added = cost_ns[label] - cost_ns[empty_for(label)]
            print(f"  {label:40s} {cost_ns[label]:8.1f}  {added:+22.1f}")
        print("  over the empty program = what the program adds to a frame, against the empty one")
        print("  with the same verdict and frame; the live ratio is the generator's cost per frame")
        print("  over that cost plus this (two loads of the same program differ by up to ~2 ns)")
        return 0
    print(f"python {platform.python_version()} ({sys.executable}), kernel {platform.release()}, "
          f"{rounds} bursts x {burst} frames per configuration, {len(hit)}-byte UDP frames "
          f"({len(hit6)} for IPv6), "
          "bursts interleaved")
    head = (f"{'live Mpps':>10s}  {'ratio':>7s}  {'paired ratio':>12s}  {'wall ratio':>10s}  "
            f"{'ns/frame (PROG_RUN)':>19s}")
    print(f"  {'configuration':40s} {head}")
    for label, times in seconds.items():
        base_label = empty_for(label)
        base = seconds[base_label]
        mpps = rounds * burst / sum(times) / 1e6
        ratio = sum(base) / sum(times)
        paired = statistics.median(b / t for t, b in zip(times, base, strict=True))
        wall_ratio = sum(wall[base_label]) / sum(wall[label])
        print(f"  {label:40s} {mpps:10.3f}  {ratio:6.3f}x  {paired:11.3f}x  {wall_ratio:9.3f}x  "
              f"{cost_ns[label]:19.1f}")
    print("  ratio = live rate / the empty program with the same verdict (DROP or PASS), timed by")
    print("  the kernel over all bursts; paired = median over rounds of that ratio within a round;")
    print("  wall = the same from wall-clock time around each call, which adds the generator's")
    print("  ~20 ms per-call set-up to every configuration alike (the method before 2026-11-26)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
