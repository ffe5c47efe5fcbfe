"""The process-wide runtime: settings plus the components each layer attaches at start-up.

Stored on the Quart app (`app.extensions["floe"]`) so tests can build several apps in one
process. Layers attach their components in their own `init_app`; nothing here imports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from quart import Quart, current_app

from app.config import Settings
from app.types import Authenticator

__all__ = ["Runtime", "get_runtime"]


@dataclass(slots=True)
class Runtime:
    settings: Settings
    authenticator: Authenticator | None = None
    # Named components attached by layers (db, identity, telemetry, grpc_server, ...).
    components: dict[str, Any] = field(default_factory=dict)
    # Readiness checks: name -> async callable returning (ok, detail).
    readiness: dict[str, Any] = field(default_factory=dict)
    # Prometheus collectors of other layers; the serving layer exports them with its own.
    collectors: list[Any] = field(default_factory=list)


def get_runtime(app: Quart | None = None) -> Runtime:
    target = app if app is not None else current_app
    runtime: Runtime = target.extensions["floe"]
    return runtime
