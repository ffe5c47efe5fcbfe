"""Proto enum values by their short names, both ways ("established" <-> FLOW_STATE_ESTABLISHED).

The command line takes short names and the human and json formats print them, so one place
decides what a short name is: the value's name without the prefix all its enum's names share.
"""

from __future__ import annotations

from typing import Any

__all__ = ["enum_prefix", "parse_enum", "short_name"]


def enum_prefix(enum: Any) -> str:
    """The `NAME_` prefix shared by an enum's value names ("FLOW_STATE_")."""
    names: list[str] = list(enum.keys())
    shared = names[0]
    for name in names[1:]:
        while not name.startswith(shared):
            shared = shared[:-1]
    return shared[:shared.rfind("_") + 1]


def short_name(enum: Any, value: int) -> str:
    """`FLOW_STATE_ESTABLISHED` -> "established"; a number the enum does not know (a newer
    server) -> its digits."""
    try:
        name: str = enum.Name(value)
    except ValueError:
        return str(value)
    return name[len(enum_prefix(enum)):].lower()


def parse_enum(enum: Any, text: str) -> int:
    """A value by its name, case-insensitive, with or without the prefix, `-` for `_`
    ("tcp-fin", "END_REASON_TCP_FIN"); *_UNSPECIFIED is refused (ValueError)."""
    prefix = enum_prefix(enum)
    names = {name: int(value) for name, value in enum.items()
             if not name.endswith("_UNSPECIFIED")}
    wanted = text.strip().upper().replace("-", "_")
    for name, value in names.items():
        if wanted in (name, name[len(prefix):]):
            return value
    choices = ", ".join(name[len(prefix):].lower().replace("_", "-") for name in names)
    raise ValueError(f"{text!r} is not one of {choices}")
