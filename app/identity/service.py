"""Identity use cases: login, tokens, accounts, 2FA, roles, teams and API keys.

Every method runs its database work as one `db.run` unit, writes its audit row in the same
transaction, and invalidates IdentityCache after the commit. Errors are ApiError (4xx).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from app.api.envelope import ApiError
from app.config import Settings
from app.db.errors import IntegrityError
from app.identity import store
from app.identity.apikeys import hash_key, new_key, token_hash
from app.identity.authenticator import BearerAuthenticator
from app.identity.cache import IdentityCache
from app.identity.jwt_tokens import JwtCodec
from app.identity.limits import LoginThrottle
from app.identity.mailer import Mailer
from app.identity.onetime import PURPOSES, OneTimeTokens
from app.identity.passwords import Passwords
from app.identity.records import ApiKeyRecord, RoleRecord, TeamRecord, UserRecord, UserState, utcnow
from app.identity.scopes import ROLE_LEVELS, UnknownScopeError, normalise_scopes
from app.identity.totp import (
    new_recovery_codes,
    new_totp_secret,
    normalise_recovery_code,
    provisioning_uri,
    verify_totp,
)
from app.types import Principal

__all__ = ["IdentityService", "TokenPair"]

Dal = Any

MAX_FAILED_LOGINS = 5
LOCKOUT_SECONDS = 15 * 60


@dataclass(slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    user_id: int
    family: str
    stamp: str


def _unauthorized(
    message: str = "Invalid credentials", code: str = "invalid_credentials"
) -> ApiError:
    return ApiError(401, code, message)


def _not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def _scopes_or_422(scopes: list[str]) -> frozenset[str]:
    try:
        return normalise_scopes(scopes)
    except UnknownScopeError as error:
        raise ApiError(422, "unknown_scope", str(error), {"unknown": error.unknown}) from None


def _no_escalation(actor: Principal | None, scopes: frozenset[str]) -> None:
    if actor is None:
        return
    beyond = sorted(scope for scope in scopes if not actor.has(scope))
    if beyond:
        raise ApiError(
            403,
            "scope_escalation",
            "Cannot grant scopes you do not hold",
            {"not_held": beyond},
        )


def _check_grantable(dal: Dal, actor: Principal | None, role_names: list[str]) -> dict[str, int]:
    """Role ids for `role_names`; 422 for unknown roles, 403 when the actor would hand out
    scopes it does not hold itself (no privilege escalation through role assignment)."""
    ids = store.role_ids(dal, role_names)
    missing = sorted(set(role_names) - set(ids))
    if missing:
        raise ApiError(
            422, "unknown_role", "Unknown roles: " + ", ".join(missing), {"unknown": missing}
        )
    if actor is not None:
        beyond: set[str] = set()
        for name in role_names:
            role = store.role_by_name(dal, name)
            if role is not None:
                beyond.update(scope for scope in role.scopes if not actor.has(scope))
        if beyond:
            raise ApiError(
                403,
                "scope_escalation",
                "Cannot grant roles carrying scopes you do not hold",
                {"not_held": sorted(beyond)},
            )
    return ids


class IdentityService:
    def __init__(
        self,
        settings: Settings,
        db: Any,
        secret: str,
        passwords: Passwords,
        cache: IdentityCache,
        authenticator: BearerAuthenticator,
        mailer: Mailer,
    ) -> None:
        self.settings = settings
        self.db = db
        self.passwords = passwords
        self.cache = cache
        self.authenticator = authenticator
        self.jwt = JwtCodec(secret, settings.access_token_ttl)
        self.onetime = OneTimeTokens(secret)
        self.mailer = mailer
        self.throttle = LoginThrottle()
        # Endpoints that send mail (registration, password reset): 10 per address per hour.
        self.mail_throttle = LoginThrottle(max_failures=10, window=3600.0)

    # --- start-up ------------------------------------------------------------------------

    async def load_revocations(self) -> None:
        """Families revoked while their tokens could still be alive (survives restarts)."""

        def work(dal: Dal) -> list[tuple[str, datetime]]:
            rows = dal(
                (dal.refresh_token.revoked_at != None) & (dal.refresh_token.expires_at > utcnow())  # noqa: E711
            ).select(dal.refresh_token.family_id, dal.refresh_token.expires_at)
            return [(row.family_id, row.expires_at) for row in rows]

        for family, expires in await self.db.run(work):
            self.cache.revoke_family(family, expires.replace(tzinfo=UTC).timestamp(), publish=False)

    # --- tokens --------------------------------------------------------------------------

    def _new_refresh(self, dal: Dal, user_id: int, family: str) -> str:
        token = secrets.token_urlsafe(32)
        now = utcnow()
        dal.refresh_token.insert(
            user_id=user_id,
            family_id=family,
            token_hash=token_hash(token),
            issued_at=now,
            expires_at=now + timedelta(seconds=self.settings.refresh_token_ttl),
        )
        return token

    async def login(self, email: str, password: str, totp_code: str | None, ip: str) -> TokenPair:
        wait = self.throttle.retry_after(ip)
        if wait:
            raise ApiError(
                429, "rate_limited", "Too many failed logins", headers={"Retry-After": str(wait)}
            )
        email = email.strip().lower()
        row = await self.db.run(lambda dal: store.user_row_by_email(dal, email))
        now = utcnow()
        if row is not None and row.locked_until is not None and row.locked_until > now:
            wait = max(1, int((row.locked_until - now).total_seconds()) + 1)
            raise ApiError(
                429,
                "account_locked",
                "Account temporarily locked",
                headers={"Retry-After": str(wait)},
            )
        good = await self.passwords.verify(row.password_hash if row is not None else None, password)
        second_factor_ok = True
        used_recovery: int | None = None
        if good and row is not None and row.totp_enabled:
            if not totp_code:
                raise ApiError(401, "totp_required", "This account needs a TOTP or recovery code")
            second_factor_ok, used_recovery = await self._check_second_factor(
                int(row.id), row.totp_secret, totp_code
            )
        if row is None or not good or not second_factor_ok or not row.active:
            await self._login_failed(
                row,
                email,
                ip,
                "inactive" if (good and row is not None and not row.active) else None,
            )
            raise _unauthorized()
        if row.confirmed_at is None:
            raise ApiError(403, "email_unconfirmed", "Confirm the email address first")
        user_id = int(row.id)
        family = secrets.token_urlsafe(24)
        rehash = (
            await self.passwords.hash(password)
            if self.passwords.needs_rehash(row.password_hash)
            else None
        )

        def work(dal: Dal) -> tuple[str, UserState | None]:
            user = store.user_row_by_id(dal, user_id)
            when = utcnow()
            updates: dict[str, Any] = {
                "last_login_at": user.current_login_at,
                "last_login_ip": user.current_login_ip,
                "current_login_at": when,
                "current_login_ip": ip[:64],
                "login_count": int(user.login_count or 0) + 1,
                "failed_logins": 0,
                "locked_until": None,
            }
            if rehash:
                updates["password_hash"] = rehash
            user.update_record(**updates)
            if used_recovery is not None:
                dal(dal.recovery_code.id == used_recovery).update(used_at=when)
            state = store.user_state(dal, user_id)
            store.add_audit(
                dal,
                "login",
                actor_user_id=user_id,
                target=f"user:{user_id}",
                ip=ip,
                details={"recovery_code": used_recovery is not None},
            )
            return self._new_refresh(dal, user_id, family), state

        refresh, state = await self.db.run(work)
        assert state is not None
        self.throttle.succeeded(ip)
        self.cache.users[user_id] = state
        return TokenPair(
            self.jwt.issue(user_id, family, state.scopes, state.stamp),
            refresh,
            self.jwt.ttl,
            user_id,
            family,
            state.stamp,
        )

    async def _check_second_factor(
        self, user_id: int, secret: str | None, code: str
    ) -> tuple[bool, int | None]:
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

    async def _login_failed(self, row: Any, email: str, ip: str, reason: str | None) -> None:
        self.throttle.failed(ip)

        def work(dal: Dal) -> None:
            details: dict[str, Any] = {"email": email[:255]}
            if reason:
                details["reason"] = reason
            if row is None:
                store.add_audit(dal, "login_failed", success=False, ip=ip, details=details)
                return
            user = store.user_row_by_id(dal, int(row.id))
            failures = int(user.failed_logins or 0) + 1
            updates: dict[str, Any] = {"failed_logins": failures}
            if failures >= MAX_FAILED_LOGINS:
                updates["locked_until"] = utcnow() + timedelta(seconds=LOCKOUT_SECONDS)
                updates["failed_logins"] = 0
                store.add_audit(
                    dal, "lockout", success=False, target=f"user:{row.id}", ip=ip, details=details
                )
            user.update_record(**updates)
            store.add_audit(
                dal, "login_failed", success=False, target=f"user:{row.id}", ip=ip, details=details
            )

        await self.db.run(work)

    async def refresh(self, token: str, ip: str) -> TokenPair:
        hashed = token_hash(token)
        now = utcnow()

        def work(dal: Dal) -> tuple[str, Any, str | None]:
            row = dal(dal.refresh_token.token_hash == hashed).select().first()
            if row is None:
                return "unknown", None, None
            family = row.family_id
            if row.revoked_at is not None or row.expires_at <= now:
                return "dead", None, family
            if row.used_at is not None:
                dal(dal.refresh_token.family_id == family).update(revoked_at=now)
                store.add_audit(
                    dal,
                    "refresh_reuse",
                    success=False,
                    target=f"user:{row.user_id}",
                    ip=ip,
                    details={"family": family},
                )
                return "reused", None, family
            user = store.user_row_by_id(dal, int(row.user_id))
            if user is None or not user.active:
                return "dead", None, family
            row.update_record(used_at=now)
            new = self._new_refresh(dal, int(row.user_id), family)
            return new, store.user_state(dal, int(row.user_id)), family

        outcome, state, family = await self.db.run(work)
        if outcome == "reused" and family:
            self.cache.revoke_family(family, time.time() + self.settings.refresh_token_ttl)
        if state is None or family is None:
            raise _unauthorized(
                "The refresh token is invalid, expired, revoked or reused", "invalid_token"
            )
        self.cache.users[state.id] = state
        return TokenPair(
            self.jwt.issue(state.id, family, state.scopes, state.stamp),
            outcome,
            self.jwt.ttl,
            state.id,
            family,
            state.stamp,
        )

    async def revoke_family(self, family: str, user_id: int | None, ip: str) -> None:
        now = utcnow()

        def work(dal: Dal) -> None:
            live = dal.refresh_token.revoked_at == None  # noqa: E711 - PyDAL IS NULL
            dal((dal.refresh_token.family_id == family) & live).update(revoked_at=now)
            store.add_audit(dal, "logout", actor_user_id=user_id, target=f"user:{user_id}", ip=ip)

        await self.db.run(work)
        self.cache.revoke_family(family, time.time() + self.settings.refresh_token_ttl)

    async def family_of_refresh(self, token: str) -> tuple[str, int] | None:
        hashed = token_hash(token)

        def work(dal: Dal) -> tuple[str, int] | None:
            row = dal(dal.refresh_token.token_hash == hashed).select().first()
            return None if row is None else (row.family_id, int(row.user_id))

        result: tuple[str, int] | None = await self.db.run(work)
        return result

    # --- accounts --------------------------------------------------------------------------

    async def get_user(self, user_id: int) -> UserRecord:
        user: UserRecord | None = await self.db.run(lambda dal: store.user_record(dal, user_id))
        if user is None:
            raise _not_found("User")
        return user

    async def create_user(
        self,
        email: str,
        password: str,
        roles: list[str],
        *,
        actor: Principal | None,
        ip: str,
        confirmed: bool = True,
        display_name: str | None = None,
    ) -> UserRecord:
        email = email.strip().lower()
        password_hash = await self.passwords.hash(password)

        def work(dal: Dal) -> UserRecord:
            ids = _check_grantable(dal, actor, roles)
            if store.user_row_by_email(dal, email) is not None:
                raise ApiError(409, "conflict", "A user with this email already exists")
            now = utcnow()
            user_id = int(
                dal.auth_user.insert(
                    email=email,
                    password_hash=password_hash,
                    active=True,
                    fs_uniquifier=store.new_uniquifier(),
                    display_name=display_name,
                    confirmed_at=now if confirmed else None,
                    totp_enabled=False,
                    login_count=0,
                    failed_logins=0,
                    created_at=now,
                    updated_at=now,
                    password_changed_at=None,
                )
            )
            store.set_user_roles(dal, user_id, ids.values())
            store.add_audit(
                dal,
                "user_create",
                actor_user_id=actor.user_id if actor else user_id,
                actor_client_id=actor.client_id if actor else None,
                target=f"user:{user_id}",
                ip=ip,
                details={"roles": sorted(roles)},
            )
            record = store.user_record(dal, user_id)
            assert record is not None
            return record

        try:
            record: UserRecord = await self.db.run(work)
        except IntegrityError:
            raise ApiError(409, "conflict", "A user with this email already exists") from None
        return record

    def _mail_allowed(self, ip: str) -> None:
        wait = self.mail_throttle.retry_after(ip)
        if wait:
            raise ApiError(
                429, "rate_limited", "Too many requests", headers={"Retry-After": str(wait)}
            )
        self.mail_throttle.failed(ip)  # every request counts

    async def register(self, email: str, password: str, ip: str) -> UserRecord:
        if not self.settings.registration_enabled:
            raise ApiError(403, "registration_disabled", "Self-registration is disabled")
        self._mail_allowed(ip)
        user = await self.create_user(
            email, password, ["viewer"], actor=None, ip=ip, confirmed=False
        )
        token = await self.issue_one_time("confirm", user.id)
        await self.mailer.send_link(
            user.email, "Confirm your Floe account", "/api/v2/auth/confirm", token
        )
        return user

    async def issue_one_time(self, purpose: str, user_id: int) -> str:
        token = self.onetime.issue(purpose, user_id)
        hashed = token_hash(token)

        def work(dal: Dal) -> None:
            dal.one_time_token.insert(
                purpose=purpose,
                token_hash=hashed,
                user_id=user_id,
                expires_at=utcnow() + timedelta(seconds=PURPOSES[purpose]),
            )

        await self.db.run(work)
        return token

    def _redeem_sync(self, dal: Dal, purpose: str, token: str, user_id: int) -> None:
        row = (
            dal(
                (dal.one_time_token.token_hash == token_hash(token))
                & (dal.one_time_token.purpose == purpose)
            )
            .select()
            .first()
        )
        if (
            row is None
            or row.used_at is not None
            or row.expires_at <= utcnow()
            or int(row.user_id) != user_id
        ):
            raise ApiError(400, "invalid_token", "The link is invalid, expired or already used")
        row.update_record(used_at=utcnow())

    async def confirm(self, token: str, ip: str) -> None:
        user_id = self.onetime.load("confirm", token)
        if user_id is None:
            raise ApiError(400, "invalid_token", "The link is invalid, expired or already used")

        def work(dal: Dal) -> None:
            self._redeem_sync(dal, "confirm", token, user_id)
            dal(dal.auth_user.id == user_id).update(confirmed_at=utcnow(), updated_at=utcnow())
            store.add_audit(
                dal, "email_confirm", actor_user_id=user_id, target=f"user:{user_id}", ip=ip
            )

        await self.db.run(work)

    async def request_password_reset(self, email: str, ip: str) -> None:
        """Always succeeds from the caller's view, so it cannot be used to probe emails."""
        self._mail_allowed(ip)
        user = await self.db.run(lambda dal: store.user_by_email(dal, email.strip().lower()))
        if user is None or not user.active:
            return
        token = await self.issue_one_time("reset", user.id)
        await self.mailer.send_link(
            user.email, "Reset your Floe password", "/api/v2/auth/password-reset/confirm", token
        )
        await self.db.run(
            lambda dal: store.add_audit(
                dal, "password_reset_request", target=f"user:{user.id}", ip=ip
            )
        )

    def _store_password(self, dal: Dal, user_id: int, password_hash: str) -> None:
        now = utcnow()
        dal(dal.auth_user.id == user_id).update(
            fs_uniquifier=store.new_uniquifier(),
            password_hash=password_hash,
            password_changed_at=now,
            updated_at=now,
            failed_logins=0,
            locked_until=None,
        )
        dal((dal.refresh_token.user_id == user_id) & (dal.refresh_token.revoked_at == None)).update(  # noqa: E711
            revoked_at=now
        )

    async def reset_password(self, token: str, password: str, ip: str) -> None:
        user_id = self.onetime.load("reset", token)
        if user_id is None:
            raise ApiError(400, "invalid_token", "The link is invalid, expired or already used")
        password_hash = await self.passwords.hash(password)

        def work(dal: Dal) -> None:
            self._redeem_sync(dal, "reset", token, user_id)
            self._store_password(dal, user_id, password_hash)
            store.add_audit(
                dal, "password_reset", actor_user_id=user_id, target=f"user:{user_id}", ip=ip
            )

        await self.db.run(work)
        self.cache.forget_user(user_id)

    async def change_password(self, user_id: int, current: str, new: str, ip: str) -> None:
        row = await self.db.run(lambda dal: store.user_row_by_id(dal, user_id))
        if row is None or not await self.passwords.verify(row.password_hash, current):
            await self.db.run(
                lambda dal: store.add_audit(
                    dal,
                    "password_change",
                    success=False,
                    actor_user_id=user_id,
                    target=f"user:{user_id}",
                    ip=ip,
                )
            )
            raise ApiError(403, "invalid_credentials", "The current password is wrong")
        password_hash = await self.passwords.hash(new)

        def work(dal: Dal) -> None:
            self._store_password(dal, user_id, password_hash)
            store.add_audit(
                dal, "password_change", actor_user_id=user_id, target=f"user:{user_id}", ip=ip
            )

        await self.db.run(work)
        self.cache.forget_user(user_id)

    async def update_user(
        self,
        user_id: int,
        *,
        actor: Principal,
        ip: str,
        display_name: str | None = None,
        active: bool | None = None,
        roles: list[str] | None = None,
        password: str | None = None,
    ) -> UserRecord:
        password_hash = await self.passwords.hash(password) if password else None

        def work(dal: Dal) -> UserRecord:
            row = store.user_row_by_id(dal, user_id)
            if row is None:
                raise _not_found("User")
            updates: dict[str, Any] = {"updated_at": utcnow()}
            if display_name is not None:
                updates["display_name"] = display_name
            if active is not None:
                updates["active"] = active
            if updates:
                row.update_record(**updates)
            if password_hash:
                self._store_password(dal, user_id, password_hash)
                store.add_audit(
                    dal,
                    "password_reset_by_admin",
                    actor_user_id=actor.user_id,
                    actor_client_id=actor.client_id,
                    target=f"user:{user_id}",
                    ip=ip,
                )
            if roles is not None:
                ids = _check_grantable(dal, actor, roles)
                store.set_user_roles(dal, user_id, ids.values())
                store.add_audit(
                    dal,
                    "role_change",
                    actor_user_id=actor.user_id,
                    actor_client_id=actor.client_id,
                    target=f"user:{user_id}",
                    ip=ip,
                    details={"roles": sorted(roles)},
                )
            if active is not None:
                store.add_audit(
                    dal,
                    "user_activate" if active else "user_deactivate",
                    actor_user_id=actor.user_id,
                    actor_client_id=actor.client_id,
                    target=f"user:{user_id}",
                    ip=ip,
                )
            record = store.user_record(dal, user_id)
            assert record is not None
            return record

        record: UserRecord = await self.db.run(work)
        self.cache.forget_user(user_id)
        return record

    async def delete_user(self, user_id: int, *, actor: Principal, ip: str) -> None:
        if actor.user_id == user_id:
            raise ApiError(409, "self_delete", "You cannot delete your own account")

        def work(dal: Dal) -> list[str]:
            if store.user_row_by_id(dal, user_id) is None:
                raise _not_found("User")
            prefixes = [key.prefix for key in store.api_key_ids_of_owner(dal, user_id)]
            dal(dal.api_client.owner_user_id == user_id).update(
                revoked_at=utcnow(), owner_user_id=None
            )
            for table in (
                "auth_user_role",
                "team_member",
                "resource_grant",
                "refresh_token",
                "recovery_code",
                "one_time_token",
            ):
                dal(dal[table].user_id == user_id).delete()
            dal(dal.auth_user.id == user_id).delete()
            store.add_audit(
                dal,
                "user_delete",
                actor_user_id=actor.user_id,
                actor_client_id=actor.client_id,
                target=f"user:{user_id}",
                ip=ip,
            )
            return prefixes

        for prefix in await self.db.run(work):
            self.cache.forget_key(prefix)
        self.cache.forget_user(user_id)

    # --- 2FA -------------------------------------------------------------------------------

    async def totp_enrol(self, user_id: int, ip: str) -> dict[str, str]:
        secret = new_totp_secret()

        def work(dal: Dal) -> str:
            row = store.user_row_by_id(dal, user_id)
            if row.totp_enabled:
                raise ApiError(409, "totp_enabled", "TOTP is already enabled; disable it first")
            row.update_record(totp_secret=secret, updated_at=utcnow())
            store.add_audit(
                dal, "totp_enrol", actor_user_id=user_id, target=f"user:{user_id}", ip=ip
            )
            email: str = row.email
            return email

        email = await self.db.run(work)
        return {"secret": secret, "otpauth_uri": provisioning_uri(secret, email)}

    async def totp_verify(self, user_id: int, code: str, ip: str) -> list[str]:
        row = await self.db.run(lambda dal: store.user_row_by_id(dal, user_id))
        if row.totp_enabled:
            raise ApiError(409, "totp_enabled", "TOTP is already enabled")
        if not row.totp_secret:
            raise ApiError(409, "totp_not_enrolled", "Enrol first with POST /me/2fa/totp")
        if not verify_totp(row.totp_secret, code):
            await self.db.run(
                lambda dal: store.add_audit(
                    dal,
                    "totp_verify",
                    success=False,
                    actor_user_id=user_id,
                    target=f"user:{user_id}",
                    ip=ip,
                )
            )
            raise ApiError(422, "invalid_code", "The TOTP code is wrong")
        plain, hashes = new_recovery_codes()

        def work(dal: Dal) -> None:
            dal(dal.auth_user.id == user_id).update(totp_enabled=True, updated_at=utcnow())
            dal(dal.recovery_code.user_id == user_id).delete()
            for code_hash in hashes:
                dal.recovery_code.insert(user_id=user_id, code_hash=code_hash)
            store.add_audit(
                dal, "totp_enable", actor_user_id=user_id, target=f"user:{user_id}", ip=ip
            )

        await self.db.run(work)
        return plain

    async def totp_disable(self, user_id: int, code: str | None, ip: str) -> None:
        row = await self.db.run(lambda dal: store.user_row_by_id(dal, user_id))
        if row.totp_enabled:
            ok, recovery = (
                await self._check_second_factor(user_id, row.totp_secret, code or "")
                if code
                else (False, None)
            )
            if not ok:
                raise ApiError(422, "invalid_code", "A current TOTP or recovery code is required")
            del recovery

        def work(dal: Dal) -> None:
            dal(dal.auth_user.id == user_id).update(
                totp_enabled=False, totp_secret=None, updated_at=utcnow()
            )
            dal(dal.recovery_code.user_id == user_id).delete()
            store.add_audit(
                dal, "totp_disable", actor_user_id=user_id, target=f"user:{user_id}", ip=ip
            )

        await self.db.run(work)

    # --- roles -----------------------------------------------------------------------------

    async def create_role(
        self,
        name: str,
        description: str,
        scopes: list[str],
        level: str,
        *,
        actor: Principal,
        ip: str,
    ) -> RoleRecord:
        chosen = _scopes_or_422(scopes)
        _no_escalation(actor, chosen)
        if level not in ROLE_LEVELS:
            raise ApiError(422, "invalid_level", f"level must be one of {', '.join(ROLE_LEVELS)}")

        def work(dal: Dal) -> RoleRecord:
            if store.role_by_name(dal, name) is not None:
                raise ApiError(409, "conflict", "A role with this name already exists")
            dal.auth_role.insert(
                name=name,
                description=description,
                scopes=" ".join(sorted(chosen)),
                builtin=False,
                level=level,
                created_at=utcnow(),
            )
            store.add_audit(
                dal,
                "role_create",
                actor_user_id=actor.user_id,
                actor_client_id=actor.client_id,
                target=f"role:{name}",
                ip=ip,
                details={"scopes": sorted(chosen)},
            )
            role = store.role_by_name(dal, name)
            assert role is not None
            return role

        try:
            role: RoleRecord = await self.db.run(work)
        except IntegrityError:
            raise ApiError(409, "conflict", "A role with this name already exists") from None
        return role

    async def update_role(
        self,
        role_id: int,
        description: str | None,
        scopes: list[str] | None,
        *,
        actor: Principal,
        ip: str,
    ) -> RoleRecord:
        chosen = _scopes_or_422(scopes) if scopes is not None else None
        if chosen is not None:
            _no_escalation(actor, chosen)

        def work(dal: Dal) -> RoleRecord:
            row = dal(dal.auth_role.id == role_id).select().first()
            if row is None:
                raise _not_found("Role")
            if row.builtin:
                raise ApiError(409, "builtin_role", "Built-in roles cannot be changed")
            updates: dict[str, Any] = {}
            if description is not None:
                updates["description"] = description
            if chosen is not None:
                updates["scopes"] = " ".join(sorted(chosen))
            if updates:
                row.update_record(**updates)
            store.add_audit(
                dal,
                "role_update",
                actor_user_id=actor.user_id,
                actor_client_id=actor.client_id,
                target=f"role:{row.name}",
                ip=ip,
                details={"scopes": sorted(chosen or [])},
            )
            role = store.role_by_name(dal, row.name)
            assert role is not None
            return role

        role: RoleRecord = await self.db.run(work)
        self.cache.forget_all_users()
        return role

    async def delete_role(self, role_id: int, *, actor: Principal, ip: str) -> None:
        def work(dal: Dal) -> None:
            row = dal(dal.auth_role.id == role_id).select().first()
            if row is None:
                raise _not_found("Role")
            if row.builtin:
                raise ApiError(409, "builtin_role", "Built-in roles cannot be deleted")
            in_use = (
                dal(dal.team_member.role_id == role_id).count()
                + dal(dal.resource_grant.role_id == role_id).count()
            )
            if in_use:
                raise ApiError(
                    409, "role_in_use", "The role is used by team members or resource grants"
                )
            dal(dal.auth_user_role.role_id == role_id).delete()
            dal(dal.auth_role.id == role_id).delete()
            store.add_audit(
                dal,
                "role_delete",
                actor_user_id=actor.user_id,
                actor_client_id=actor.client_id,
                target=f"role:{row.name}",
                ip=ip,
            )

        await self.db.run(work)
        self.cache.forget_all_users()

    # --- teams -----------------------------------------------------------------------------

    async def create_team(
        self, name: str, description: str, *, actor: Principal, ip: str
    ) -> TeamRecord:
        def work(dal: Dal) -> TeamRecord:
            if dal(dal.team.name == name).count():
                raise ApiError(409, "conflict", "A team with this name already exists")
            team_id = int(dal.team.insert(name=name, description=description, created_at=utcnow()))
            store.add_audit(
                dal,
                "team_create",
                actor_user_id=actor.user_id,
                actor_client_id=actor.client_id,
                target=f"team:{team_id}",
                ip=ip,
            )
            team = store.team_record(dal, team_id)
            assert team is not None
            return team

        try:
            team: TeamRecord = await self.db.run(work)
        except IntegrityError:
            raise ApiError(409, "conflict", "A team with this name already exists") from None
        return team

    async def set_member(
        self, team_id: int, user_id: int, role: str, *, actor: Principal, ip: str
    ) -> TeamRecord:
        def work(dal: Dal) -> TeamRecord:
            if dal(dal.team.id == team_id).count() == 0:
                raise _not_found("Team")
            if store.user_row_by_id(dal, user_id) is None:
                raise _not_found("User")
            role_row = store.role_by_name(dal, role)
            if role_row is None or role_row.level != "team":
                raise ApiError(
                    422, "unknown_role", "role must be a team-level role (e.g. team_viewer)"
                )
            query = (dal.team_member.team_id == team_id) & (dal.team_member.user_id == user_id)
            if dal(query).count():
                dal(query).update(role_id=role_row.id)
            else:
                dal.team_member.insert(team_id=team_id, user_id=user_id, role_id=role_row.id)
            store.add_audit(
                dal,
                "team_member_set",
                actor_user_id=actor.user_id,
                actor_client_id=actor.client_id,
                target=f"team:{team_id}",
                ip=ip,
                details={"user_id": user_id, "role": role},
            )
            team = store.team_record(dal, team_id)
            assert team is not None
            return team

        team: TeamRecord = await self.db.run(work)
        self.cache.forget_user(user_id)
        return team

    async def remove_member(self, team_id: int, user_id: int, *, actor: Principal, ip: str) -> None:
        def work(dal: Dal) -> None:
            query = (dal.team_member.team_id == team_id) & (dal.team_member.user_id == user_id)
            if dal(query).delete() == 0:
                raise _not_found("Team member")
            store.add_audit(
                dal,
                "team_member_remove",
                actor_user_id=actor.user_id,
                actor_client_id=actor.client_id,
                target=f"team:{team_id}",
                ip=ip,
                details={"user_id": user_id},
            )

        await self.db.run(work)
        self.cache.forget_user(user_id)

    async def delete_team(self, team_id: int, *, actor: Principal, ip: str) -> list[int]:
        def work(dal: Dal) -> list[int]:
            if dal(dal.team.id == team_id).count() == 0:
                raise _not_found("Team")
            members = [
                int(r.user_id)
                for r in dal(dal.team_member.team_id == team_id).select(dal.team_member.user_id)
            ]
            dal(dal.team_member.team_id == team_id).delete()
            dal(dal.team.id == team_id).delete()
            store.add_audit(
                dal,
                "team_delete",
                actor_user_id=actor.user_id,
                actor_client_id=actor.client_id,
                target=f"team:{team_id}",
                ip=ip,
            )
            return members

        members: list[int] = await self.db.run(work)
        for user_id in members:
            self.cache.forget_user(user_id)
        return members

    # --- API keys --------------------------------------------------------------------------

    async def create_api_key(
        self,
        name: str,
        scopes: list[str],
        expires_at: datetime | None,
        *,
        actor: Principal | None,
        ip: str,
        owner_user_id: int | None = None,
    ) -> tuple[ApiKeyRecord, str]:
        chosen = _scopes_or_422(scopes)
        if actor is not None:
            beyond = sorted(s for s in chosen if not actor.has(s))
            if beyond:
                raise ApiError(
                    403,
                    "scope_escalation",
                    "A key cannot carry scopes its creator lacks",
                    {"not_held": beyond},
                )
        if expires_at is not None and expires_at <= utcnow():
            raise ApiError(422, "invalid_expiry", "expires_at must be in the future")
        plain, prefix = new_key()

        def work(dal: Dal) -> ApiKeyRecord:
            record = store.insert_api_key(
                dal,
                name=name,
                prefix=prefix,
                key_hash=hash_key(plain),
                scopes=chosen,
                owner_user_id=owner_user_id,
                expires_at=expires_at,
            )
            store.add_audit(
                dal,
                "api_key_create",
                actor_user_id=actor.user_id if actor else None,
                actor_client_id=actor.client_id if actor else None,
                target=f"client:{record.id}",
                ip=ip,
                details={"name": name, "scopes": sorted(chosen)},
            )
            return record

        record: ApiKeyRecord = await self.db.run(work)
        self.cache.forget_key(prefix)
        return record, plain

    async def rotate_api_key(
        self, key_id: int, *, actor: Principal | None, ip: str
    ) -> tuple[ApiKeyRecord, str]:
        plain, prefix = new_key()

        def work(dal: Dal) -> tuple[ApiKeyRecord, str]:
            old = store.api_key_by_id(dal, key_id)
            if old is None or old.revoked_at is not None:
                raise _not_found("API key")
            dal(dal.api_client.id == key_id).update(revoked_at=utcnow())
            record = store.insert_api_key(
                dal,
                name=old.name,
                prefix=prefix,
                key_hash=hash_key(plain),
                scopes=old.scopes,
                owner_user_id=old.owner_user_id,
                expires_at=old.expires_at,
                rotated_from_id=old.id,
            )
            store.add_audit(
                dal,
                "api_key_rotate",
                actor_user_id=actor.user_id if actor else None,
                actor_client_id=actor.client_id if actor else None,
                target=f"client:{key_id}",
                ip=ip,
                details={"new_id": record.id},
            )
            return record, old.prefix

        record, old_prefix = await self.db.run(work)
        self.cache.forget_key(old_prefix)
        self.cache.forget_key(prefix)
        return record, plain

    async def revoke_api_key(self, key_id: int, *, actor: Principal | None, ip: str) -> None:
        def work(dal: Dal) -> str:
            record = store.api_key_by_id(dal, key_id)
            if record is None or record.revoked_at is not None:
                raise _not_found("API key")
            dal(dal.api_client.id == key_id).update(revoked_at=utcnow())
            store.add_audit(
                dal,
                "api_key_revoke",
                actor_user_id=actor.user_id if actor else None,
                actor_client_id=actor.client_id if actor else None,
                target=f"client:{key_id}",
                ip=ip,
            )
            return record.prefix

        self.cache.forget_key(await self.db.run(work))

    # --- resource-level grants ---------------------------------------------------------------

    async def list_grants(self, user_id: int) -> list[dict[str, Any]]:
        def work(dal: Dal) -> list[dict[str, Any]]:
            if store.user_row_by_id(dal, user_id) is None:
                raise _not_found("User")
            rows = dal(
                (dal.resource_grant.user_id == user_id)
                & (dal.resource_grant.role_id == dal.auth_role.id)
            ).select(dal.resource_grant.ALL, dal.auth_role.name, orderby=dal.resource_grant.id)
            return [
                {
                    "id": int(r.resource_grant.id),
                    "role": r.auth_role.name,
                    "resource_type": r.resource_grant.resource_type,
                    "resource_id": r.resource_grant.resource_id,
                    "created_at": r.resource_grant.created_at,
                }
                for r in rows
            ]

        grants: list[dict[str, Any]] = await self.db.run(work)
        return grants

    async def add_grant(
        self,
        user_id: int,
        role: str,
        resource_type: str,
        resource_id: str,
        *,
        actor: Principal,
        ip: str,
    ) -> int:
        def work(dal: Dal) -> int:
            if store.user_row_by_id(dal, user_id) is None:
                raise _not_found("User")
            role_row = store.role_by_name(dal, role)
            if role_row is None or role_row.level != "resource":
                raise ApiError(
                    422, "unknown_role", "role must be a resource-level role (e.g. editor)"
                )
            _check_grantable(dal, actor, [role])
            query = (
                (dal.resource_grant.user_id == user_id)
                & (dal.resource_grant.resource_type == resource_type)
                & (dal.resource_grant.resource_id == resource_id)
            )
            if dal(query).count():
                raise ApiError(409, "conflict", "The user already has a grant on this resource")
            grant_id = int(
                dal.resource_grant.insert(
                    user_id=user_id,
                    role_id=role_row.id,
                    resource_type=resource_type,
                    resource_id=resource_id,
                    created_at=utcnow(),
                )
            )
            store.add_audit(
                dal,
                "grant_add",
                actor_user_id=actor.user_id,
                actor_client_id=actor.client_id,
                target=f"user:{user_id}",
                ip=ip,
                details={"role": role, "resource": f"{resource_type}/{resource_id}"},
            )
            return grant_id

        try:
            grant_id: int = await self.db.run(work)
        except IntegrityError:
            raise ApiError(
                409, "conflict", "The user already has a grant on this resource"
            ) from None
        self.cache.forget_user(user_id)
        return grant_id

    async def remove_grant(self, user_id: int, grant_id: int, *, actor: Principal, ip: str) -> None:
        def work(dal: Dal) -> None:
            query = (dal.resource_grant.id == grant_id) & (dal.resource_grant.user_id == user_id)
            if dal(query).delete() == 0:
                raise _not_found("Grant")
            store.add_audit(
                dal,
                "grant_remove",
                actor_user_id=actor.user_id,
                actor_client_id=actor.client_id,
                target=f"user:{user_id}",
                ip=ip,
                details={"grant_id": grant_id},
            )

        await self.db.run(work)
        self.cache.forget_user(user_id)

    async def update_team(
        self, team_id: int, description: str | None, *, actor: Principal, ip: str
    ) -> TeamRecord:
        def work(dal: Dal) -> TeamRecord:
            if dal(dal.team.id == team_id).count() == 0:
                raise _not_found("Team")
            if description is not None:
                dal(dal.team.id == team_id).update(description=description)
            store.add_audit(
                dal,
                "team_update",
                actor_user_id=actor.user_id,
                actor_client_id=actor.client_id,
                target=f"team:{team_id}",
                ip=ip,
            )
            team = store.team_record(dal, team_id)
            assert team is not None
            return team

        team: TeamRecord = await self.db.run(work)
        return team
