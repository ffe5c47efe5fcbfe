"""Program-alone A/B of floe_xdp objects: what each adds to a frame over an empty XDP_DROP.

Two loads of the same object differ by up to ~2 ns here (where the JIT image and the maps
land), which is as much as most changes to the drop paths are worth. So each object is loaded
`--copies` times, in alternating order (A B B A A B ...), each copy on a veth of its own with
the same 1k v4 /24 and 1k v6 /48 deny rules, and every copy's rows run interleaved with the
empty program's, `--rounds` times, pinned to one CPU; a row is the mean over an object's copies
of the fastest quarter. Example, the previous commit against this one:

    git worktree add /tmp/prev HEAD~1 && make -s -C /tmp/prev/bpf
    .venv/bin/python bench/xdp/ab.py /tmp/prev/bpf/build/floe_xdp.o bpf/build/floe_xdp.o

The objects must share the loader's map layout for the maps this script touches (rules,
config): it drives every object with this checkout's user space.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_xdp import attach_gen, fastest_quarter, program_fd

from dataplane.bpf import Rule, RuleSet, XdpProgram
from dataplane.bpf import libbpf as lb
from dataplane.bpf.testrun import prog_test_run
from dataplane.netns import Topology, unique_prefix
from dataplane.trafficgen import FrameSpec, build_frame

REPEAT = 100_000
HIT = build_frame(FrameSpec(src="10.1.244.7", dst="192.168.0.1", proto="udp"))  # rule 501
HIT6 = build_frame(FrameSpec(src="2001:db8:1f4::7", dst="2001:db8:ffff::1", proto="udp"))
MISS = build_frame(FrameSpec(src="172.16.0.1", dst="192.168.0.1", proto="udp"))
# (row, frame, default action)
ROWS = [("v4 deny hit", HIT, "allow"), ("v6 deny hit", HIT6, "allow"),
        ("v4 miss -> default deny", MISS, "deny")]


def load_order(objects: list[str], copies: int) -> list[str]:
    """A B, then B A, then A B ...: neither object always gets the first placement."""
    order: list[str] = []
    for copy in range(copies):
        order += objects if copy % 2 == 0 else objects[::-1]
    return order


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("objects", nargs="+", help="floe_xdp.o files")
    parser.add_argument("--copies", type=int, default=3, help="loads of each object")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--cpu", type=int, default=(os.cpu_count() or 1) - 1)
    args = parser.parse_args()
    copies, rounds = max(1, min(args.copies, 8)), max(4, min(args.rounds, 1000))
    rules = [Rule(i + 1, "deny", src=f"10.{(i >> 8) & 255}.{i & 255}.0/24") for i in range(1000)]
    rules += [Rule(100_000 + i, "deny", src=f"2001:db8:{i:x}::/48") for i in range(1000)]
    os.sched_setaffinity(0, {args.cpu})  # BPF_PROG_RUN runs on the calling CPU

    with contextlib.ExitStack() as stack:
        topo = stack.enter_context(Topology(unique_prefix("ab")))
        loaded: list[tuple[str, XdpProgram, int, int]] = []  # object, program, fd, ifindex
        for n, path in enumerate(load_order(args.objects, copies)):
            pair = topo.add_veth(f"h{n}", f"p{n}", namespace=topo.add_namespace(f"n{n}"))
            prog = XdpProgram.attach(pair.host, mode="inline", object_path=Path(path))
            stack.callback(prog.detach)
            prog.rules.apply(RuleSet(rules))
            fd = prog.prog_fd()
            stack.callback(os.close, fd)
            loaded.append((path, prog, fd, pair.host_ifindex))
        # the empty program on a veth of its own: every copy stays attached where it was loaded
        empty_pair = topo.add_veth("he", "pe", namespace=topo.add_namespace("ne"))
        stack.callback(lb.lib.bpf_object__close,
                       attach_gen(empty_pair.host_ifindex, "floe_gen_drop"))
        empty = program_fd(empty_pair.host_ifindex)
        stack.callback(os.close, empty)

        runs: dict[tuple[str, int], list[int]] = {}
        for _ in range(rounds):
            for frame in (HIT, HIT6):
                runs.setdefault(("empty", len(frame)), []).append(prog_test_run(
                    empty, frame, repeat=REPEAT,
                    ingress_ifindex=empty_pair.host_ifindex).duration_ns)
            for n, (_path, prog, fd, ifindex) in enumerate(loaded):
                for row, (_name, frame, default) in enumerate(ROWS):
                    prog.set_config(default_action=default)  # type: ignore[arg-type]
                    runs.setdefault((str(n), row), []).append(prog_test_run(
                        fd, frame, repeat=REPEAT, ingress_ifindex=ifindex).duration_ns)

    fast = {key: fastest_quarter(times) for key, times in runs.items()}
    print(f"python {sys.version.split()[0]}, CPU {args.cpu}, {copies} copies of each object in "
          f"alternating load order, {rounds} rounds x {REPEAT // 1000}k runs, fastest quarter: "
          "ns a frame over the empty XDP_DROP (mean over copies; each copy in brackets)")
    for path in args.objects:
        cells = []
        for row, (name, frame, _default) in enumerate(ROWS):
            added = [fast[(str(n), row)] - fast[("empty", len(frame))]
                     for n, (p, *_rest) in enumerate(loaded) if p == path]
            cells.append(f"{name} +{statistics.mean(added):.1f} "
                         f"[{' '.join(f'{a:.1f}' for a in added)}]")
        print(f"  {path}\n    " + "\n    ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
