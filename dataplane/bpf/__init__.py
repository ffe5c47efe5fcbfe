"""Kernel side of the dataplane: the floe_xdp program's loader, map layouts and rules.

Everything raised from here is a `BpfError` (see errors.py).
"""

from __future__ import annotations

from dataplane.bpf.counters import InterfaceCounters
from dataplane.bpf.errors import (
    AttachError,
    BpfError,
    BpfPermissionError,
    BpfUnavailableError,
    InterfaceNotFoundError,
    MapError,
    ObjectFileError,
    PinError,
    ProgramLoadError,
    RuleError,
    TestRunError,
)
from dataplane.bpf.layout import FLOW_DTYPE
from dataplane.bpf.loader import PIN_ROOT, RuleTable, XdpProgram, ensure_bpffs
from dataplane.bpf.rules import Rule, RuleHitCount, RuleSet

__all__ = [
    "FLOW_DTYPE",
    "PIN_ROOT",
    "AttachError",
    "BpfError",
    "BpfPermissionError",
    "BpfUnavailableError",
    "InterfaceCounters",
    "InterfaceNotFoundError",
    "MapError",
    "ObjectFileError",
    "PinError",
    "ProgramLoadError",
    "Rule",
    "RuleError",
    "RuleHitCount",
    "RuleSet",
    "RuleTable",
    "TestRunError",
    "XdpProgram",
    "ensure_bpffs",
]
