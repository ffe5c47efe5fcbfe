"""Wait until no BPF program is still running with what it read before a write.

An XDP program runs inside an RCU read-side section (the driver's NAPI poll, or BPF_PROG_RUN),
so once an RCU grace period has passed, every frame that was being processed when a map was
written has finished. `membarrier(MEMBARRIER_CMD_GLOBAL)` waits for exactly that
(synchronize_rcu); a few milliseconds here. The IPv6 index uses it between sending the kernel
to the trie and rewriting what frames in flight may still be reading, and the IPv4 index after
an update that freed blocks a later update may hand to other prefixes (dataplane/bpf/loader.py).
"""

from __future__ import annotations

import ctypes
import logging
import platform
import time

__all__ = ["FALLBACK_SECONDS", "wait_for_programs_in_flight"]

log = logging.getLogger(__name__)

_MEMBARRIER = {"x86_64": 324, "aarch64": 283, "riscv64": 283, "ppc64le": 365, "s390x": 356}
_MEMBARRIER_CMD_GLOBAL = 1
FALLBACK_SECONDS = 0.05  # where the kernel cannot say (nohz_full, seccomp): far past a frame

_libc = ctypes.CDLL(None, use_errno=True)


def wait_for_programs_in_flight() -> None:
    """Return once every BPF program run that began before this call has ended."""
    number = _MEMBARRIER.get(platform.machine())
    if number is not None and _libc.syscall(number, _MEMBARRIER_CMD_GLOBAL, 0, 0) == 0:
        return
    log.debug("membarrier(GLOBAL) unavailable (errno %d): sleeping %.0f ms instead",
              ctypes.get_errno(), FALLBACK_SECONDS * 1000)
    time.sleep(FALLBACK_SECONDS)
