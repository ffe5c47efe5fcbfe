"""One exception hierarchy for everything BPF: callers catch `BpfError`, never OSError.

libbpf returns negative errno values, ctypes raises ArgumentError/OSError, the kernel says
EPERM/ENOENT/EINVAL; `map_errors()` and `from_errno()` turn each into the class below that
names what failed, keeping the errno and (for the verifier) libbpf's log.
"""

from __future__ import annotations

import ctypes
import errno as errno_mod
import os
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = [
    "AttachError",
    "BpfError",
    "BpfPermissionError",
    "BpfUnavailableError",
    "InterfaceNotFoundError",
    "MapError",
    "ObjectFileError",
    "PinError",
    "ProgramLoadError",
    "RuleError",
    "TestRunError",
    "from_errno",
    "map_errors",
]


class BpfError(Exception):
    """Base of every failure raised by dataplane.bpf."""

    def __init__(self, message: str, *, errno: int | None = None, log: str = "") -> None:
        if errno:
            message = f"{message}: [{errno_mod.errorcode.get(errno, errno)}] {os.strerror(errno)}"
        super().__init__(message)
        self.errno = errno
        self.log = log


class BpfUnavailableError(BpfError):
    """The kernel or libbpf cannot do BPF here (no libbpf, no bpffs, no BPF syscall)."""


class BpfPermissionError(BpfUnavailableError):
    """Not allowed: needs root / CAP_BPF + CAP_NET_ADMIN."""


class ObjectFileError(BpfError):
    """The BPF object file is missing or not a valid BPF ELF object."""


class ProgramLoadError(BpfError):
    """The kernel refused to load the program or create its maps; `.log` has libbpf's output."""


class InterfaceNotFoundError(BpfError):
    """No network interface with that name in this network namespace."""


class AttachError(BpfError):
    """Attaching or detaching the XDP program failed (mode not supported, busy, …)."""


class PinError(BpfError):
    """Pinning, reusing or removing pins under /sys/fs/bpf failed."""


class MapError(BpfError):
    """A map lookup/update/delete/batch operation failed."""


class RuleError(BpfError, ValueError):
    """A rule or rule set is invalid (bad CIDR, port, protocol, duplicate id, …)."""


class TestRunError(BpfError):
    """BPF_PROG_RUN failed (traffic generator or program test run)."""

    __test__ = False  # not a pytest test class


def from_errno(cls: type[BpfError], what: str, err: int, log: str = "") -> BpfError:
    """The exception for a failed call; EPERM/EACCES become BpfPermissionError.

    Except EACCES from a program load: that is the verifier's refusal, not a permission.
    """
    err = abs(err)
    verifier = err == errno_mod.EACCES and issubclass(cls, ProgramLoadError)
    if err in (errno_mod.EPERM, errno_mod.EACCES) and not verifier:
        return BpfPermissionError(f"{what} (needs root/CAP_BPF)", errno=err, log=log)
    if err == errno_mod.ENOSYS:
        return BpfUnavailableError(f"{what} (BPF syscall not available)", errno=err, log=log)
    return cls(what, errno=err, log=log)


@contextmanager
def map_errors(cls: type[BpfError], what: str) -> Iterator[None]:
    """Re-raise any OSError / ctypes / value error escaping the block as `cls` (or a subclass)."""
    try:
        yield
    except BpfError:
        raise
    except OSError as error:
        raise from_errno(cls, f"{what}: {error.strerror or error}", error.errno or 0) from error
    except (ctypes.ArgumentError, ValueError, TypeError, OverflowError) as error:
        raise cls(f"{what}: {error}") from error
