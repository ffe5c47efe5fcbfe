"""BPF_PROG_RUN for XDP programs: run once on a frame (tests) or as a live-frame generator."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

from dataplane.bpf import libbpf as lb
from dataplane.bpf.errors import TestRunError

__all__ = ["RunResult", "XdpMd", "prog_test_run"]


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
    lb.check(lb.lib.bpf_prog_test_run_opts(prog_fd, ctypes.byref(opts)), TestRunError,
             "BPF_PROG_RUN")
    return RunResult(retval=opts.retval, duration_ns=opts.duration)
