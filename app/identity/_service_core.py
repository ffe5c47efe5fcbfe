"""Shared plumbing for the identity use cases: the service state, the unit-of-work helper,
audit rows and the 4xx errors they raise.

Every use case runs its database work as one `db.run` unit, writes its audit row in the
same transaction, and invalidates IdentityCache after the commit. Errors are ApiError.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from app.api.envelope import ApiError
from app.config import Settings
from app.db.errors import IntegrityError
from app.identity import store
from app.identity.apikeys import token_hash
from app.identity.cache import IdentityCache
from app.identity.jwt_tokens import JwtCodec
from app.identity.limits import LoginLimiter, LoginThrottle, login_limits
from app.identity.mailer import Mailer
from app.identity.onetime import OneTimeTokens
from app.identity.passwords import Passwords
from app.identity.policy import Capabilities
from app.identity.records import RoleRecord
from app.identity.scopes import UnknownScopeError, normalise_scopes
from app.identity.totp import (
    normalise_recovery_code,
    verify_totp,
)
from app.types import Principal

__all__ = [
    "GRANT_EXISTS",
    "ROLE_EXISTS",
    "TEAM_EXISTS",
    "TEAM_RESOURCE_EXISTS",
    "USER_EXISTS",
    "Dal",
    "ServiceCore",
    "audit",
    "audit_self",
    "conflict_error",
    "not_found",
    "role_scopes",
    "roles_or_422",
    "scopes_or_422",
    "unauthorized",
    "user_capabilities",
]


Dal = Any

USER_EXISTS = "A user with this email already exists"
ROLE_EXISTS = "A role with this name already exists"
TEAM_EXISTS = "A team with this name already exists"
GRANT_EXISTS = "The user already has a grant on this resource"
TEAM_RESOURCE_EXISTS = "The team already holds this resource"

_T = TypeVar("_T")


def unauthorized(
    message: str = "Invalid credentials", code: str = "invalid_credentials"
) -> ApiError:
    return ApiError(401, code, message)


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def conflict_error(message: str) -> ApiError:
    return ApiError(409, "conflict", message)


def audit(
    dal: Dal,
    action: str,
    actor: Principal | None,
    ip: str,
    target: str,
    *,
    details: dict[str, Any] | None = None,
) -> None:
    """Audit row for an action done by `actor` (user or API key); None when anonymous."""
    store.add_audit(
        dal,
        action,
        actor_user_id=actor.user_id if actor else None,
        actor_client_id=actor.client_id if actor else None,
        target=target,
        ip=ip,
        details=details,
    )


def audit_self(
    dal: Dal,
    action: str,
    user_id: int | None,
    ip: str,
    *,
    success: bool = True,
    details: dict[str, Any] | None = None,
) -> None:
    """Audit row for a user acting on their own account (login, password, 2FA)."""
    store.add_audit(
        dal,
        action,
        success=success,
        actor_user_id=user_id,
        target=f"user:{user_id}",
        ip=ip,
        details=details,
    )


def scopes_or_422(scopes: list[str]) -> frozenset[str]:
    try:
        return normalise_scopes(scopes)
    except UnknownScopeError as error:
        raise ApiError(422, "unknown_scope", str(error), {"unknown": error.unknown}) from None


def roles_or_422(dal: Dal, role_names: list[str]) -> dict[str, RoleRecord]:
    """The roles named, or 422 listing every unknown name."""
    roles = store.roles_by_name(dal, role_names)
    missing = sorted(set(role_names) - set(roles))
    if missing:
        raise ApiError(
            422, "unknown_role", "Unknown roles: " + ", ".join(missing), {"unknown": missing}
        )
    return roles


def role_scopes(roles: Iterable[RoleRecord]) -> frozenset[str]:
    return frozenset(scope for role in roles for scope in role.scopes)


def user_capabilities(dal: Dal, user_id: int) -> Capabilities:
    """What the user can do now (global roles, node grants, team nodes); 404 if unknown."""
    state = store.user_state(dal, user_id)
    if state is None:
        raise not_found("User")
    return Capabilities(state.scopes, state.node_scopes)


class ServiceCore:
    """State and unit-of-work plumbing shared by the identity use-case mixins."""

    def __init__(
        self,
        settings: Settings,
        db: Any,
        secret: str,
        passwords: Passwords,
        cache: IdentityCache,
        mailer: Mailer,
    ) -> None:
        self.settings = settings
        self.db = db
        self.passwords = passwords
        self.cache = cache
        self.jwt = JwtCodec(secret, settings.access_token_ttl)
        self.onetime = OneTimeTokens(secret)
        self.mailer = mailer
        self.limits = login_limits(settings)
        self.limiter = LoginLimiter(self.limits)
        # Endpoints that send mail (registration, password reset): 10 per address per hour.
        self.mail_throttle = LoginThrottle(max_failures=10, window=3600.0)

    async def _commit(
        self,
        work: Callable[[Dal], _T],
        *,
        conflict: str | None = None,
        forget_user: int | None = None,
    ) -> _T:
        """Run `work` as one unit of work. With `conflict`, a unique-constraint race that the
        in-transaction check could not see becomes that 409; with `forget_user`, the user's
        cached scopes are dropped after the commit."""
        try:
            result: _T = await self.db.run(work)
        except IntegrityError:
            if conflict is None:
                raise
            raise conflict_error(conflict) from None
        if forget_user is not None:
            self.cache.forget_user(forget_user)
        return result

    async def _check_second_factor(
        self, user_id: int, secret: str | None, code: str
    ) -> tuple[bool, int | None]:
        """(ok, id of the unused recovery code that matched); shared by login and 2FA."""
        if secret and verify_totp(secret, code):
            return True, None
        wanted = token_hash(normalise_recovery_code(code))

        def work(dal: Dal) -> int | None:
            row = (
                dal(
                    (dal.recovery_code.user_id == user_id)
                    & (dal.recovery_code.code_hash == wanted)
                    & (dal.recovery_code.used_at == None)  # noqa: E711
                )
                .select()
                .first()
            )
            return None if row is None else int(row.id)

        found = await self.db.run(work)
        return found is not None, found
