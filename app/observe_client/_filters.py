"""The filter flags of `floe observe` and `--not`, as hubble has them, into `FlowFilter`s.

Flags are read in command-line order: `--not` sends the one filter flag after it to the
deny side. As in hubble, every allowed criterion goes into one allow `FlowFilter` and every
negated one into one deny `FlowFilter`, so criteria of different flags combine with AND and
repeated values of one flag with OR:

    --ip-src 10.0.0.1 --port 80 --port 443   from 10.0.0.1 AND port (80 OR 443)
    --not --port 53 --not --port 22          everything but port 53 or 22
    --not --ip-src A --not --ip-dst B        everything but flows from A to B

Values a type can check (addresses, ports, VLANs, enum names) are checked here and refused
as usage errors naming the flag; protocol names, TCP flag names, node and interface names
go to the server as given, which answers INVALID_ARGUMENT naming the field.
"""

from __future__ import annotations

import argparse
import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from app.observe_client._enums import parse_enum
from floe.observer.v1 import observer_pb2 as pb

__all__ = ["FILTER_FLAGS", "Criterion", "FilterFlag", "add_filter_flags", "flow_filters"]


@dataclass(slots=True, frozen=True)
class Criterion:
    """One filter flag as given: the `FlowFilter` field, its value, and whether `--not`
    came before it."""

    field: str
    value: Any
    negated: bool


def _address(text: str) -> str:
    try:
        ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address or CIDR") from None
    return text.strip()


def _number(high: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise ValueError(f"{text!r} is not a {what} (0-{high})") from None
        if not 0 <= value <= high:
            raise ValueError(f"{value} is not a {what} (0-{high})")
        return value

    return parse


def _text(text: str) -> str:
    if not text.strip():
        raise ValueError("an empty value")
    return text.strip()


def _enum(enum: Any) -> Callable[[str], int]:
    return lambda text: parse_enum(enum, text)


@dataclass(slots=True, frozen=True)
class FilterFlag:
    """A command-line filter: the `FlowFilter` field it fills and how its value is read.
    `const` is the value of a flag that takes none (`--ipv4`)."""

    flags: tuple[str, ...]
    field: str
    parse: Callable[[str], Any] | None
    help: str
    metavar: str = ""
    const: Any = None


FILTER_FLAGS: tuple[FilterFlag, ...] = (
    FilterFlag(("--ip",), "ip", _address, "either end's address or CIDR", "ADDR"),
    FilterFlag(("--ip-src", "--from-ip"), "source_ip", _address, "source address or CIDR",
               "ADDR"),
    FilterFlag(("--ip-dst", "--to-ip"), "destination_ip", _address,
               "destination address or CIDR", "ADDR"),
    FilterFlag(("--port",), "port", _number(65535, "port"), "either end's port", "PORT"),
    FilterFlag(("--port-src", "--from-port"), "source_port", _number(65535, "port"),
               "source port", "PORT"),
    FilterFlag(("--port-dst", "--to-port"), "destination_port", _number(65535, "port"),
               "destination port", "PORT"),
    FilterFlag(("--protocol",), "protocol", _text,
               "tcp, udp, icmp, icmpv6, sctp, gre, esp, or a number", "PROTO"),
    FilterFlag(("--ipv4",), "ip_version", None, "IPv4 flows", const=pb.IP_VERSION_IPV4),
    FilterFlag(("--ipv6",), "ip_version", None, "IPv6 flows", const=pb.IP_VERSION_IPV6),
    FilterFlag(("--node", "--node-name"), "node", _text, "node id of the dataplane", "NODE"),
    FilterFlag(("--interface",), "interface", _text, "interface name", "IFACE"),
    FilterFlag(("--vlan",), "vlan", _number(4095, "VLAN id"), "VLAN id (0: untagged)", "ID"),
    FilterFlag(("--tcp-flags",), "tcp_flags", _text,
               "TCP flags that were all seen, e.g. SYN or SYN,ACK", "FLAGS"),
    FilterFlag(("--state",), "state", _enum(pb.FlowState),
               "flow state: new, established, closing, closed", "STATE"),
    FilterFlag(("--end-reason",), "end_reason", _enum(pb.EndReason),
               "none, idle-timeout, active-timeout, tcp-fin, tcp-rst, evicted, shutdown",
               "REASON"),
    FilterFlag(("--verdict",), "verdict", _enum(pb.Verdict), "forwarded, dropped, unknown",
               "VERDICT"),
    FilterFlag(("-t", "--type"), "event_kind", _enum(pb.EventKind),
               "event kind: new, update, end", "KIND"),
)

_NEGATE = "negate_next"  # the Namespace attribute `--not` sets


class _FilterAction(argparse.Action):
    """Append one `Criterion`, negated when `--not` came just before."""

    def __init__(self, option_strings: Sequence[str], dest: str, *, spec: FilterFlag,
                 **kwargs: Any) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.spec = spec

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        spec = self.spec
        if spec.parse is None:
            value = spec.const
        else:
            try:
                value = spec.parse(str(values))
            except ValueError as error:
                parser.error(f"{option_string}: {error}")
        negated = bool(getattr(namespace, _NEGATE, False))
        setattr(namespace, _NEGATE, False)
        items = list(getattr(namespace, self.dest, None) or [])
        items.append(Criterion(spec.field, value, negated))
        setattr(namespace, self.dest, items)


class _NotAction(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        if getattr(namespace, _NEGATE, False):
            parser.error("--not: two in a row (each --not negates the one filter after it)")
        setattr(namespace, _NEGATE, True)


def add_filter_flags(parser: argparse.ArgumentParser) -> None:
    """The filter flags, `--not`, into `parser`; the result is `args.criteria`."""
    group = parser.add_argument_group(
        "filters", "repeat a flag for OR; different flags combine with AND")
    group.add_argument("--not", dest=_NEGATE, nargs=0, action=_NotAction, default=False,
                       help="the next filter excludes instead of selects (e.g. --not --port 53)")
    for spec in FILTER_FLAGS:
        if spec.parse is None:
            group.add_argument(*spec.flags, dest="criteria", nargs=0, action=_FilterAction,
                               spec=spec, help=spec.help)
        else:
            group.add_argument(*spec.flags, dest="criteria", action=_FilterAction, spec=spec,
                               metavar=spec.metavar, help=spec.help)
    parser.set_defaults(criteria=[])


def flow_filters(criteria: Sequence[Criterion]) -> tuple[list[Any], list[Any]]:
    """(allow, deny): at most one `FlowFilter` each, as hubble builds them."""
    allow, deny = pb.FlowFilter(), pb.FlowFilter()
    for item in criteria:
        getattr(deny if item.negated else allow, item.field).append(item.value)
    empty = pb.FlowFilter()
    return ([allow] if allow != empty else []), ([deny] if deny != empty else [])
