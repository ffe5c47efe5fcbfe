"""Operator use cases behind `floe users …`: the way back in when nobody can log in (a
locked-out or forgotten sole admin), run with database access instead of a token.

There is no calling user: every action is audited with no actor, ip "cli" and details
`{"via": "cli", "os_user": …}`. Changes reach a running server's caches through Redis when
REDIS_URL is set (the CLI publishes the ids these methods return); without it, a running
instance keeps its cached view of the user until it restarts — except the login lock, which
it reads from the database on every attempt (its in-memory per-source windows expire on
their own).
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.api.envelope import ApiError
from app.identity import store
from app.identity._service_core import USER_EXISTS, Dal, conflict_error, not_found
from app.identity.accounts import AccountUseCases
from app.identity.limits import ACCOUNT_WINDOW
from app.identity.records import UserRecord, utcnow

__all__ = ["OperatorUseCases", "OperatorUser", "cli_details"]

CLI_IP = "cli"


def cli_details(**extra: Any) -> dict[str, Any]:
    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for the uid (containers)
        who = "?"
    return {"via": "cli", "os_user": who, **extra}


@dataclass(slots=True)
class OperatorUser:
    """A user as `floe users list` shows it."""

    user: UserRecord
    locked_until: datetime | None  # the account-wide login ceiling's lock, if in force
    password_change_required: bool


class OperatorUseCases(AccountUseCases):
    """list / create / set-password / unlock / deactivate, without a calling principal."""

    async def operator_list(self) -> list[OperatorUser]:
        window = timedelta(seconds=ACCOUNT_WINDOW)
        ceiling = self.limits.per_account

        def work(dal: Dal) -> list[OperatorUser]:
            out: list[OperatorUser] = []
            offset = 0
            while True:
                page, total = store.list_users(
                    dal, email=None, active=None, role=None, offset=offset, limit=200
                )
                for user in page:
                    row = store.user_row_by_id(dal, user.id)
                    seat = store.login_seat(dal, store.email_key(user.email))
                    until = None
                    if seat is not None and seat[1] >= ceiling and seat[0] + window > utcnow():
                        until = seat[0] + window
                    out.append(OperatorUser(user, until, row.password_changed_at is None))
                offset += len(page)
                if not page or offset >= total:
                    return out

        result: list[OperatorUser] = await self.db.run(work)
        return result

    async def operator_create(
        self, email: str, password: str, roles: list[str], display_name: str | None
    ) -> UserRecord:
        """A confirmed, active user; the password counts as set by someone else."""
        email = email.strip().lower()
        password_hash = await self.passwords.hash(password)

        def work(dal: Dal) -> UserRecord:
            found = store.roles_by_name(dal, roles)
            missing = sorted(set(roles) - set(found))
            if missing:
                raise ApiError(422, "unknown_role", "Unknown roles: " + ", ".join(missing))
            if store.user_row_by_email(dal, email) is not None:
                raise conflict_error(USER_EXISTS)
            user_id = store.insert_user(
                dal, email=email, password_hash=password_hash,
                role_ids=[role.id for role in found.values()], display_name=display_name,
                confirmed=True, password_chosen=False)
            store.add_audit(
                dal, "user_create", target=f"user:{user_id}", ip=CLI_IP,
                details=cli_details(roles=sorted(roles)),
            )
            record = store.user_record(dal, user_id)
            assert record is not None
            return record

        record: UserRecord = await self._commit(work, conflict=USER_EXISTS)
        return record

    async def operator_set_password(self, email: str, password: str) -> int:
        """New password (change asked at next login); every session and refresh token dies."""
        password_hash = await self.passwords.hash(password)

        def work(dal: Dal) -> int:
            row = store.user_row_by_email(dal, email)
            if row is None:
                raise not_found(f"User {email}")
            self._store_password(dal, int(row.id), password_hash, by_holder=False)
            store.add_audit(
                dal, "password_reset_by_admin", target=f"user:{row.id}", ip=CLI_IP,
                details=cli_details(),
            )
            return int(row.id)

        user_id: int = await self.db.run(work)
        return user_id

    async def operator_unlock(self, email: str) -> int:
        """Lift the account-wide login lock (the database part; see the module doc)."""

        def work(dal: Dal) -> int:
            row = store.user_row_by_email(dal, email)
            if row is None:
                raise not_found(f"User {email}")
            cleared = store.clear_login_seat(dal, store.email_key(row.email))
            store.mark_locked(dal, row.email, None)
            dal(dal.auth_user.id == row.id).update(failed_logins=0)
            store.add_audit(
                dal, "user_unlock", target=f"user:{row.id}", ip=CLI_IP,
                details=cli_details(had_failures=bool(cleared)),
            )
            return int(row.id)

        user_id: int = await self.db.run(work)
        return user_id

    async def operator_deactivate(self, email: str) -> int:
        """Inactive; its refresh tokens revoked and its security stamp rotated."""

        def work(dal: Dal) -> int:
            row = store.user_row_by_email(dal, email)
            if row is None:
                raise not_found(f"User {email}")
            now = utcnow()
            row.update_record(active=False, fs_uniquifier=store.new_uniquifier(), updated_at=now)
            live = dal.refresh_token.revoked_at == None  # noqa: E711 - PyDAL IS NULL
            dal((dal.refresh_token.user_id == row.id) & live).update(revoked_at=now)
            store.add_audit(
                dal, "user_deactivate", target=f"user:{row.id}", ip=CLI_IP,
                details=cli_details(),
            )
            return int(row.id)

        user_id: int = await self.db.run(work)
        return user_id
