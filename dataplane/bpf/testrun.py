"""BPF_PROG_RUN for XDP programs: run once on a frame (tests) or as a live-frame generator.

The kernel's test_run code (net/bpf/test_run.c) checks no capability, live frames or not:
loading the program took CAP_BPF (+ CAP_NET_ADMIN to attach). So when a live run is refused
with EPERM while a plain run of the same program works, something outside BPF said no — a
security module or a sandbox's policy on the bpf() call. The error then says what this
process lacks and which security modules the kernel runs, so the operator knows where to look.
"""

from __future__ import annotations

import ctypes
import errno
from dataclasses import dataclass
from pathlib import Path

from dataplane.bpf import libbpf as lb
from dataplane.bpf.errors import BpfPermissionError, TestRunError

__all__ = ["RunResult", "XdpMd", "privilege_report", "prog_test_run"]

# Capabilities BPF work can touch (bit numbers of /proc/self/status CapEff).
_CAPS = {"cap_net_admin": 12, "cap_sys_admin": 21, "cap_sys_resource": 24, "cap_perfmon": 38,
         "cap_bpf": 39}


def privilege_report(status: Path = Path("/proc/self/status"),
                     lsm: Path = Path("/sys/kernel/security/lsm")) -> str:
    """The BPF-relevant capabilities this process lacks and the kernel's security modules."""
    capeff = 0
    try:
        for line in status.read_text().splitlines():
            if line.startswith("CapEff:"):
                capeff = int(line.split()[1], 16)
    except (OSError, ValueError):
        return "capabilities unknown (no /proc/self/status)"
    missing = [name for name, bit in _CAPS.items() if not capeff >> bit & 1]
    try:
        modules = lsm.read_text().strip() or "none"
    except OSError:
        modules = "unknown (securityfs not mounted)"
    return (f"capabilities missing: {', '.join(missing) or 'none'} (CapEff {capeff:016x}); "
            f"security modules: {modules}")


class XdpMd(ctypes.Structure):
    """struct xdp_md as BPF_PROG_RUN takes it for ctx_in."""

    _fields_ = [(name, ctypes.c_uint32) for name in (
        "data", "data_end", "data_meta", "ingress_ifindex", "rx_queue_index", "egress_ifindex")]


@dataclass(slots=True, frozen=True)
class RunResult:
    """Program return value (XDP action) of the last run, and mean ns per repetition."""

    retval: int
    duration_ns: int


def prog_test_run(prog_fd: int, frame: bytes, *, repeat: int = 1, ingress_ifindex: int = 0,
                  rx_queue: int = 0, live: bool = False, batch_size: int = 0) -> RunResult:
    """Run an XDP program on `frame` `repeat` times (live: really TX/redirect each frame).

    `ingress_ifindex` is resolved in the calling thread's network namespace.
    """
    if not 14 <= len(frame) <= 4096:
        raise TestRunError(f"frame of {len(frame)} bytes: BPF_PROG_RUN needs 14..4096")
    if repeat < 1:
        raise TestRunError("repeat must be >= 1")
    data = ctypes.create_string_buffer(frame, len(frame))
    opts = lb.TestRunOpts(sz=ctypes.sizeof(lb.TestRunOpts))
    opts.data_in = ctypes.cast(data, ctypes.c_void_p)
    opts.data_size_in = len(frame)
    opts.repeat = repeat
    ctx = XdpMd(data=0, data_end=len(frame), ingress_ifindex=ingress_ifindex,
                rx_queue_index=rx_queue)
    if ingress_ifindex:
        opts.ctx_in = ctypes.cast(ctypes.pointer(ctx), ctypes.c_void_p)
        opts.ctx_size_in = ctypes.sizeof(ctx)
    if live:
        opts.flags = lb.BPF_F_TEST_XDP_LIVE_FRAMES
        opts.batch_size = batch_size
    else:
        out = ctypes.create_string_buffer(len(frame) + 256)
        opts.data_out = ctypes.cast(out, ctypes.c_void_p)
        opts.data_size_out = len(out)
    ret = lb.lib.bpf_prog_test_run_opts(prog_fd, ctypes.byref(opts))
    if live and ret in (-errno.EPERM, -errno.EACCES):
        raise BpfPermissionError(
            "BPF_PROG_RUN with live frames refused (the kernel's test_run checks no capability: "
            f"a security policy on bpf() said no; {privilege_report()})", errno=-ret)
    lb.check(ret, TestRunError, "BPF_PROG_RUN")
    return RunResult(retval=opts.retval, duration_ns=opts.duration)
