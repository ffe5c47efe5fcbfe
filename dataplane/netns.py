"""Network namespaces + veth pairs for tests and `floe demo`, always cleaned up.

Namespaces are entered with `nsenter --net=/run/netns/NAME` (never `ip netns exec`, which
remounts /sys and hides bpffs), or — inside this process — by a short-lived thread that
setns()es into the namespace, so sockets and BPF_PROG_RUN calls can be made "from" it.
Every name starts with a caller prefix plus a random token so parallel runs never collide.
"""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TypeVar

__all__ = ["NETNS_DIR", "NamespaceError", "Topology", "VethPair", "unique_prefix"]

log = logging.getLogger(__name__)

NETNS_DIR = Path("/run/netns")
_TIMEOUT = 10.0
T = TypeVar("T")


class NamespaceError(RuntimeError):
    """Creating, entering or removing a namespace or interface failed."""


def unique_prefix(area: str) -> str:
    """`area` + 4 random hex chars; interface names built on it must stay <= 15 chars."""
    if not area.isalnum() or len(area) > 6:
        raise NamespaceError(f"area prefix {area!r} must be alphanumeric, at most 6 chars")
    return f"{area}{secrets.token_hex(2)}"


@dataclass(slots=True, frozen=True)
class VethPair:
    """A veth pair: `host` stays in the creating namespace, `peer` lives in `namespace`."""

    host: str
    peer: str
    namespace: str | None
    host_ifindex: int
    peer_ifindex: int


@dataclass(slots=True)
class Topology:
    """Context manager owning namespaces and veth pairs; removes them all on exit."""

    prefix: str
    namespaces: list[str] = field(default_factory=list)
    veths: list[VethPair] = field(default_factory=list)

    def __enter__(self) -> Topology:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ---- building --------------------------------------------------------------------------

    def add_namespace(self, suffix: str = "ns") -> str:
        name = f"{self.prefix}{suffix}"
        _run(["ip", "netns", "add", name])
        self.namespaces.append(name)
        self.run(name, ["ip", "link", "set", "lo", "up"])
        return name

    def add_veth(self, host_suffix: str = "h", peer_suffix: str = "p", namespace: str | None = None,
                 *, quiet: bool = True, queues: int = 1) -> VethPair:
        """veth `prefix+host_suffix` here, `prefix+peer_suffix` in `namespace`, both up.

        `quiet` disables IPv6 on both ends first, so the kernel sends nothing (no DAD/MLD/RS)
        and tests can count frames exactly. `queues` > 1 gives both ends that many RX and TX
        queues (the sender's flow hash spreads frames over them, one AF_XDP socket each).
        """
        host, peer = f"{self.prefix}{host_suffix}", f"{self.prefix}{peer_suffix}"
        for name in (host, peer):
            if len(name) > 15:
                raise NamespaceError(f"interface name {name!r} longer than 15 chars")
        if queues < 1:
            raise NamespaceError(f"queues={queues}: must be >= 1")
        q = ["numtxqueues", str(queues), "numrxqueues", str(queues)] if queues > 1 else []
        _run(["ip", "link", "add", host, *q, "type", "veth", "peer", "name", peer, *q])
        try:
            if namespace is not None:
                _run(["ip", "link", "set", peer, "netns", namespace])
            if quiet:
                _sysctl(None, f"net.ipv6.conf.{host}.disable_ipv6", "1")
                _sysctl(namespace, f"net.ipv6.conf.{peer}.disable_ipv6", "1")
            _run(["ip", "link", "set", host, "up"])
            self.run(namespace, ["ip", "link", "set", peer, "up"])
            pair = VethPair(host, peer, namespace, _ifindex(None, host), _ifindex(namespace, peer))
        except BaseException:
            _run(["ip", "link", "del", host], check=False)
            raise
        self.veths.append(pair)
        return pair

    def add_address(self, namespace: str | None, ifname: str, cidr: str) -> None:
        self.run(namespace, ["ip", "addr", "add", cidr, "dev", ifname])

    # ---- entering --------------------------------------------------------------------------

    def run(self, namespace: str | None, argv: Sequence[str], *, check: bool = True,
            timeout: float = _TIMEOUT) -> subprocess.CompletedProcess[str]:
        """Run a command in `namespace` (None: here) through nsenter --net."""
        return _run([*_enter(namespace), *argv], check=check, timeout=timeout)

    def popen(self, namespace: str | None, argv: Sequence[str],
              **kwargs: object) -> subprocess.Popen[bytes]:
        """Start a long-running command in `namespace`; the caller owns and reaps it."""
        argv = [*_enter(namespace), *argv]
        return subprocess.Popen(argv, **kwargs)  # type: ignore[call-overload,no-any-return]  # noqa: S603

    @staticmethod
    def call_in(namespace: str | None, fn: Callable[[], T], timeout: float = 300.0) -> T:
        """Call `fn` in a fresh thread that has joined `namespace` (None: call it here)."""
        return call_in(namespace, fn, timeout)

    # ---- teardown --------------------------------------------------------------------------

    def close(self) -> None:
        """Delete every veth and namespace this topology created; never raises."""
        for pair in reversed(self.veths):
            _run(["ip", "link", "del", pair.host], check=False)
        self.veths.clear()
        for name in reversed(self.namespaces):
            _run(["ip", "netns", "del", name], check=False)
        self.namespaces.clear()


def call_in(namespace: str | None, fn: Callable[[], T], timeout: float = 300.0) -> T:
    """Run `fn` in a thread that setns()ed into `namespace`; sockets it creates stay there."""
    if namespace is None:
        return fn()
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            fd = os.open(NETNS_DIR / namespace, os.O_RDONLY)
            try:
                os.setns(fd, os.CLONE_NEWNET)
            finally:
                os.close(fd)
            result.append(fn())
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name=f"netns-{namespace}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise NamespaceError(f"call in namespace {namespace} did not finish in {timeout}s")
    if error:
        raise error[0]
    return result[0]


def _enter(namespace: str | None) -> list[str]:
    return [] if namespace is None else ["nsenter", f"--net={NETNS_DIR / namespace}", "--"]


def _ifindex(namespace: str | None, ifname: str) -> int:
    # not /sys/class/net: sysfs shows the namespace it was mounted in, not nsenter's
    out = _run([*_enter(namespace), "ip", "-o", "link", "show", "dev", ifname]).stdout
    return int(out.split(":", 1)[0])


def _sysctl(namespace: str | None, key: str, value: str) -> None:
    _run([*_enter(namespace), "sysctl", "-q", "-w", f"{key}={value}"])


def _run(argv: Sequence[str], *, check: bool = True,
         timeout: float = _TIMEOUT) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,  # noqa: S603
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        if check:
            raise NamespaceError(f"{' '.join(argv)}: {error}") from error
        return subprocess.CompletedProcess(list(argv), -1, "", str(error))
    if check and proc.returncode != 0:
        raise NamespaceError(f"{' '.join(argv)}: {proc.stderr.strip() or proc.returncode}")
    if proc.returncode != 0:
        log.debug("%s failed: %s", " ".join(argv), proc.stderr.strip())
    return proc
