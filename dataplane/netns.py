"""Network namespaces + veth pairs for tests and `floe demo`, always cleaned up.

Built over netlink with pyroute2 (`IPRoute`, `pyroute2.netns`), never by running `ip` or
`sysctl`: each step runs in a short-lived thread that joined the namespace it works in, so
no process is forked (pyroute2's own `netns=` mode forks a helper, which a multi-threaded
process must not do). Programs run in a namespace through `nsenter --net=/run/netns/NAME`
(never `ip netns exec`, which remounts /sys and hides bpffs); inside this process a
short-lived thread setns()es into it, so sockets and BPF_PROG_RUN calls are made "from" it.
Every name starts with a caller prefix plus a random token so parallel runs never collide.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

__all__ = ["NETNS_DIR", "NamespaceError", "Topology", "VethPair", "call_in", "unique_prefix"]

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
        """A new namespace `prefix+suffix` (bound at /run/netns/NAME, as `ip netns add`
        binds it) with its loopback up."""
        name = f"{self.prefix}{suffix}"
        if (NETNS_DIR / name).exists():
            raise NamespaceError(f"namespace {name} exists already")

        def create() -> None:
            from pyroute2 import IPRoute, netns

            os.unshare(os.CLONE_NEWNET)  # this thread only: it ends right after
            netns.attach(name, threading.get_native_id())  # bind /proc/TID/ns/net there
            with IPRoute(groups=0) as ipr:
                ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")

        try:
            _in_thread(None, create, f"create namespace {name}")
        except NamespaceError:
            _remove_namespace(name)  # a half-made one (the name was free: checked above)
            raise
        self.namespaces.append(name)
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
        q = {"num_rx_queues": queues, "num_tx_queues": queues} if queues > 1 else {}

        def create(ipr: Any) -> int:
            peer_spec: dict[str, Any] = {"ifname": peer, **q}
            fd = os.open(NETNS_DIR / namespace, os.O_RDONLY) if namespace is not None else -1
            try:
                if fd >= 0:
                    peer_spec["net_ns_fd"] = fd  # the peer is born in its namespace
                ipr.link("add", ifname=host, kind="veth", peer=peer_spec, **q)
            finally:
                if fd >= 0:
                    os.close(fd)
            return _up(ipr, host, quiet)

        host_index = _netlink(None, create, f"add veth {host}/{peer}")
        try:
            peer_index = _netlink(namespace, lambda ipr: _up(ipr, peer, quiet),
                                  f"set up {peer}")
        except BaseException:
            _quietly(None, lambda ipr: _delete_links(ipr, [host]), f"delete {host}")
            raise
        pair = VethPair(host, peer, namespace, host_index, peer_index)
        self.veths.append(pair)
        return pair

    def add_address(self, namespace: str | None, ifname: str, cidr: str) -> None:
        """Add `cidr` (an address with its prefix length, v4 or v6) to `ifname`."""
        try:
            address = ipaddress.ip_interface(cidr)
        except ValueError as error:
            raise NamespaceError(f"address {cidr!r}: {error}") from error

        def add(ipr: Any) -> None:
            ipr.addr("add", index=_index(ipr, ifname), address=str(address.ip),
                     prefixlen=address.network.prefixlen)

        _netlink(namespace, add, f"add {cidr} to {ifname}")

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
        hosts = [pair.host for pair in reversed(self.veths)]
        if hosts:  # a veth end goes with its peer
            _quietly(None, lambda ipr: _delete_links(ipr, hosts), "delete veths")
        self.veths.clear()
        for name in reversed(self.namespaces):
            _remove_namespace(name)
        self.namespaces.clear()


def call_in(namespace: str | None, fn: Callable[[], T], timeout: float = 300.0) -> T:
    """Run `fn` in a thread that setns()ed into `namespace`; sockets it creates stay there."""
    if namespace is None:
        return fn()
    return _thread_in(namespace, fn, timeout)


def _thread_in(namespace: str | None, fn: Callable[[], T], timeout: float) -> T:
    """`fn` in a fresh thread, joined to `namespace` first (None: this thread's own)."""
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            if namespace is not None:
                fd = os.open(NETNS_DIR / namespace, os.O_RDONLY)
                try:
                    os.setns(fd, os.CLONE_NEWNET)
                finally:
                    os.close(fd)
            result.append(fn())
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name=f"netns-{namespace or 'here'}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise NamespaceError(f"call in namespace {namespace} did not finish in {timeout}s")
    if error:
        raise error[0]
    return result[0]


def _in_thread(namespace: str | None, fn: Callable[[], T], what: str,
               timeout: float = _TIMEOUT) -> T:
    """`_thread_in` with netlink and OS errors as one NamespaceError saying what failed."""
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        return _thread_in(namespace, fn, timeout)
    except (NetlinkError, OSError) as error:
        raise NamespaceError(f"{what}: {error}") from error


def _netlink(namespace: str | None, fn: Callable[[Any], T], what: str) -> T:
    """fn(IPRoute) in a fresh thread in `namespace`. Always a thread of its own: pyroute2's
    synchronous IPRoute runs an event loop, which fails inside a running one (`floe demo`)."""

    def job() -> T:
        from pyroute2 import IPRoute

        with IPRoute(groups=0) as ipr:
            return fn(ipr)

    return _in_thread(namespace, job, what)


def _quietly(namespace: str | None, fn: Callable[[Any], None], what: str) -> None:
    """`_netlink` for teardown: a failure is logged (debug), never raised."""
    try:
        _netlink(namespace, fn, what)
    except NamespaceError as error:
        log.debug("%s", error)


def _index(ipr: Any, ifname: str) -> int:
    found = ipr.link_lookup(ifname=ifname)
    if not found:
        raise NamespaceError(f"no interface {ifname!r} in this network namespace")
    return int(found[0])


def _up(ipr: Any, ifname: str, quiet: bool) -> int:
    """Set `ifname` up (IPv6 off first when `quiet`); its ifindex."""
    index = _index(ipr, ifname)
    if quiet:  # /proc/sys/net answers for the calling thread's namespace
        _sysctl(f"net/ipv6/conf/{ifname}/disable_ipv6", "1")
    ipr.link("set", index=index, state="up")
    return index


def _delete_links(ipr: Any, names: Sequence[str]) -> None:
    for name in names:
        found = ipr.link_lookup(ifname=name)
        if found:
            ipr.link("del", index=found[0])


def _remove_namespace(name: str) -> None:
    """Unbind /run/netns/NAME (as `ip netns del`); the kernel frees the namespace once no
    process or socket holds it. Never raises."""
    from pyroute2 import netns

    try:
        netns.remove(name)
    except OSError as error:
        log.debug("remove namespace %s: %s", name, error)


def _sysctl(key: str, value: str) -> None:
    with open(Path("/proc/sys") / key, "w", encoding="ascii") as handle:
        handle.write(value)


def _enter(namespace: str | None) -> list[str]:
    return [] if namespace is None else ["nsenter", f"--net={NETNS_DIR / namespace}", "--"]


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
