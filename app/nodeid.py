"""What a node id may be: it names a dataplane in Hello, in grants (`node/<id>`, the grant's
128-character resource_id) and in hub topics. Shared by the control plane and the dataplane,
so a bad FLOE_NODE_ID is a configuration error at start, not a refused stream later."""

from __future__ import annotations

import re
import secrets
import socket
from collections.abc import Mapping
from functools import lru_cache

__all__ = [
    "MAX_NODE_ID", "binding_within", "default_node_id", "demo_node_id", "local_key_pattern",
    "node_matches", "valid_binding", "valid_node_id",
]

MAX_NODE_ID = 128
_DEMO = "-demo-"


def default_node_id(env: Mapping[str, str]) -> str:
    """This host's node id when none is given: FLOE_NODE_ID, else the host name."""
    return env.get("FLOE_NODE_ID") or socket.gethostname()


def demo_node_id(env: Mapping[str, str]) -> str:
    """A node id of its own for one `floe demo` run, `<default node id>-demo-<6 hex>`: a demo
    beside a running dataplane (or a second demo) is another node, never the same one. An id
    too long to extend stays the default (and a second one is refused, not merged)."""
    base = default_node_id(env)
    suffix = f"{_DEMO}{secrets.token_hex(3)}"
    return base + suffix if len(base) + len(suffix) <= MAX_NODE_ID else base


def local_key_pattern(env: Mapping[str, str]) -> str:
    """The binding of the local dataplane key (`$FLOE_DATA_DIR/dataplane.key`): this host's
    default node id and the demo ids made from it, `<id>,<id>-demo-*` — not every id that
    starts with the host name. The control plane mints the key and the dataplane and demo
    pick their ids, so all of them derive from these functions."""
    base = default_node_id(env)
    binding = f"{base},{base}{_DEMO}*"
    return binding if len(binding) <= MAX_NODE_ID else base


_RESERVED = frozenset(",*")  # binding syntax: a list of patterns; never in a node id


def valid_node_id(node_id: str) -> bool:
    """Printable, 1-128 characters, without `,` or `*` (they make a key's binding)."""
    return (0 < len(node_id) <= MAX_NODE_ID and node_id.isprintable()
            and not _RESERVED.intersection(node_id))


def valid_binding(binding: str) -> bool:
    """A key's node binding: 1-128 printable characters, patterns separated by `,`, none
    empty."""
    return (0 < len(binding) <= MAX_NODE_ID and binding.isprintable()
            and all(binding.split(",")))


@lru_cache(maxsize=1024)
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def node_matches(binding: str, node_id: str) -> bool:
    """Whether a key bound to `binding` may speak for `node_id`: the binding lists patterns
    separated by `,`; in a pattern `*` stands for any run of characters (`edge-*`, or `*` for
    every node) and nothing else is special, so a plain node id matches only itself."""
    return any(_pattern(p).fullmatch(node_id) is not None for p in binding.split(","))


def binding_within(outer: str, inner: str) -> bool:
    """Whether every node `inner` may claim, `outer` may claim too: each of its patterns is one
    of outer's, or a plain node id that outer matches (used so a bound key cannot mint or
    reach a key bound more widely than itself)."""
    mine = outer.split(",")
    if "*" in mine:  # every node
        return True
    return all(p in mine or ("*" not in p and node_matches(outer, p))
               for p in inner.split(","))
