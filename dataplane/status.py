"""`floe dataplane --status`: what floe_xdp on an interface is doing, read from its pins.

Like `xdp-filter status`, and it needs no control plane and no running dataplane: attach
mode, config, counters by class and by verdict, malformed frames by reason, and every rule
with its hits. The rule list is decoded from the kernel's own rule maps, so it shows what is
enforced, whatever the control plane believes.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from dataplane.aggregate import PROTO_NAMES
from dataplane.bpf.layout import (
    FLOE_SNAP_DEFAULT,
    Action,
    LpmV4Key,
    LpmV6Key,
    Mode,
    PortDir,
    PortKey,
    ProtoKey,
    RuleVal,
    XskMode,
)
from dataplane.bpf.loader import XdpProgram

__all__ = ["RuleStatus", "format_status", "interface_status", "match_text"]

_CLASSES = ("ipv4", "ipv6", "l3_other", "tcp", "udp", "icmp", "icmpv6", "l4_other")
_VERDICTS = ("passed", "redirected", "dropped_rule", "dropped_default", "dropped_malformed")
_MODES = {Mode.INLINE: "inline", Mode.TAP: "tap", Mode.PASSTHROUGH: "passthrough"}
_XSK = {XskMode.COPY: "copy", XskMode.ZEROCOPY: "zerocopy"}


@dataclass(slots=True)
class RuleStatus:
    id: int
    action: str
    match: list[str]
    packets: int = 0
    bytes: int = 0


def _proto(number: int) -> str:
    return PROTO_NAMES.get(number, str(number))


def match_text(map_name: str, key: bytes) -> str:
    """One rule-map key as the rule syntax reads it (`src 10.0.0.0/8`, `dst port 53/udp`)."""
    if map_name in ("floe_src_v4", "floe_dst_v4"):
        k4 = LpmV4Key.from_buffer_copy(key)
        net = ipaddress.ip_network((bytes(k4.addr), k4.prefixlen))
        return f"{map_name[5:8]} {net}"
    if map_name in ("floe_src_v6", "floe_dst_v6"):
        k6 = LpmV6Key.from_buffer_copy(key)
        net6 = ipaddress.ip_network((bytes(k6.addr), k6.prefixlen))
        return f"{map_name[5:8]} {net6}"
    if map_name == "floe_ports":
        kp = PortKey.from_buffer_copy(key)
        side = "dst" if kp.dir == PortDir.DST else "src"
        return f"{side} port {kp.port}/{_proto(kp.proto)}"
    return f"proto {_proto(ProtoKey.from_buffer_copy(key).proto)}"


def _rules(program: XdpProgram) -> list[RuleStatus]:
    by_id: dict[int, RuleStatus] = {}
    for map_name, entries in program.rules.entries().items():
        for key, raw in entries.items():
            value = RuleVal.from_buffer_copy(raw)
            action = "deny" if value.action == Action.DENY else "allow"
            rule = by_id.setdefault(value.rule_id, RuleStatus(value.rule_id, action, []))
            rule.match.append(match_text(map_name, key))
    for rule_id, hits in program.rule_hits().items():
        if rule_id in by_id:
            by_id[rule_id].packets, by_id[rule_id].bytes = hits.packets, hits.bytes
    for rule in by_id.values():
        rule.match.sort()
    return [by_id[i] for i in sorted(by_id)]


def interface_status(ifname: str) -> dict[str, Any]:
    """Everything --status shows, as plain data (the --json form)."""
    with XdpProgram.open(ifname) as program:
        config = program.config()
        users = program.users()
        runs_here = program.prog_id != 0 and (users is None or program.prog_id in users)
        counters = program.counters()
        rules = _rules(program)
        ring = program.ring_state()
        return {
            "interface": ifname,
            "ifindex": program.ifindex,  # 0: no interface of this name here (any more)
            # native/generic when the program on the interface runs with these pins
            "attached": program.attach_mode if runs_here else None,
            "prog_id": program.prog_id if runs_here else 0,
            "programs": sorted(users) if users is not None else None,  # all that use the pins
            "pins": str(program.pin_dir),
            "mode": _MODES.get(config.mode, str(config.mode)),
            # how a running tap dataplane's AF_XDP sockets are bound (it sets this when it
            # opens them and clears it when it stops; a killed one leaves its last word)
            "afxdp": _XSK.get(config.xsk_mode),
            "ring": {"bytes": program.ring_bytes(),
                     "snaplen": config.snaplen or FLOE_SNAP_DEFAULT,
                     "drop_sample_n": config.drop_sample_n,
                     "drop_rate_cap": config.drop_rate_cap,
                     # frames sampled out that the next record of their kind will carry
                     "riding": ring["pass_weight"] + ring["drop_weight"]},
            "default_action": "deny" if config.default_action == Action.DENY else "allow",
            "malformed_action": "deny" if config.malformed_action == Action.DENY else "allow",
            "sample_n": max(1, config.sample_n),
            "track_flows": bool(config.track_flows),
            "counters": {k: v for k, v in counters.as_dict().items() if k != "ifindex"},
            "dropped": counters.dropped,
            "malformed_by_reason": {k: v for k, v in counters.malformed_by_reason.items() if v},
            "rules": [{"id": r.id, "action": r.action, "match": r.match, "packets": r.packets,
                       "bytes": r.bytes} for r in rules],
        }


def _mode_detail(status: dict[str, Any]) -> str:
    afxdp = status["afxdp"]
    if status["mode"] == "tap":
        sockets = (f"AF_XDP sockets in {'zero-copy' if afxdp == 'zerocopy' else 'copy'} mode"
                   if afxdp else "no AF_XDP sockets (no dataplane running)")
        return f"redirect 1 in {status['sample_n']} to AF_XDP, {sockets}"
    if status["mode"] == "passthrough":
        return (f"what the rules allow passes to the host, 1 in {status['sample_n']} "
                "recorded in the ring buffer")
    return f"kernel flow map {'on' if status['track_flows'] else 'off'}"


def format_status(status: dict[str, Any]) -> str:
    """The human form: a header, counters by class and verdict, then the rule table."""
    c = status["counters"]
    attached = status["attached"] or (
        "not attached: pins only" if not status["programs"]
        else f"not attached here; programs {status['programs']} run with these pins")
    lines = [
        f"floe_xdp on {status['interface']} (ifindex {status['ifindex']}): {attached}, "
        f"prog id {status['prog_id'] or '-'}, pins {status['pins']}",
        f"mode {status['mode']}, default {status['default_action']}, malformed "
        f"{status['malformed_action']}, " + _mode_detail(status),
        f"packets {c['packets']:,}  bytes {c['bytes']:,}",
        "  " + "  ".join(f"{name} {c[name + '_packets']:,}" for name in _CLASSES),
        f"  vlan {c['vlan_packets']:,}  fragments {c['fragments']:,}",
        "  " + "  ".join(f"{name} {c[name]:,}" for name in _VERDICTS)
        + f"  (dropped bytes {c['dropped_bytes']:,})",
    ]
    ring = status["ring"]
    lines.append(
        f"  ring buffer {ring['bytes'] >> 10:,} KiB, snap {ring['snaplen']}: passed "
        f"{c['ring_passed']:,}  dropped {c['ring_dropped']:,}  full (lost) {c['ring_full']:,}"
        f"  riding on the next record {ring['riding']:,}; dropped "
        + (f"packets recorded 1 in {ring['drop_sample_n']}"
           + (f", at most {ring['drop_rate_cap']:,}/s per CPU" if ring["drop_rate_cap"] else "")
           if ring["drop_sample_n"] else "packets not recorded"))
    if c["sampled_out"] or c["redirect_no_socket"]:
        lines.append(f"  sampled out {c['sampled_out']:,}  no AF_XDP socket "
                     f"{c['redirect_no_socket']:,}")
    if status["malformed_by_reason"]:
        reasons = ", ".join(f"{k} {v:,}" for k, v in status["malformed_by_reason"].items())
        lines.append(f"malformed {c['malformed']:,}: {reasons}")
    rules = status["rules"]
    lines.append(f"rules {len(rules)}")
    if rules:
        rows = [(str(r["id"]), r["action"], ", ".join(r["match"]), f"{r['packets']:,}",
                 f"{r['bytes']:,}") for r in rules]
        head = ("id", "action", "match", "packets", "bytes")
        widths = [max(len(row[i]) for row in [head, *rows]) for i in range(5)]
        for row in [head, *rows]:
            lines.append("  " + "  ".join(
                cell.rjust(w) if i in (0, 3, 4) else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip())
    return "\n".join(lines)
