"""dataplane/bpf/layout.py must match the BTF of the built object: names, offsets, sizes."""

from __future__ import annotations

import ctypes
import json
import re
import subprocess
from typing import Any

import pytest

from dataplane.bpf.counters import InterfaceCounters
from dataplane.bpf.layout import (
    BPF_DIR,
    COUNTER_STATE_FIELDS,
    ENUMS,
    MAPS,
    STRUCTS,
    XDP_OBJECT,
    NoData,
)


@pytest.fixture(scope="module")
def btf() -> dict[int, dict[str, Any]]:
    out = subprocess.run(["bpftool", "btf", "dump", "file", str(XDP_OBJECT), "-j"],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    return {t["id"]: t for t in json.loads(out)["types"]}


def _size(btf: dict[int, dict[str, Any]], type_id: int) -> int:
    t = btf[type_id]
    if t["kind"] in ("TYPEDEF", "VOLATILE", "CONST", "RESTRICT", "TYPE_TAG"):
        return _size(btf, t["type_id"])
    if t["kind"] == "ARRAY":
        return int(t["nr_elems"]) * _size(btf, t["type_id"])
    return int(t["size"])


def _named(btf: dict[int, dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [t for t in btf.values() if t["kind"] == kind and t.get("name") == name]
    assert found, f"{kind} {name} not in the BTF of {XDP_OBJECT.name}"
    return found[0]


@pytest.mark.parametrize("c_name", sorted(STRUCTS))
def test_struct_matches_btf(btf: dict[int, dict[str, Any]], c_name: str) -> None:
    mirror = STRUCTS[c_name]
    struct = _named(btf, "STRUCT", c_name)
    assert ctypes.sizeof(mirror) == struct["size"], "struct size"
    btf_fields = [(m["name"], m["bits_offset"] // 8, _size(btf, m["type_id"]))
                  for m in struct["members"]]
    py_fields = [(name, getattr(mirror, name).offset, getattr(mirror, name).size)
                 for name, *_ in mirror._fields_]
    assert py_fields == btf_fields


def _header_enums() -> dict[str, dict[str, int]]:
    text = (BPF_DIR / "floe_kern_user.h").read_text()
    enums = {}
    for name, body in re.findall(r"enum (\w+) \{(.*?)\};", text, re.S):
        body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
        enums[name] = {k: int(v) for k, v in re.findall(r"(\w+)\s*=\s*(\d+)", body)}
    return enums


@pytest.mark.parametrize("c_name", sorted(ENUMS))
def test_enum_matches(btf: dict[int, dict[str, Any]], c_name: str) -> None:
    mirror = {f"FLOE_{c_name.removeprefix('floe_').upper()}_{m.name}": m.value
              for m in ENUMS[c_name]}
    assert mirror == _header_enums()[c_name]
    in_btf = [t for t in btf.values() if t["kind"] == "ENUM" and t.get("name") == c_name]
    for enum in in_btf:  # enums used by a map layout are in the BTF: check those too
        assert {v["name"]: v["val"] for v in enum["values"]} == mirror


def test_header_enums_all_mirrored() -> None:
    assert set(_header_enums()) == set(ENUMS)


def test_maps_match_btf(btf: dict[int, dict[str, Any]]) -> None:
    """Each map variable's key/value types are the mirrored structs (or __u32)."""
    datasec = _named(btf, "DATASEC", ".maps")
    names = {btf[v["type_id"]]["name"]: btf[btf[v["type_id"]]["type_id"]]
             for v in datasec["vars"]}
    assert set(names) == set(MAPS)
    for map_name, (key, value, _percpu) in MAPS.items():
        members = {m["name"]: m["type_id"] for m in names[map_name]["members"]}
        for field, mirror in (("key", key), ("value", value)):
            if mirror is NoData:  # the ring buffer: no key, no value
                assert field not in members, (map_name, field)
                continue
            pointee = btf[btf[members[field]]["type_id"]]
            expected = ctypes.sizeof(mirror) if mirror is not None else 4
            assert _size(btf, pointee["id"]) == expected, (map_name, field)
            if mirror is not None:
                assert pointee["name"] == next(k for k, v in STRUCTS.items() if v is mirror)


def test_interface_counters_cover_every_counter() -> None:
    """Every kernel counter is shown, in header order, except the fast-path pairs, which are
    folded into the shown ones (tests/unit/bpf/test_counters_fold.py), and the drop records'
    state at the end, which is no count."""
    fields = [name for name in InterfaceCounters.__dataclass_fields__ if name != "ifindex"]
    kernel = [name for name, *_ in STRUCTS["floe_if_counters"]._fields_]
    assert kernel[-2:] == list(COUNTER_STATE_FIELDS)
    assert fields == [name for name in kernel[:-2] if not name.startswith("fast")]
    assert len(kernel) - len(fields) == 16 + 2


def test_kernel_flows_are_a_subset_of_flow_records() -> None:
    """read_flows() columns can be copied by name into the user-space FlowRecords."""
    from dataplane.bpf.layout import FLOW_DTYPE
    from dataplane.flowtable import FLOW_RECORD_DTYPE

    for name in FLOW_DTYPE.names or ():
        assert name in (FLOW_RECORD_DTYPE.names or ()), name
        assert FLOW_DTYPE[name] == FLOW_RECORD_DTYPE[name], name


def test_rulespec_limits_match_the_header() -> None:
    """app.rulespec (imported by the control plane without the header) keeps the same limits."""
    from app.rulespec import LIMITS, MAX_RULES, PORT_DIRS
    from dataplane.bpf.layout import (
        FLOE_MAX_CIDR_RULES,
        FLOE_MAX_PORT_RULES,
        FLOE_MAX_PROTO_RULES,
        FLOE_MAX_RULES,
        PortDir,
    )

    assert MAX_RULES == FLOE_MAX_RULES
    assert LIMITS == {"floe_src_v4": FLOE_MAX_CIDR_RULES, "floe_dst_v4": FLOE_MAX_CIDR_RULES,
                      "floe_src_v6": FLOE_MAX_CIDR_RULES, "floe_dst_v6": FLOE_MAX_CIDR_RULES,
                      "floe_ports": FLOE_MAX_PORT_RULES, "floe_protos": FLOE_MAX_PROTO_RULES}
    assert PORT_DIRS == {"dst": PortDir.DST, "src": PortDir.SRC}
