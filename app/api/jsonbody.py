"""Request bodies read as JSON: strict UTF-8, bounded nesting, 400 in the envelope otherwise.

Quart decodes a body with `bytes.decode()` (invalid UTF-8 → UnicodeDecodeError → 500) and
parses it with the stdlib (deep nesting → RecursionError, a 500 with a 131 KB traceback,
reached even from the public /auth/login). `JsonRequest.get_json` — what quart-schema's
`validate_request` and every route call — parses with orjson instead: invalid UTF-8, a
syntax error, NaN/Infinity or nesting past orjson's own 1024 levels are refused inside its C
parser, and nesting past MAX_JSON_DEPTH is refused before any Python code walks the value.
"""

from __future__ import annotations

from typing import Any

import orjson
from quart import Request

from app.api.envelope import ApiError

__all__ = ["MAX_JSON_DEPTH", "JsonRequest", "json_depth_exceeds", "parse_json"]

# Containers inside containers: `{"a": [1]}` is depth 2. No Floe body needs more than ~4.
MAX_JSON_DEPTH = 32

_CONTAINERS = (dict, list)


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """True when containers nest deeper than `limit` (iterative: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        for child in node.values() if type(node) is dict else node:
            if type(child) in _CONTAINERS:
                stack.append((child, depth + 1))
    return False


def parse_json(data: bytes) -> Any:
    """The JSON value of a request body, or ApiError 400 (`invalid_json`/`invalid_encoding`)."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, "invalid_encoding", "The body is not valid UTF-8") from None
        if "depth" in error.msg:
            raise _too_deep() from None
        raise ApiError(
            400, "invalid_json", "The body is not valid JSON", {"position": error.pos}
        ) from None
    # A value can only be deeper than the limit if it has more brackets than that; counting
    # them is C-speed, so ordinary small bodies skip the walk.
    if type(value) in _CONTAINERS and data.count(b"[") + data.count(b"{") > MAX_JSON_DEPTH:
        if json_depth_exceeds(value, MAX_JSON_DEPTH):
            raise _too_deep()
    return value


def _too_deep() -> ApiError:
    return ApiError(
        400,
        "invalid_json",
        f"JSON nested deeper than {MAX_JSON_DEPTH} levels",
        {"max_depth": MAX_JSON_DEPTH},
    )


class JsonRequest(Request):
    """Quart's Request whose JSON body goes through `parse_json`."""

    async def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        if cache and self._cached_json[silent] is not Ellipsis:
            return self._cached_json[silent]
        if not (force or self.is_json):
            return None
        data: bytes = await self.get_data(cache=cache, as_text=False, parse_form_data=False)
        try:
            result = parse_json(data)
        except ApiError:
            if not silent:
                raise
            result = None
        if cache:
            self._cached_json[silent] = result
        return result
