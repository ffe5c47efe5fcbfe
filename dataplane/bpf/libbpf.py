"""ctypes bindings to the system libbpf (libbpf.so.1, 1.x API): only what Floe calls.

libbpf 1.x returns negative errno from int functions and NULL + errno from pointer
functions; `check()` / `check_ptr()` turn those into dataplane.bpf.errors exceptions.
libbpf's own log lines (verifier output, pin warnings) are captured with `capture_log()`
so a failed load carries the reason instead of printing it to stderr.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dataplane.bpf.errors import BpfError, BpfUnavailableError, from_errno

__all__ = [
    "BPF_ANY",
    "BPF_F_TEST_XDP_LIVE_FRAMES",
    "BPF_NOEXIST",
    "XDP_ATTACHED_DRV",
    "XDP_ATTACHED_MULTI",
    "XDP_ATTACHED_NONE",
    "XDP_ATTACHED_SKB",
    "XDP_FLAGS_DRV_MODE",
    "XDP_FLAGS_REPLACE",
    "XDP_FLAGS_SKB_MODE",
    "XDP_FLAGS_UPDATE_IF_NOEXIST",
    "MapBatchOpts",
    "TestRunOpts",
    "XdpAttachOpts",
    "XdpQueryOpts",
    "capture_log",
    "check",
    "check_ptr",
    "lib",
]

XDP_FLAGS_UPDATE_IF_NOEXIST = 1 << 0
XDP_FLAGS_SKB_MODE = 1 << 1
XDP_FLAGS_DRV_MODE = 1 << 2
XDP_FLAGS_REPLACE = 1 << 4
XDP_ATTACHED_NONE = 0
XDP_ATTACHED_DRV = 1
XDP_ATTACHED_SKB = 2
XDP_ATTACHED_MULTI = 4
BPF_ANY = 0
BPF_NOEXIST = 1
BPF_F_TEST_XDP_LIVE_FRAMES = 1 << 1

c_void_p = ctypes.c_void_p
c_int = ctypes.c_int
c_uint32 = ctypes.c_uint32
c_char_p = ctypes.c_char_p


class XdpAttachOpts(ctypes.Structure):
    _fields_ = [("sz", ctypes.c_size_t), ("old_prog_fd", c_int), ("_pad", c_int)]


class XdpQueryOpts(ctypes.Structure):
    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("prog_id", c_uint32),
        ("drv_prog_id", c_uint32),
        ("hw_prog_id", c_uint32),
        ("skb_prog_id", c_uint32),
        ("attach_mode", ctypes.c_uint8),
        ("_pad", ctypes.c_uint8 * 7),
    ]


class MapBatchOpts(ctypes.Structure):
    _fields_ = [
        ("sz", ctypes.c_size_t), ("elem_flags", ctypes.c_uint64), ("flags", ctypes.c_uint64),
    ]


class TestRunOpts(ctypes.Structure):
    __test__ = False
    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("data_in", c_void_p),
        ("data_out", c_void_p),
        ("data_size_in", c_uint32),
        ("data_size_out", c_uint32),
        ("ctx_in", c_void_p),
        ("ctx_out", c_void_p),
        ("ctx_size_in", c_uint32),
        ("ctx_size_out", c_uint32),
        ("retval", c_uint32),
        ("repeat", c_int),
        ("duration", c_uint32),
        ("flags", c_uint32),
        ("cpu", c_uint32),
        ("batch_size", c_uint32),
    ]


_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "bpf_object__open_file": (c_void_p, [c_char_p, c_void_p]),
    "bpf_object__load": (c_int, [c_void_p]),
    "bpf_object__close": (None, [c_void_p]),
    "bpf_object__next_map": (c_void_p, [c_void_p, c_void_p]),
    "bpf_object__find_program_by_name": (c_void_p, [c_void_p, c_char_p]),
    "bpf_map__name": (c_char_p, [c_void_p]),
    "bpf_map__fd": (c_int, [c_void_p]),
    "bpf_map__set_pin_path": (c_int, [c_void_p, c_char_p]),
    "bpf_map__set_max_entries": (c_int, [c_void_p, c_uint32]),
    "bpf_map__unpin": (c_int, [c_void_p, c_char_p]),
    "bpf_program__fd": (c_int, [c_void_p]),
    "bpf_program__flags": (c_uint32, [c_void_p]),
    "bpf_program__set_flags": (c_int, [c_void_p, c_uint32]),
    "bpf_xdp_attach": (c_int, [c_int, c_int, c_uint32, c_void_p]),
    "bpf_xdp_detach": (c_int, [c_int, c_uint32, c_void_p]),
    "bpf_xdp_query": (c_int, [c_int, c_int, c_void_p]),
    "bpf_obj_get": (c_int, [c_char_p]),
    "bpf_prog_get_fd_by_id": (c_int, [c_uint32]),
    "bpf_prog_get_next_id": (c_int, [c_uint32, ctypes.POINTER(c_uint32)]),
    "bpf_map_lookup_elem": (c_int, [c_int, c_void_p, c_void_p]),
    "bpf_map_update_elem": (c_int, [c_int, c_void_p, c_void_p, ctypes.c_uint64]),
    "bpf_map_delete_elem": (c_int, [c_int, c_void_p]),
    "bpf_map_get_next_key": (c_int, [c_int, c_void_p, c_void_p]),
    "bpf_map_lookup_batch": (
        c_int, [c_int, c_void_p, c_void_p, c_void_p, c_void_p, ctypes.POINTER(c_uint32), c_void_p],
    ),
    "bpf_prog_test_run_opts": (c_int, [c_int, c_void_p]),
    "libbpf_num_possible_cpus": (c_int, []),
    "bpf_obj_get_info_by_fd": (c_int, [c_int, c_void_p, ctypes.POINTER(c_uint32)]),
}

_PRINT_FN = ctypes.CFUNCTYPE(c_int, c_int, c_char_p, c_void_p)


class _LibBpf:
    """Lazily loaded libbpf.so.1 with typed function attributes."""

    def __init__(self) -> None:
        self._cdll: ctypes.CDLL | None = None
        self._lock = threading.Lock()
        self._log = threading.local()
        self._print_cb: Any = None
        self._libc: ctypes.CDLL | None = None

    def _load(self) -> ctypes.CDLL:
        with self._lock:
            if self._cdll is not None:
                return self._cdll
            name = ctypes.util.find_library("bpf") or "libbpf.so.1"
            try:
                cdll = ctypes.CDLL("libbpf.so.1", use_errno=True)
            except OSError:
                try:
                    cdll = ctypes.CDLL(name, use_errno=True)
                except OSError as error:
                    raise BpfUnavailableError(f"cannot load libbpf ({name}): {error}") from error
            for fn_name, (restype, argtypes) in _SIGNATURES.items():
                fn = getattr(cdll, fn_name)
                fn.restype = restype
                fn.argtypes = argtypes
            self._libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            self._libc.vsnprintf.argtypes = [c_char_p, ctypes.c_size_t, c_char_p, c_void_p]
            self._libc.vsnprintf.restype = c_int
            self._print_cb = _PRINT_FN(self._on_print)
            cdll.libbpf_set_print.restype = c_void_p
            cdll.libbpf_set_print.argtypes = [_PRINT_FN]
            cdll.libbpf_set_print(self._print_cb)
            self._cdll = cdll
            return cdll

    def _on_print(self, level: int, fmt: bytes | None, args: int | None) -> int:
        lines: list[str] | None = getattr(self._log, "lines", None)
        if lines is None or fmt is None or self._libc is None:
            return 0
        buf = ctypes.create_string_buffer(4096)
        self._libc.vsnprintf(buf, len(buf), fmt, args)
        if len(lines) < 2000:
            lines.append(buf.value.decode(errors="replace"))
        return 0

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._load(), name)

    @contextmanager
    def capture(self) -> Iterator[list[str]]:
        self._load()
        lines: list[str] = []
        previous = getattr(self._log, "lines", None)
        self._log.lines = lines
        try:
            yield lines
        finally:
            self._log.lines = previous


lib = _LibBpf()


def capture_log() -> Any:
    """Context manager collecting libbpf's log lines (this thread) into a list."""
    return lib.capture()


def check(ret: int, cls: type[BpfError], what: str, log: list[str] | None = None) -> int:
    """Raise `cls` for a negative libbpf return value, else return it."""
    if ret < 0:
        err = -ret if ret < -1 else (ctypes.get_errno() or -ret)
        raise from_errno(cls, what, err, "".join(log or []))
    return ret


def check_ptr(ptr: int | None, cls: type[BpfError], what: str, log: list[str] | None = None) -> int:
    """Raise `cls` (errno from libbpf) when a pointer-returning call gave NULL."""
    if not ptr:
        raise from_errno(cls, what, ctypes.get_errno() or 22, "".join(log or []))
    return ptr
