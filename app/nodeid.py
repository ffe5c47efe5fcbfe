"""What a node id may be: it names a dataplane in Hello, in grants (`node/<id>`, the grant's
128-character resource_id) and in hub topics. Shared by the control plane and the dataplane,
so a bad FLOE_NODE_ID is a configuration error at start, not a refused stream later."""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping
from functools import lru_cache

__all__ = ["MAX_NODE_ID", "default_node_id", "node_matches", "valid_node_id"]

MAX_NODE_ID = 128


def default_node_id(env: Mapping[str, str]) -> str:
    """This host's node id when none is given: FLOE_NODE_ID, else the host name. The local
    dataplane key is bound to it, so both processes must agree (they share this function)."""
    return env.get("FLOE_NODE_ID") or socket.gethostname()


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
