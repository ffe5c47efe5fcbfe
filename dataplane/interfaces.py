"""Facts about one network interface, read over netlink (pyroute2) in the caller's namespace.

Every mode asks here before it opens anything, so a missing interface is one error with one
wording in tap, inline, afpacket and pass-through alike. Netlink and the ethtool ioctl answer
for the calling thread's own network namespace; `/sys/class/net` shows the namespace sysfs
was mounted in, which is wrong for a dataplane (or a test) that entered another one.

`host_traffic()` says why the host's own traffic crosses an interface (its addresses, a
default route, or those of the bridge/bond it is a port of): tap mode takes every frame away
from the host's stack, so it refuses such an interface unless told it is a mirror port.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = [
    "HostInterfaceError", "InterfaceError", "InterfaceFacts", "NoSuchInterfaceError",
    "host_traffic", "interface_facts", "netns_inode", "tap_refusal",
]

_MAIN_TABLE = 254
_SCOPE_LINK = 253  # fe80::/10, 169.254/16: any interface may have them; not the host's traffic
_SIOCETHTOOL = 0x8946
_ETHTOOL_GDRVINFO = 0x3
_DRVINFO_SIZE = 196  # struct ethtool_drvinfo
_MAX_MASTERS = 8  # bond in a bridge in ...: the kernel forbids loops, this bounds the walk
_TIMEOUT = 10.0
T = TypeVar("T")


class InterfaceError(Exception):
    """The interface cannot be used as asked (missing, or it carries the host's traffic)."""


class NoSuchInterfaceError(InterfaceError, LookupError):
    """No interface of that name in this network namespace."""


class HostInterfaceError(InterfaceError):
    """tap mode on an interface that carries the host's own traffic (see `tap_refusal`)."""


@dataclass(slots=True, frozen=True)
class InterfaceFacts:
    """One interface as the kernel describes it, in the namespace it was read in."""

    name: str
    ifindex: int
    netns: int  # inode of the network namespace (`ls -l /proc/PID/ns/net`, `lsns -t net`)
    kind: str  # IFLA_INFO_KIND ("veth", "bridge", "bond", ...); "" for a physical device
    driver: str  # ethtool's driver name ("veth", "virtio_net", "ixgbe"); "" when none says
    rx_queues: int  # RX queues in use: one AF_XDP socket each (ethtool channels, else netlink)
    operstate: str  # "UP", "DOWN", "UNKNOWN", ...
    mtu: int
    addresses: tuple[str, ...]  # the host's addresses on it (CIDR), link-local ones left out
    default_routes: tuple[str, ...]  # main-table default routes leaving through it ("via …")
    master: InterfaceFacts | None = None  # the bridge or bond it is a port of


def netns_inode() -> int:
    """The calling thread's network namespace, as an inode number (unique while it lives)."""
    return os.stat("/proc/thread-self/ns/net").st_ino


def _missing(name: str) -> NoSuchInterfaceError:
    return NoSuchInterfaceError(f"no interface {name!r} in this network namespace")


def _in_thread(fn: Callable[[], T]) -> T:
    """Run `fn` in a short-lived thread of this thread's namespace: pyroute2's synchronous
    IPRoute runs its own event loop, which fails inside a running one (the dataplane's)."""
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(fn())
        except BaseException as exc:  # re-raised in the caller
            error.append(exc)

    thread = threading.Thread(target=target, name="netlink", daemon=True)
    thread.start()
    thread.join(_TIMEOUT)
    if thread.is_alive():
        raise InterfaceError(f"netlink did not answer within {_TIMEOUT:.0f} s")
    if error:
        raise error[0]
    return result[0]


def interface_facts(name: str) -> InterfaceFacts:
    """Facts about `name` in the calling thread's network namespace.

    Raises NoSuchInterfaceError (the same words in every mode) when there is none."""
    if not name or len(name) > 15 or "/" in name or name.strip() != name:
        raise _missing(name)
    return _in_thread(lambda: _read(name))


def _read(name: str) -> InterfaceFacts:
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    netns = netns_inode()
    with IPRoute(groups=0, strict_check=True) as ipr:
        try:
            return _facts(ipr, ipr.link("get", ifname=name)[0], netns, 0)
        except NetlinkError as error:
            if error.code in (errno.ENODEV, errno.ENOENT):
                raise _missing(name) from None
            raise InterfaceError(f"interface {name!r}: netlink: {error}") from error


def _facts(ipr: Any, link: Any, netns: int, depth: int) -> InterfaceFacts:
    name = str(link.get("ifname"))
    index = int(link["index"])
    master = None
    master_index = link.get("master")
    if master_index and depth < _MAX_MASTERS:
        found = ipr.link("get", index=master_index)
        if found:
            master = _facts(ipr, found[0], netns, depth + 1)
    return InterfaceFacts(
        name=name, ifindex=index, netns=netns, kind=str(link.get(("linkinfo", "kind")) or ""),
        driver=_driver(name), rx_queues=_rx_queues(name, link),
        operstate=str(link.get("operstate") or ""), mtu=int(link.get("mtu") or 0),
        addresses=_addresses(ipr, index), default_routes=_default_routes(ipr, index),
        master=master,
    )


def _addresses(ipr: Any, index: int) -> tuple[str, ...]:
    out = []
    for msg in ipr.addr("dump", index=index):
        if msg["scope"] == _SCOPE_LINK:  # scope host (lo's 127.0.0.1) counts
            continue
        address = msg.get("local") or msg.get("address")
        if address:
            out.append(f"{address}/{msg['prefixlen']}")
    return tuple(out)


def _default_routes(ipr: Any, index: int) -> tuple[str, ...]:
    """Main-table default routes through `index` (the kernel filters the dump by device, so
    a router's full table on another interface is never read)."""
    out = []
    for family in (socket.AF_INET, socket.AF_INET6):
        for msg in ipr.route("dump", family=family, table=_MAIN_TABLE, oif=index):
            if msg["dst_len"] == 0 and msg.get("table") == _MAIN_TABLE:
                gateway = msg.get("gateway")
                out.append(f"default via {gateway}" if gateway else "default")
    return tuple(out)


def _rx_queues(name: str, link: Any) -> int:
    """The RX queues in use: ethtool's channels (rx + combined, as `ethtool -l` shows them);
    devices without channels (lo, dummy, ifb) use every queue netlink counts. Netlink's own
    count is the allocated maximum: a default veth has 2 there and 1 in use."""
    from pyroute2.ethtool.ioctl import IoctlEthtool, NotSupportedError

    ethtool = IoctlEthtool(name)
    try:
        channels = ethtool.get_channels()
        used = int(channels["rx_count"]) + int(channels["combined_count"])
    except (NotSupportedError, OSError):
        used = 0
    finally:
        ethtool.close()
    return used or max(1, int(link.get("num_rx_queues") or 1))


def _driver(name: str) -> str:
    """ethtool's driver name (ETHTOOL_GDRVINFO), "" when the device does not say."""
    info = ctypes.create_string_buffer(_DRVINFO_SIZE)
    struct.pack_into("I", info, 0, _ETHTOOL_GDRVINFO)
    request = struct.pack("16sP", name.encode(), ctypes.addressof(info)).ljust(40, b"\0")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            fcntl.ioctl(sock, _SIOCETHTOOL, request)
    except OSError:
        return ""
    return info.raw[4:36].split(b"\0", 1)[0].decode(errors="replace")


def host_traffic(facts: InterfaceFacts) -> str:
    """Why the host's own traffic crosses this interface, "" when nothing says it does: its
    addresses, its default routes, or those of the bridge or bond it is a port of."""
    reasons = []
    if facts.addresses:
        shown = ", ".join(facts.addresses[:3]) + (", …" if len(facts.addresses) > 3 else "")
        reasons.append(f"address{'es' if len(facts.addresses) > 1 else ''} {shown}")
    if facts.default_routes:
        reasons.append(facts.default_routes[0].replace("default", "the default route", 1))
    if not reasons and facts.master is not None:
        upper = host_traffic(facts.master)
        if upper:
            return f"it is a port of {facts.master.name}, which has {upper}"
    return " and ".join(reasons)


def tap_refusal(facts: InterfaceFacts) -> str:
    """The one-line refusal of tap mode on an interface carrying the host's traffic, or ""."""
    why = host_traffic(facts)
    if not why:
        return ""
    if not why.startswith("it is"):
        why = f"it has {why}"
    return (f"tap mode takes every packet on {facts.name} away from this host's network "
            f"stack, and {facts.name} carries the host's own traffic ({why}); watch it with "
            f"--mode passthrough, or add --mirror if {facts.name} is a mirror/SPAN port")
