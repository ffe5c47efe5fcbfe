"""Identity layer: users, roles and scopes, tokens, API keys, sessions and 2FA.

`init_app` wires it into the app: at start-up (after the DB layer connected) it resolves
SECRET_KEY, creates built-in roles and the first admin, provisions the local dataplane
key, and installs the bearer Authenticator and the cookie-session authenticator.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncGenerator

from quart import Quart

from app.api.envelope import ApiError
from app.config import extra_bool, extra_float
from app.identity.authenticator import BearerAuthenticator, LastUsedRecorder
from app.identity.cache import IdentityCache
from app.identity.invalidation import InvalidationBus
from app.identity.jwt_tokens import JwtCodec
from app.identity.limits import login_limits
from app.identity.mailer import Mailer
from app.identity.metrics import IdentityCollector
from app.identity.passwords import Passwords
from app.identity.provision import ensure_dataplane_key, ensure_defaults, provision_api_key
from app.identity.secret import resolve_secret_key
from app.identity.service import IdentityService
from app.identity.sessions import SessionAuthenticator
from app.runtime import get_runtime

__all__ = [
    "IdentityService",
    "ensure_defaults",
    "get_identity",
    "get_sessions",
    "init_app",
    "provision_api_key",
]

log = logging.getLogger(__name__)


def get_identity(app: Quart | None = None) -> IdentityService:
    """The started service; 503 while the identity layer is not running (no database)."""
    service: IdentityService | None = get_runtime(app).components.get("identity")
    if service is None:
        raise ApiError(503, "unavailable", "The identity service is not running")
    return service


def get_sessions(app: Quart | None = None) -> SessionAuthenticator:
    sessions: SessionAuthenticator | None = get_runtime(app).components.get("session_authenticator")
    if sessions is None:
        raise ApiError(503, "unavailable", "The identity service is not running")
    return sessions


def init_app(app: Quart) -> None:
    runtime = get_runtime(app)
    settings = runtime.settings
    secure = extra_bool(settings, "FLOE_SESSION_COOKIE_SECURE", True)
    sessions = SessionAuthenticator(app, secure=secure, duration=settings.refresh_token_ttl)
    touch_interval = extra_float(settings, "FLOE_KEY_TOUCH_INTERVAL", 5.0, low=0.0, high=3600.0)
    login_limits(settings)  # a bad FLOE_LOGIN_* stops start-up here, with one line

    @app.before_serving
    async def _start_identity() -> None:
        db = runtime.components.get("db")
        if db is None:
            log.error("identity disabled: no database component")
            return
        secret = await asyncio.to_thread(resolve_secret_key, settings)
        # Names what instances of one deployment share in Redis (never the secret itself).
        runtime.components["deployment"] = hashlib.sha256(
            b"deployment:" + secret.encode()).hexdigest()[:16]
        if settings.extra.get("FLOE_ARGON2_PROFILE") == "fast":
            log.warning("FLOE_ARGON2_PROFILE=fast: weak password hashing, for tests only")
        passwords = await asyncio.to_thread(
            Passwords, settings.extra.get("FLOE_ARGON2_PROFILE", "default")
        )
        cache = IdentityCache()
        recorder = LastUsedRecorder(db, touch_interval)
        bearer = BearerAuthenticator(
            db, JwtCodec(secret, settings.access_token_ttl), cache, recorder
        )
        service = IdentityService(settings, db, secret, passwords, cache, Mailer(settings))
        runtime.components["identity"] = service
        runtime.collectors.append(IdentityCollector(service))
        runtime.components["identity_recorder"] = recorder
        await ensure_defaults(db, settings, passwords)
        await service.load_revocations()
        sessions.bind(secret, bearer, cache)
        runtime.components["session_authenticator"] = sessions
        runtime.authenticator = bearer
        await ensure_dataplane_key(app)
        recorder.start()
        if settings.redis_url:
            bus = InvalidationBus(settings.redis_url, secret, cache, service.load_revocations)
            cache.publish = bus.publish
            runtime.components["identity_bus"] = bus
            bus.start()
            try:
                await asyncio.wait_for(bus.subscribed.wait(), 3.0)
            except TimeoutError:
                log.warning(
                    "identity invalidation: Redis not reachable yet; retrying in background"
                )

    @app.while_serving
    async def _identity_lifespan() -> AsyncGenerator[None, None]:
        # while_serving ends before any after_serving hook, i.e. while the DB is still open,
        # so the last batch of API key last-used times is written.
        yield
        recorder = runtime.components.pop("identity_recorder", None)
        if recorder is not None:
            await recorder.stop()
        bus = runtime.components.pop("identity_bus", None)
        if bus is not None:
            await bus.stop()
