"""Token use cases: password (+ second factor) login, refresh rotation with reuse detection,
logout, and reloading revoked families at start-up.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from app.api.envelope import ApiError
from app.identity import store
from app.identity._service_core import (
    Dal,
    ServiceCore,
    audit_self,
    unauthorized,
)
from app.identity.apikeys import token_hash
from app.identity.records import UserState, utcnow

__all__ = ["LOCKOUT_SECONDS", "MAX_FAILED_LOGINS", "TokenPair", "TokenUseCases"]


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


class TokenUseCases(ServiceCore):
    """Login, refresh-token rotation and logout."""

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
            raise unauthorized()
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
            audit_self(
                dal, "login", user_id, ip, details={"recovery_code": used_recovery is not None}
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
        """Rotate: the presented token is claimed (compare-and-set in the database) and a new
        one issued in the same unit of work. A token already used, or claimed first by a
        concurrent request, is reuse: the whole family is revoked, the winner's new tokens
        included (a stolen token raced against its owner leaves neither logged in)."""
        hashed = token_hash(token)
        now = utcnow()

        def reuse(dal: Dal, row: Any) -> tuple[str, None, str]:
            store.revoke_refresh_family(dal, row.family_id, now, int(row.id))
            store.add_audit(
                dal,
                "refresh_reuse",
                success=False,
                target=f"user:{row.user_id}",
                ip=ip,
                details={"family": row.family_id},
            )
            return "reused", None, row.family_id

        def work(dal: Dal) -> tuple[str, Any, str | None]:
            row = dal(dal.refresh_token.token_hash == hashed).select().first()
            if row is None:
                return "unknown", None, None
            family = row.family_id
            if row.revoked_at is not None or row.expires_at <= now:
                return "dead", None, family
            if row.used_at is not None:
                return reuse(dal, row)
            user = store.user_row_by_id(dal, int(row.user_id))
            if user is None or not user.active:
                return "dead", None, family
            if not store.claim_refresh(dal, int(row.id), now):
                return reuse(dal, row)
            new = self._new_refresh(dal, int(row.user_id), family)
            return new, store.user_state(dal, int(row.user_id)), family

        outcome, state, family = await self.db.run(work)
        if outcome == "reused" and family:
            self.cache.revoke_family(family, time.time() + self.settings.refresh_token_ttl)
        if state is None or family is None:
            raise unauthorized(
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
            audit_self(dal, "logout", user_id, ip)

        await self.db.run(work)
        self.cache.revoke_family(family, time.time() + self.settings.refresh_token_ttl)

    async def family_of_refresh(self, token: str) -> tuple[str, int] | None:
        hashed = token_hash(token)

        def work(dal: Dal) -> tuple[str, int] | None:
            row = dal(dal.refresh_token.token_hash == hashed).select().first()
            return None if row is None else (row.family_id, int(row.user_id))

        result: tuple[str, int] | None = await self.db.run(work)
        return result
