"""Token use cases: password (+ second factor) login, refresh rotation with reuse detection,
logout, and reloading revoked families at start-up.

A login attempt is counted before its password is verified, in three places: the
(email, source) and per-source windows in memory (limits.py, exact on one event loop), then
the account-wide ceiling in the database (`login_throttle`, shared by instances, kept over
restarts). Unknown emails take exactly the same path — same checks, same statements, a
dummy verify — so a refusal or its timing tells nothing about which accounts exist.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from app.api.envelope import ApiError
from app.db.errors import IntegrityError
from app.identity import store
from app.identity._service_core import (
    Dal,
    ServiceCore,
    audit_self,
    unauthorized,
)
from app.identity.apikeys import token_hash
from app.identity.limits import ACCOUNT_WINDOW, LoginTicket, locked_error
from app.identity.provision import DEFAULT_ADMIN_PASSWORD
from app.identity.records import UserState, utcnow
from app.identity.store import AccountSeat

__all__ = ["MAX_LOGIN_SEATS", "PRUNE_INTERVAL", "TokenPair", "TokenUseCases"]

# Bound of the `login_throttle` table: past it, emails without a row are not tracked by the
# account-wide ceiling (the in-memory limits still apply) until pruning frees rows.
MAX_LOGIN_SEATS = 100_000
PRUNE_INTERVAL = 60.0  # seconds between removals of ended windows (per instance)


@dataclass(slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    user_id: int
    family: str
    stamp: str
    # The password is the default one or was set by someone else: the holder must change it.
    password_change_required: bool = False


@dataclass(slots=True)
class _Attempt:
    """One login in flight: the seats it holds, settled once the verify has answered."""

    email: str
    ip: str
    ticket: LoginTicket
    seat: AccountSeat
    outcome: str = "error"  # "failed" keeps the seats, "success" / "error" give them back


class TokenUseCases(ServiceCore):
    """Login, refresh-token rotation and logout."""

    _seats_pruned_at: float = 0.0
    _seats_full: bool = False

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

    # --- login ---------------------------------------------------------------------------

    async def _take_seat(self, email: str) -> tuple[Any, AccountSeat]:
        """(the user row or None, its seat under the account-wide ceiling), one unit of work."""
        key = store.email_key(email)
        window = timedelta(seconds=ACCOUNT_WINDOW)
        ceiling = self.limits.per_account
        if time.monotonic() - self._seats_pruned_at >= PRUNE_INTERVAL:
            self._seats_pruned_at = time.monotonic()
            await self._prune_seats(window)
        may_insert = not self._seats_full

        def work(dal: Dal) -> tuple[Any, AccountSeat]:
            seat = store.reserve_login_seat(
                dal, key, utcnow(), window, ceiling, may_insert=may_insert
            )
            return store.user_row_by_email(dal, email), seat

        try:
            result: tuple[Any, AccountSeat] = await self.db.run(work)
        except IntegrityError:  # a concurrent first attempt inserted the row: count on it
            result = await self.db.run(work)
        return result

    async def _prune_seats(self, window: timedelta) -> None:
        """Drop ended windows (at most every PRUNE_INTERVAL s), in a unit of its own: its
        range delete must not share a transaction with an insert (InnoDB gap locks)."""

        def work(dal: Dal) -> int:
            store.prune_login_seats(dal, utcnow() - window)
            return store.count_login_seats(dal)

        self._seats_full = await self.db.run(work) >= MAX_LOGIN_SEATS

    async def login(self, email: str, password: str, totp_code: str | None, ip: str) -> TokenPair:
        email = email.strip().lower()
        ticket = self.limiter.reserve(email, ip)  # no await before this: exact on one loop
        try:
            row, seat = await self._take_seat(email)
        except BaseException:
            self.limiter.release(ticket)
            raise
        if seat.retry_after:
            self.limiter.release(ticket)
            self.limiter.refused["account"] += 1
            raise locked_error(seat.retry_after)
        attempt = _Attempt(email, ip, ticket, seat)
        try:
            pair = await self._verify(attempt, row, password, totp_code)
            attempt.outcome = "success"
            return pair
        finally:
            await self._settle(attempt, row)

    async def _verify(
        self, attempt: _Attempt, row: Any, password: str, totp_code: str | None
    ) -> TokenPair:
        good = await self.passwords.verify(row.password_hash if row is not None else None, password)
        second_factor_ok = True
        used_recovery: int | None = None
        if good and row is not None and row.totp_enabled:
            if not totp_code:
                # The password was right: not a failed guess (a wrong code below is one).
                raise ApiError(401, "totp_required", "This account needs a TOTP or recovery code")
            second_factor_ok, used_recovery = await self._check_second_factor(
                int(row.id), row.totp_secret, totp_code
            )
        if row is None or not good or not second_factor_ok or not row.active:
            attempt.outcome = "failed"
            await self._login_failed(
                attempt,
                row,
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
        change_required = row.password_changed_at is None or password == DEFAULT_ADMIN_PASSWORD
        ip = attempt.ip
        release = self._seat_release(attempt)

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
            release(dal)  # this attempt was no failure: its account-wide seat goes back
            state = store.user_state(dal, user_id)
            audit_self(
                dal,
                "login",
                user_id,
                ip,
                details={
                    "recovery_code": used_recovery is not None,
                    "password_change_required": change_required,
                },
            )
            return self._new_refresh(dal, user_id, family), state

        refresh, state = await self.db.run(work)
        attempt.seat = AccountSeat(None, 0)  # released with the login above
        assert state is not None
        self.cache.users[user_id] = state
        return TokenPair(
            self.jwt.issue(user_id, family, state.scopes, state.stamp),
            refresh,
            self.jwt.ttl,
            user_id,
            family,
            state.stamp,
            change_required,
        )

    def _seat_release(self, attempt: _Attempt) -> Callable[[Dal], None]:
        key = store.email_key(attempt.email)
        start = attempt.seat.window_start

        def release(dal: Dal) -> None:
            if start is not None:
                store.release_login_seat(dal, key, start)

        return release

    async def _settle(self, attempt: _Attempt, row: Any) -> None:
        """A failure keeps what it counted; anything else gives its seats back (a success
        also starts its own (email, source) window over — nobody else's)."""
        if attempt.outcome == "failed":
            return
        if attempt.outcome == "success":
            self.limiter.succeeded(attempt.ticket)
        else:
            self.limiter.release(attempt.ticket)
        if attempt.seat.window_start is not None:
            await self.db.run(self._seat_release(attempt))

    async def _login_failed(self, attempt: _Attempt, row: Any, reason: str | None) -> None:
        """Audit the failure; when it filled a window, audit the lockout too. Known and
        unknown emails run the same statements."""
        seat, ticket, ip = attempt.seat, attempt.ticket, attempt.ip
        locked_everywhere = seat.window_start is not None and seat.attempts >= (
            self.limits.per_account
        )
        until = (
            seat.window_start + timedelta(seconds=ACCOUNT_WINDOW)
            if seat.window_start is not None
            else None
        )
        target = f"user:{row.id}" if row is not None else ""

        def work(dal: Dal) -> None:
            details: dict[str, Any] = {"email": attempt.email[:255]}
            if reason:
                details["reason"] = reason
            store.add_audit(
                dal, "login_failed", success=False, target=target, ip=ip, details=details
            )
            if ticket.fills_pair:
                store.add_audit(
                    dal, "lockout", success=False, target=target, ip=ip,
                    details={**details, "scope": "source"},
                )
            if locked_everywhere:
                store.mark_locked(dal, attempt.email, until)
                store.add_audit(
                    dal, "lockout", success=False, target=target, ip=ip,
                    details={**details, "scope": "account"},
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
