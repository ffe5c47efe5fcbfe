"""The OpenAPI document: quart-schema's paths, completed with what each route really does.

quart-schema documents request bodies and query models, but leaves `responses: {}` (which
OpenAPI forbids), no security, drops `required` from query parameters, and gives a route
the same operationId under /api/v1 and /api/v2. `FloeOpenAPIProvider` fills these in from
what the code already declares, so the document cannot drift from it:

- security from the view's access mark (app/api/access.py): `@public` → `security: []`;
  otherwise the bearer header (JWT or API key) or the session cookie, with the scopes;
- responses: the envelope for the success status, and the error envelope for every 4xx/5xx
  the route can produce: 401/403 when it needs a credential, 404 when its path names an id,
  400/413/415/422 when it validates a JSON body, 422 for a query model, 503 always (admission
  control, database outage); `@answers(...)` adds what only the route knows (a 201, a 409);
- query parameters: `required` from the model, no `null` branch (absent is "not sent"),
  `style`/`explode` lifted from the field schema (comma-separated lists).

The routes outside app/api (probes, the docs page) are described in `_TRANSPORT` below:
they answer their own shapes, not the envelope (Schemathesis in tests/integration/api fails
if a description and an answer part ways). The document is built on the first request and
served from bytes serialised once (`openapi_view`).
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from quart import Quart, Response
from quart_schema.conversion import model_schema
from quart_schema.openapi import OpenAPIProvider
from quart_schema.validation import (
    QUART_SCHEMA_QUERYSTRING_ATTRIBUTE,
    QUART_SCHEMA_REQUEST_ATTRIBUTE,
    QUART_SCHEMA_RESPONSE_ATTRIBUTE,
)
from werkzeug.routing.rules import Rule

from app.api.access import Access, access_of, public
from app.identity.scopes import SCOPES
from app.types import covers

__all__ = [
    "ENVELOPE_SCHEMAS",
    "SECURITY_SCHEMES",
    "FloeOpenAPIProvider",
    "RouteDoc",
    "answers",
    "openapi_view",
]

F = TypeVar("F", bound=Callable[..., Any])

DOC_ATTR = "__floe_openapi__"
_REF = "#/components/schemas/"
_UNSAFE = frozenset({"post", "put", "patch", "delete"})


@dataclass(slots=True, frozen=True)
class RouteDoc:
    """What only the route knows: its success status and the errors its service can answer.

    `errors` maps a status to a sentence naming the error codes (it may repeat a status the
    provider derives — 403, 404, 422 — to say more). Transport routes also give their own
    media type and body schema (`envelope=False`).
    """

    status: int = 200
    errors: Mapping[int, str] = field(default_factory=dict)
    envelope: bool = True
    media_type: str = "application/json"
    schema: Mapping[str, Any] | None = None
    error_schema: Mapping[str, Any] | None = None  # default: the error envelope
    description: str = ""


def answers(status: int = 200, errors: Mapping[int, str] | None = None) -> Callable[[F], F]:
    """Document a route's success status and the errors only it produces.

    Place it right under `@bp.<method>(...)`; `functools.wraps` carries the mark through the
    access and validation decorators.
    """

    def decorator(view: F) -> F:
        setattr(view, DOC_ATTR, RouteDoc(status=status, errors=dict(errors or {})))
        return view

    return decorator


_META = {
    "type": "object",
    "description": "`version` is 1 under /api/v1 and 2 under /api/v2; lists add counts "
                   "(`offset`/`limit`/`total`, or `count`).",
    "required": ["version", "timestamp", "request_id"],
    "properties": {
        "version": {"type": "integer", "enum": [1, 2]},
        "timestamp": {"type": "string", "description": "UTC, ISO 8601 with milliseconds"},
        "request_id": {"type": "string", "description": "Also in the X-Request-ID header"},
    },
}

ENVELOPE_SCHEMAS: dict[str, dict[str, Any]] = {
    "Meta": _META,
    "Envelope": {
        "type": "object",
        "required": ["status", "data", "meta"],
        "properties": {
            "status": {"const": "success"},
            "data": {"description": "The resource; its shape is in docs/api.md"},
            "meta": {"$ref": _REF + "Meta"},
        },
    },
    "Error": {
        "type": "object",
        "required": ["code", "message"],
        "properties": {
            "code": {"type": "string", "description": "Stable, machine-readable"},
            "message": {"type": "string"},
            "details": {"description": "Per code, e.g. the failed fields of a 422"},
        },
    },
    "ErrorEnvelope": {
        "type": "object",
        "required": ["status", "error", "meta"],
        "properties": {
            "status": {"const": "error"},
            "error": {"$ref": _REF + "Error"},
            "meta": {"$ref": _REF + "Meta"},
        },
    },
}

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "`Authorization: Bearer <access token | API key>`: a JWT from "
                       "/auth/login, or an API key (`floe_…`, from /clients). A bad one is "
                       "a 401, never a fall-back to the session.",
    },
    "session": {
        "type": "apiKey",
        "in": "cookie",
        "name": "floe_session",
        "description": "Browser session (`/auth/login` with `session: true`). Unsafe methods "
                       "(POST, PUT, PATCH, DELETE) must echo the `floe_csrf` cookie in the "
                       "`X-CSRF-Token` header, else 403 `csrf_failed`.",
    },
}

_HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "The client's printable X-Request-ID (≤ 64 characters) or a new one",
        "required": True,
        "schema": {"type": "string"},
    },
    "Retry-After": {"description": "Seconds to wait", "schema": {"type": "string"}},
    "WWW-Authenticate": {"schema": {"type": "string"}},
    "Deprecation": {"required": True, "schema": {"const": "true"}},
    "Sunset": {"required": True, "description": "HTTP date", "schema": {"type": "string"}},
    "Link": {"required": True, "description": "`</api/v2/…>; rel=\"successor-version\"`",
             "schema": {"type": "string"}},
}

_ERRORS: dict[int, str] = {
    400: "`bad_request`: the body is not valid JSON",
    401: "`unauthenticated` (no credential) or `invalid_token` (bad, expired or revoked)",
    403: "`insufficient_scope` (details `required_any_of`)",
    404: "`not_found`",
    409: "`conflict`",
    413: "`payload_too_large`: the body exceeds MAX_BODY_BYTES",
    415: "`unsupported_media_type`: send the body as application/json",
    422: "`validation_error`: details list the failed fields",
    429: "`rate_limited`: too many attempts; see Retry-After",
    503: "`overloaded` (too many requests in flight), `database_unavailable` or "
         "`unavailable`: nothing was changed; see Retry-After",
}

_CSRF = "`csrf_failed`: a session cookie writing without X-CSRF-Token"

_ERROR_HEADERS = {401: ("WWW-Authenticate",), 429: ("Retry-After",), 503: ("Retry-After",)}
_V1_HEADERS = ("Deprecation", "Sunset", "Link")

_READINESS = {
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"enum": ["ok", "unavailable"]},
        "checks": {"type": "object", "additionalProperties": {
            "type": "object",
            "required": ["ok", "detail"],
            "properties": {"ok": {"type": "boolean"}, "detail": {}},
        }},
    },
}

# Routes outside app/api: probes and documentation, each with its own media type and shape.
_TRANSPORT: dict[str, RouteDoc] = {
    "probes.healthz": RouteDoc(
        envelope=False, description="Liveness: the process answers.",
        schema={"type": "object", "required": ["status"],
                "properties": {"status": {"const": "ok"}}},
    ),
    "probes.readyz": RouteDoc(
        envelope=False, schema=_READINESS, error_schema=_READINESS,
        errors={503: "Not ready: a check failed (same body, `status: unavailable`)"},
        description="Readiness: the database and the dataplanes.",
    ),
    "probes.metrics": RouteDoc(
        envelope=False, media_type="text/plain", schema={"type": "string"},
        errors={401: "`invalid_token`: a bearer was sent and is invalid",
                404: "`not_found`: METRICS_ENABLED=false",
                503: "`overloaded`: a request carrying a credential waits its turn like any "
                     "other, and was refused"},
        description="Prometheus text. The dataplanes' series only for a bearer holding "
                    "`stats:read`; without one, the serving series.",
    ),
    "apidocs.docs": RouteDoc(envelope=False, media_type="text/html",
                             schema={"type": "string"}, errors={503: _ERRORS[503]},
                             description="An offline browser for this document."),
    "openapi": RouteDoc(envelope=False, schema={"type": "object"}, errors={503: _ERRORS[503]},
                        description="This document."),
}


def _version(endpoint: str) -> str | None:
    prefix = endpoint.split("_", 1)[0]
    return prefix if prefix in ("v1", "v2") and "." in endpoint else None


def _json(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": dict(schema)}}


def _headers(names: tuple[str, ...]) -> dict[str, Any]:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


def _scopes_text(access: Access) -> str:
    if not access.scopes:
        return "Needs any authenticated caller (bearer or session)."
    text = ("Needs " + " or ".join(f"`{scope}`" for scope in access.scopes)
            + " (a higher level of the same resource also passes).")
    if access.per_node:
        text += (" Also open to a caller holding it only through node grants: it then sees "
                 "those nodes alone.")
    return text


def _security(operation: dict[str, Any], access: Access | None) -> None:
    if access is not None and access.public:
        operation["security"] = []
        return
    if access is None:  # unreachable: tests/integration/test_authz_matrix.py
        access = Access(public=False)
    scopes = list(access.scopes)
    if scopes:
        # One requirement per scheme and scope: OpenAPI ANDs the scopes of one requirement,
        # and Floe wants any one of them.
        operation["security"] = [{scheme: [scope]} for scope in scopes
                                 for scheme in SECURITY_SCHEMES]
    else:
        operation["security"] = [{scheme: []} for scheme in SECURITY_SCHEMES]
    operation["x-required-scopes"] = {
        "any_of": scopes,
        "satisfied_by": sorted(s for s in SCOPES if any(covers(frozenset({s}), want)
                                                       for want in scopes)),
        "per_node": access.per_node,
    }
    note = _scopes_text(access)
    operation["description"] = f"{operation['description']}\n\n{note}".strip() \
        if operation.get("description") else note


def _strip_null(schema: dict[str, Any]) -> dict[str, Any]:
    """`X | None` → `X` for a query parameter: absent means "not sent", never null."""
    if "default" in schema and schema["default"] is None:
        schema = {k: v for k, v in schema.items() if k != "default"}
    branches = schema.get("anyOf")
    if isinstance(branches, list):
        kept = [b for b in branches if b != {"type": "null"}]
        if len(kept) == 1 and len(kept) < len(branches):
            return {**kept[0], **{k: v for k, v in schema.items() if k != "anyOf"}}
    return schema


class FloeOpenAPIProvider(OpenAPIProvider):
    """quart-schema's provider, completed (see the module docstring); built once, then cached
    (the URL map is fixed once the app serves)."""

    _document: dict[str, Any] | None = None
    _serialised: bytes | None = None

    def document_bytes(self) -> bytes:
        """The document as JSON, serialised once (~0.3 ms a request instead of ~8 ms)."""
        if self._serialised is None:
            self._serialised = orjson.dumps(self.schema())
        return self._serialised

    def schema(self) -> dict[str, Any]:
        if self._document is None:
            document = super().schema()
            components = document.setdefault("components", {})
            components.setdefault("schemas", {}).update(copy.deepcopy(ENVELOPE_SCHEMAS))
            components["securitySchemes"] = copy.deepcopy(SECURITY_SCHEMES)
            components["headers"] = copy.deepcopy(_HEADERS)
            document["paths"] = dict(sorted(document["paths"].items()))
            self._document = document
        return self._document

    def build_querystring_parameters(
        self, model: Any
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        parameters, definitions = super().build_querystring_parameters(model)
        whole = model_schema(
            model, preference=self._app.config["QUART_SCHEMA_CONVERSION_PREFERENCE"]
        )
        required = set(whole.get("required", ()))
        for parameter in parameters:
            schema = _strip_null(parameter["schema"])
            for key in ("style", "explode"):
                if key in schema:
                    parameter[key] = schema.pop(key)
            parameter["schema"] = schema
            if parameter["name"] in required:
                parameter["required"] = True
        return parameters, definitions

    def build_paths(self, rule: Rule) -> tuple[dict[str, Any], dict[str, Any]]:
        paths, components = super().build_paths(rule)
        view = self._app.view_functions[rule.endpoint]
        for item in paths.values():
            for method, shared in list(item.items()):
                operation = copy.deepcopy(shared)  # quart-schema shares parts across methods
                self._complete(operation, rule, view, method)
                item[method] = operation
        return paths, components

    def _complete(self, operation: dict[str, Any], rule: Rule, view: Any, method: str) -> None:
        endpoint = rule.endpoint
        version = _version(endpoint)
        if version is not None:
            operation["tags"] = [endpoint.split(".", 1)[0].removeprefix(f"{version}_")]
        if version == "v1":
            operation["operationId"] = "v1_" + operation["operationId"]
            operation["deprecated"] = True
        doc: RouteDoc | None = _TRANSPORT.get(endpoint) or getattr(view, DOC_ATTR, None)
        if doc is None:  # no mark: 200, or the one success status a response model names
            models = getattr(view, QUART_SCHEMA_RESPONSE_ATTRIBUTE, {})
            doc = RouteDoc(status=min((s for s in models if 200 <= s < 300), default=200))
        if doc.description and not operation.get("description"):
            operation["description"] = doc.description
        access = access_of(view)
        _security(operation, access)
        operation["responses"] = self._responses(operation, rule, view, method, doc, access,
                                                 version)

    def _responses(
        self,
        operation: dict[str, Any],
        rule: Rule,
        view: Any,
        method: str,
        doc: RouteDoc,
        access: Access | None,
        version: str | None,
    ) -> dict[str, Any]:
        errors: dict[int, str] = {503: _ERRORS[503]} if doc.envelope else {}
        if access is None or not access.public:
            errors[401] = _ERRORS[401]
            denials = [_ERRORS[403]] if access is None or access.scopes else []
            denials += [_CSRF] if method in _UNSAFE else []
            if denials:
                errors[403] = ", or ".join(denials)
        if rule.arguments:
            errors[404] = _ERRORS[404]
        if getattr(view, QUART_SCHEMA_REQUEST_ATTRIBUTE, None) is not None:
            errors.update({s: _ERRORS[s] for s in (400, 413, 415, 422)})
        if getattr(view, QUART_SCHEMA_QUERYSTRING_ATTRIBUTE, None) is not None:
            errors[422] = _ERRORS[422]
        for status, text in doc.errors.items():
            base = errors.get(status)  # what the route's shape already implies, if anything
            errors[status] = f"{text}; or {base}" if base and base != text else text
        always = ("X-Request-ID",) + (_V1_HEADERS if version == "v1" else ())
        models = getattr(view, QUART_SCHEMA_RESPONSE_ATTRIBUTE, {})
        responses: dict[str, Any] = {}
        success = operation.get("responses", {}).get(doc.status, {})
        schema: Mapping[str, Any]
        if doc.schema is not None:
            schema = doc.schema
        elif doc.status in models:
            data = success.get("content", {}).get("application/json", {}).get("schema", {})
            schema = {"allOf": [{"$ref": _REF + "Envelope"},
                                {"type": "object", "properties": {"data": data}}]}
        else:
            schema = {"$ref": _REF + "Envelope"}
        responses[str(doc.status)] = {
            "description": success.get("description") or "Success",
            "headers": _headers(always),
            "content": {doc.media_type: {"schema": dict(schema)}},
        }
        for status in sorted(errors):
            if status == doc.status:
                continue
            body = doc.error_schema or {"$ref": _REF + "ErrorEnvelope"}
            responses[str(status)] = {
                "description": errors[status],
                # Admission control refuses before Quart runs: no v1 headers on its 503.
                "headers": _headers((always if status != 503 else ("X-Request-ID",))
                                    + _ERROR_HEADERS.get(status, ())),
                "content": _json(body),
            }
        return responses


def openapi_view(app: Quart) -> Callable[[], Awaitable[Response]]:
    """The public view serving the document (replaces quart-schema's, which rebuilt and
    re-serialised ~300 KB on every request)."""
    provider: FloeOpenAPIProvider = app.extensions["QUART_SCHEMA"].openapi_provider

    @public
    async def openapi() -> Response:
        return Response(provider.document_bytes(), mimetype="application/json")

    return openapi
