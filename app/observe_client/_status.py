"""`floe observe --server-status` (ServerStatus) and `--nodes` (GetNodes), in every format.

Human formats print aligned text; `-o json` one object per line with the proto field names
(times as RFC 3339 UTC); `-o jsonpb` the protobuf JSON mapping; `-o csv` a header line.
Text goes through `printable` (names come from dataplanes; see `_formats`).
"""

from __future__ import annotations

import csv
import json
from typing import Any, TextIO

from google.protobuf import json_format

from app.observe_client._formats import local_time, printable, rfc3339

__all__ = ["NODE_COLUMNS", "print_nodes", "print_server_status"]

NODE_COLUMNS = ("node_id", "connected", "version", "peer", "connected_since", "last_seen",
                "rules_generation_applied", "rules_error", "interfaces", "loss")


def _ns(stamp: Any) -> int:
    return int(stamp.seconds) * 1_000_000_000 + int(stamp.nanos)


def print_server_status(status: Any, output: str, out: TextIO) -> None:
    if output == "jsonpb":
        out.write(json_format.MessageToJson(status, indent=None) + "\n")
        return
    values = json_format.MessageToDict(status, preserving_proto_field_name=True,
                                       always_print_fields_with_no_presence=True)
    for name in ("num_flows_seen", "ring_capacity", "ring_fill", "oldest_cursor",
                 "newest_cursor", "consumer_events_lost"):
        values[name] = int(values[name])  # JSON mapping writes 64-bit integers as strings
    if output == "json":
        out.write(json.dumps(values, separators=(",", ":")) + "\n")
    elif output == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(values.keys())
        writer.writerow(printable(v) if isinstance(v, str) else v for v in values.values())
    else:
        fill = status.ring_fill / status.ring_capacity * 100 if status.ring_capacity else 0.0
        lines = [
            f"Version:            {status.version}",
            f"Uptime:             {status.uptime_seconds:.0f} s",
            f"Nodes:              {status.nodes_connected}/{status.nodes_known} connected",
            f"Flows seen:         {status.num_flows_seen}",
            f"Ring:               {status.ring_fill}/{status.ring_capacity} events "
            f"({fill:.1f}% full)",
            f"Cursors:            {status.oldest_cursor} … {status.newest_cursor}",
            f"Consumers:          {status.consumers} (events lost to slow consumers: "
            f"{status.consumer_events_lost})",
        ]
        out.write("\n".join(printable(line) for line in lines) + "\n")
    out.flush()


def _node_values(node: Any) -> dict[str, Any]:
    return {
        "node_id": node.node_id,
        "connected": node.connected,
        "version": node.version,
        "peer": node.peer,
        "connected_since": rfc3339(_ns(node.connected_since))
        if node.HasField("connected_since") else None,
        "last_seen": rfc3339(_ns(node.last_seen)) if node.HasField("last_seen") else None,
        "rules_generation_applied": node.rules_generation_applied,
        "rules_error": node.rules_error,
        "interfaces": [{"name": i.name, "mode": i.mode, "attach_mode": i.attach_mode}
                       for i in node.interfaces],
        "loss": dict(sorted(node.loss.items())),
    }


def print_nodes(response: Any, output: str, out: TextIO) -> None:
    if output == "jsonpb":
        for node in response.nodes:
            out.write(json_format.MessageToJson(node, indent=None) + "\n")
    elif output == "json":
        for node in response.nodes:
            out.write(json.dumps(_node_values(node), separators=(",", ":")) + "\n")
    elif output == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(NODE_COLUMNS)
        for node in response.nodes:
            values = _node_values(node)
            values["interfaces"] = " ".join(f"{i['name']}:{i['mode']}"
                                            for i in values["interfaces"])
            values["loss"] = " ".join(f"{k}={v}" for k, v in values["loss"].items())
            writer.writerow(["" if values[c] is None else
                             printable(values[c]) if isinstance(values[c], str) else values[c]
                             for c in NODE_COLUMNS])
    else:
        widths = (16, 10, 10, 22, 20)
        header = ("NODE", "STATE", "VERSION", "PEER", "LAST SEEN", "INTERFACES")
        out.write(_row(header, widths))
        for node in response.nodes:
            seen = local_time(_ns(node.last_seen)) if node.HasField("last_seen") else "-"
            interfaces = ", ".join(f"{i.name} ({i.mode}"
                                   + (f", {i.attach_mode})" if i.attach_mode else ")")
                                   for i in node.interfaces) or "-"
            out.write(_row((node.node_id, "connected" if node.connected else "down",
                            node.version or "-", node.peer or "-", seen, interfaces), widths))
    out.flush()


def _row(cells: tuple[str, ...], widths: tuple[int, ...]) -> str:
    shown = [printable(cell) for cell in cells]
    padded = [cell.ljust(width) for cell, width in zip(shown, widths, strict=False)]
    return " ".join([*padded, *shown[len(widths):]]).rstrip() + "\n"
