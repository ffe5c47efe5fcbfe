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
    "MAX_NODE_ID", "default_node_id", "demo_node_id", "local_key_pattern", "node_matches",
    "valid_node_id",
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
    """The node pattern the local dataplane key (`$FLOE_DATA_DIR/dataplane.key`) is bound
    to: this host's default node id and the demo ids made from it, `<default node id>*`.
    The control plane mints the key and the dataplane and demo pick their ids, so all of
    them derive from these functions."""
    base = default_node_id(env)
    return base + "*" if len(base) < MAX_NODE_ID else base


def valid_node_id(node_id: str) -> bool:
    """Printable, 1-128 characters."""
    return 0 < len(node_id) <= MAX_NODE_ID and node_id.isprintable()


@lru_cache(maxsize=1024)
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def node_matches(pattern: str, node_id: str) -> bool:
    """Whether a key bound to `pattern` may speak for `node_id`: the pattern is a node id in
    which `*` stands for any run of characters (`edge-*`, or `*` for every node); nothing
    else is special, so a plain node id matches only itself."""
    return _pattern(pattern).fullmatch(node_id) is not None
