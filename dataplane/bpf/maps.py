"""A BPF map by file descriptor: raw-bytes lookup/update/delete/iterate/batch-read.

Per-CPU maps hand back one slot per possible CPU (value size rounded to 8 bytes); the
typed helpers in the loader sum them. Every failure is a MapError (or a permission error).
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from dataplane.bpf.errors import MapError, from_errno
from dataplane.bpf.layout import percpu_stride
from dataplane.bpf.libbpf import BPF_ANY, MapBatchOpts, lib

__all__ = ["BpfMap", "possible_cpus"]

_BATCH = 4096


def possible_cpus() -> int:
    """Number of possible CPUs (the per-CPU slot count), from libbpf."""
    n = int(lib.libbpf_num_possible_cpus())
    if n <= 0:
        raise from_errno(MapError, "libbpf_num_possible_cpus", -n or errno.EINVAL)
    return n


@dataclass(slots=True)
class BpfMap:
    """One map: its fd (owned unless `owned=False`), key/value sizes and per-CPU shape."""

    name: str
    fd: int
    key_size: int
    value_size: int
    percpu: bool = False
    ncpus: int = 1
    owned: bool = True

    @property
    def slot_size(self) -> int:
        """Bytes of a full value buffer as the syscall sees it (all CPUs for per-CPU maps)."""
        if self.percpu:
            return percpu_stride(self.value_size) * self.ncpus
        return self.value_size

    def _fail(self, what: str, ret: int) -> MapError:
        err = -ret if ret < -1 else (ctypes.get_errno() or errno.EINVAL)
        exc = from_errno(MapError, f"{what} on map {self.name}", err)
        return exc  # type: ignore[return-value]

    def lookup(self, key: bytes) -> bytes | None:
        """The raw value (all CPU slots for per-CPU maps), or None if the key is absent."""
        self._check_key(key)
        value = ctypes.create_string_buffer(self.slot_size)
        ret = lib.bpf_map_lookup_elem(self.fd, key, value)
        if ret < 0:
            if -ret == errno.ENOENT or ctypes.get_errno() == errno.ENOENT:
                return None
            raise self._fail("lookup", ret)
        return value.raw

    def update(self, key: bytes, value: bytes, flags: int = BPF_ANY) -> None:
        """Insert or replace; per-CPU values must carry every CPU's slot."""
        self._check_key(key)
        if len(value) != self.slot_size:
            raise MapError(f"update on map {self.name}: value is {len(value)} bytes, "
                           f"expected {self.slot_size}")
        ret = lib.bpf_map_update_elem(self.fd, key, value, flags)
        if ret < 0:
            raise self._fail("update", ret)

    def delete(self, key: bytes) -> bool:
        """Remove a key; False if it was not there."""
        self._check_key(key)
        ret = lib.bpf_map_delete_elem(self.fd, key)
        if ret < 0:
            if -ret == errno.ENOENT or ctypes.get_errno() == errno.ENOENT:
                return False
            raise self._fail("delete", ret)
        return True

    def keys(self) -> list[bytes]:
        """Every key, by get_next_key iteration (rule maps: small)."""
        out: list[bytes] = []
        prev: bytes | None = None
        nxt = ctypes.create_string_buffer(self.key_size)
        while True:
            ret = lib.bpf_map_get_next_key(self.fd, prev, nxt)
            if ret < 0:
                if -ret == errno.ENOENT or ctypes.get_errno() == errno.ENOENT:
                    return out
                raise self._fail("get_next_key", ret)
            prev = nxt.raw
            out.append(prev)
            if len(out) > 10_000_000:
                raise MapError(f"iteration of map {self.name} does not end")

    def read_all(self) -> tuple[bytes, bytes, int]:
        """Batch-read the whole map: (keys, values, count) as packed byte strings."""
        keys_out = bytearray()
        values_out = bytearray()
        total = 0
        keys = ctypes.create_string_buffer(self.key_size * _BATCH)
        values = ctypes.create_string_buffer(self.slot_size * _BATCH)
        token_in = ctypes.create_string_buffer(max(self.key_size, 8))
        token_out = ctypes.create_string_buffer(max(self.key_size, 8))
        opts = MapBatchOpts(sz=ctypes.sizeof(MapBatchOpts))
        first = True
        while True:
            count = ctypes.c_uint32(_BATCH)
            ret = lib.bpf_map_lookup_batch(
                self.fd, None if first else token_in, token_out, keys, values,
                ctypes.byref(count), ctypes.byref(opts),
            )
            err = (-ret if ret < -1 else ctypes.get_errno()) if ret < 0 else 0
            if ret < 0 and err != errno.ENOENT:
                raise from_errno(MapError, f"batch lookup on map {self.name}", err)
            n = count.value
            keys_out += keys.raw[: n * self.key_size]
            values_out += values.raw[: n * self.slot_size]
            total += n
            if ret < 0:  # ENOENT: that was the last batch
                return bytes(keys_out), bytes(values_out), total
            ctypes.memmove(token_in, token_out, len(token_out))
            first = False

    def read_words(self) -> npt.NDArray[np.uint32]:
        """A copy of element 0 of an mmapable ARRAY map, as u32 words (one memory copy).

        A read-only shared mapping of a BPF_F_MMAPABLE array reads the ~3 MiB of a CIDR index
        level in ~1 ms; element-wise lookups through the syscall took ~0.2 s.
        """
        if self.key_size != 4 or self.percpu or self.value_size % 4:
            raise MapError(f"map {self.name} is not an array of u32 words")
        try:
            with mmap.mmap(self.fd, self.value_size, mmap.MAP_SHARED, mmap.PROT_READ) as view:
                return np.frombuffer(view, dtype=np.uint32).copy()
        except (OSError, ValueError) as error:
            raise MapError(f"mmap of map {self.name}: {error}") from error

    def mapped(self) -> npt.NDArray[np.uint8]:
        """Element 0 of an mmapable ARRAY map as a writable numpy view of the kernel's own
        memory: writes are seen by the program at once. The mapping lives as long as the view
        (or any view of it)."""
        if self.key_size != 4 or self.percpu:
            raise MapError(f"map {self.name} is not a plain array")
        try:
            view = mmap.mmap(self.fd, self.value_size, mmap.MAP_SHARED,
                             mmap.PROT_READ | mmap.PROT_WRITE)
        except (OSError, ValueError) as error:
            raise MapError(f"mmap of map {self.name}: {error}") from error
        return np.frombuffer(view, dtype=np.uint8)

    def close(self) -> None:
        if self.owned and self.fd >= 0:
            os.close(self.fd)
        self.fd = -1

    def _check_key(self, key: bytes) -> None:
        if self.fd < 0:
            raise MapError(f"map {self.name} is closed")
        if len(key) != self.key_size:
            raise MapError(f"map {self.name}: key is {len(key)} bytes, expected {self.key_size}")
