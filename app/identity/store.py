"""Units of work over the control-plane schema: plain functions `fn(dal, ...)`.

Each function is run by `Database.run` in a worker thread as ONE transaction, so callers
compose what must be atomic into a single function. Only this module touches PyDAL rows.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.db.audit import add_audit
from app.identity.records import ApiKeyRecord, RoleRecord, TeamRecord, UserRecord, UserState, utcnow

__all__ = [
    "AccountSeat",
    "add_audit",
    "api_key_by_id",
    "api_key_by_prefix",
    "claim_refresh",
    "clear_login_seat",
    "count_login_seats",
    "email_key",
    "ensure_builtin_roles",
    "insert_api_key",
    "insert_user",
    "list_api_keys",
    "list_roles",
    "list_teams",
    "list_users",
    "live_key_count",
    "login_seat",
    "mark_locked",
    "prune_login_seats",
    "release_login_seat",
    "reserve_login_seat",
    "revoke_refresh_family",
    "role_by_id",
    "role_by_name",
    "roles_by_name",
    "set_user_roles",
    "team_member_ids",
    "team_record",
    "team_resources",
    "team_role_scopes",
    "touch_api_keys",
    "user_by_email",
    "user_record",
    "user_row_by_email",
    "user_row_by_id",
    "user_state",
]

Dal = Any  # pydal.DAL: untyped library


def _split(scopes: str | None) -> list[str]:
    return sorted(set((scopes or "").split()))


# --- audit -----------------------------------------------------------------------------


# --- roles -----------------------------------------------------------------------------


def _role(row: Any) -> RoleRecord:
    return RoleRecord(
        id=int(row.id),
        name=row.name,
        description=row.description or "",
        scopes=_split(row.scopes),
        builtin=bool(row.builtin),
        level=row.level or "global",
    )


def ensure_builtin_roles(dal: Dal) -> None:
    """Create missing built-in roles and keep their scopes in step with the catalogue."""
    from app.identity.scopes import BUILTIN_ROLES

    for role in BUILTIN_ROLES:
        scopes = " ".join(sorted(role.scopes))
        row = dal(dal.auth_role.name == role.name).select().first()
        if row is None:
            dal.auth_role.insert(
                name=role.name,
                description=role.description,
                scopes=scopes,
                builtin=True,
                level=role.level,
                created_at=utcnow(),
            )
        elif row.scopes != scopes or not row.builtin:
            row.update_record(scopes=scopes, builtin=True, level=role.level)


def list_roles(dal: Dal, level: str | None = None) -> list[RoleRecord]:
    query = dal.auth_role.id > 0
    if level:
        query &= dal.auth_role.level == level
    return [_role(row) for row in dal(query).select(orderby=dal.auth_role.id)]


def role_by_id(dal: Dal, role_id: int) -> RoleRecord | None:
    row = dal(dal.auth_role.id == role_id).select().first()
    return None if row is None else _role(row)


def role_by_name(dal: Dal, name: str) -> RoleRecord | None:
    row = dal(dal.auth_role.name == name).select().first()
    return None if row is None else _role(row)


def roles_by_name(dal: Dal, names: Iterable[str]) -> dict[str, RoleRecord]:
    """The roles of `names` that exist, in one query."""
    wanted = list(set(names))
    if not wanted:
        return {}
    return {row.name: _role(row) for row in dal(dal.auth_role.name.belongs(wanted)).select()}


# --- users -----------------------------------------------------------------------------


def user_row_by_email(dal: Dal, email: str) -> Any:
    return dal(dal.auth_user.email == email.lower()).select().first()


def user_row_by_id(dal: Dal, user_id: int) -> Any:
    return dal(dal.auth_user.id == user_id).select().first()


def _user_roles(dal: Dal, user_id: int) -> list[RoleRecord]:
    rows = dal(
        (dal.auth_user_role.user_id == user_id) & (dal.auth_user_role.role_id == dal.auth_role.id)
    ).select(dal.auth_role.ALL, orderby=dal.auth_role.name)
    return [_role(row) for row in rows]


def _user_teams(dal: Dal, user_id: int) -> list[int]:
    rows = dal(dal.team_member.user_id == user_id).select(dal.team_member.team_id)
    return sorted(int(row.team_id) for row in rows)


def _user(dal: Dal, row: Any) -> UserRecord:
    user_id = int(row.id)
    return UserRecord(
        id=user_id,
        email=row.email,
        display_name=row.display_name,
        active=bool(row.active),
        confirmed_at=row.confirmed_at,
        totp_enabled=bool(row.totp_enabled),
        roles=[role.name for role in _user_roles(dal, user_id)],
        teams=_user_teams(dal, user_id),
        last_login_at=row.last_login_at,
        current_login_at=row.current_login_at,
        last_login_ip=row.last_login_ip,
        current_login_ip=row.current_login_ip,
        login_count=int(row.login_count or 0),
        locked_until=row.locked_until,
        created_at=row.created_at,
    )


def user_record(dal: Dal, user_id: int) -> UserRecord | None:
    row = user_row_by_id(dal, user_id)
    return None if row is None else _user(dal, row)


def user_by_email(dal: Dal, email: str) -> UserRecord | None:
    row = user_row_by_email(dal, email)
    return None if row is None else _user(dal, row)


# The resource type whose grants restrict what a user sees of the dataplane (node ids).
NODE_RESOURCE = "node"


def _node_scopes(dal: Dal, user_id: int) -> dict[str, frozenset[str]]:
    """Per node id, the scopes the user holds there: the roles of its own grants on
    `node/<id>`, and the team role of every team it belongs to that holds the node."""
    out: dict[str, set[str]] = {}
    own = dal(
        (dal.resource_grant.user_id == user_id)
        & (dal.resource_grant.resource_type == NODE_RESOURCE)
        & (dal.resource_grant.role_id == dal.auth_role.id)
    ).select(dal.resource_grant.resource_id, dal.auth_role.scopes)
    for row in own:
        out.setdefault(row.resource_grant.resource_id, set()).update(_split(row.auth_role.scopes))
    through_teams = dal(
        (dal.team_member.user_id == user_id)
        & (dal.team_member.role_id == dal.auth_role.id)
        & (dal.team_resource.team_id == dal.team_member.team_id)
        & (dal.team_resource.resource_type == NODE_RESOURCE)
    ).select(dal.team_resource.resource_id, dal.auth_role.scopes)
    for row in through_teams:
        out.setdefault(row.team_resource.resource_id, set()).update(_split(row.auth_role.scopes))
    return {node: frozenset(scopes) for node, scopes in out.items()}


def team_resources(dal: Dal, team_id: int) -> list[dict[str, Any]]:
    rows = dal(dal.team_resource.team_id == team_id).select(orderby=dal.team_resource.id)
    return [{"id": int(r.id), "resource_type": r.resource_type, "resource_id": r.resource_id,
             "created_at": r.created_at} for r in rows]


def team_member_ids(dal: Dal, team_id: int) -> list[int]:
    rows = dal(dal.team_member.team_id == team_id).select(dal.team_member.user_id)
    return sorted(int(row.user_id) for row in rows)


def team_role_scopes(dal: Dal, team_id: int) -> frozenset[str]:
    """Every scope the team's members hold through their team roles."""
    rows = dal(
        (dal.team_member.team_id == team_id) & (dal.team_member.role_id == dal.auth_role.id)
    ).select(dal.auth_role.scopes)
    return frozenset(scope for row in rows for scope in _split(row.scopes))


def user_state(dal: Dal, user_id: int) -> UserState | None:
    row = user_row_by_id(dal, user_id)
    if row is None:
        return None
    scopes: set[str] = set()
    for role in _user_roles(dal, user_id):
        scopes.update(role.scopes)
    return UserState(
        id=user_id,
        email=row.email,
        active=bool(row.active),
        scopes=frozenset(scopes),
        teams=frozenset(_user_teams(dal, user_id)),
        node_scopes=_node_scopes(dal, user_id),
        stamp=(row.fs_uniquifier or "")[:16],
    )


def list_users(
    dal: Dal, *, email: str | None, active: bool | None, role: str | None, offset: int, limit: int
) -> tuple[list[UserRecord], int]:
    query = dal.auth_user.id > 0
    if email:
        query &= dal.auth_user.email.contains(email.lower())
    if active is not None:
        query &= dal.auth_user.active == active
    if role:
        sub = dal(
            (dal.auth_user_role.role_id == dal.auth_role.id) & (dal.auth_role.name == role)
        )._select(dal.auth_user_role.user_id)
        query &= dal.auth_user.id.belongs(sub)
    total = dal(query).count()
    rows = dal(query).select(orderby=dal.auth_user.id, limitby=(offset, offset + limit))
    return [_user(dal, row) for row in rows], int(total)


def insert_user(
    dal: Dal,
    *,
    email: str,
    password_hash: str,
    role_ids: Iterable[int],
    display_name: str | None,
    confirmed: bool,
    password_chosen: bool,
) -> int:
    """A new active user with these roles. `password_chosen`: its holder picked the password
    (else someone else set it, and a change is asked at every login)."""
    now = utcnow()
    user_id = int(dal.auth_user.insert(
        email=email,
        password_hash=password_hash,
        active=True,
        fs_uniquifier=new_uniquifier(),
        display_name=display_name,
        confirmed_at=now if confirmed else None,
        totp_enabled=False,
        login_count=0,
        failed_logins=0,
        created_at=now,
        updated_at=now,
        password_changed_at=now if password_chosen else None,
    ))
    set_user_roles(dal, user_id, role_ids)
    return user_id


def new_uniquifier() -> str:
    return secrets.token_hex(32)


def set_user_roles(dal: Dal, user_id: int, role_ids_: Iterable[int]) -> None:
    dal(dal.auth_user_role.user_id == user_id).delete()
    for role_id in sorted(set(role_ids_)):
        dal.auth_user_role.insert(user_id=user_id, role_id=role_id)


# --- teams -----------------------------------------------------------------------------


def team_record(dal: Dal, team_id: int) -> TeamRecord | None:
    row = dal(dal.team.id == team_id).select().first()
    if row is None:
        return None
    members = dal(
        (dal.team_member.team_id == team_id)
        & (dal.team_member.user_id == dal.auth_user.id)
        & (dal.team_member.role_id == dal.auth_role.id)
    ).select(dal.auth_user.id, dal.auth_user.email, dal.auth_role.name, orderby=dal.auth_user.id)
    return TeamRecord(
        id=int(row.id),
        name=row.name,
        description=row.description or "",
        members=[
            {"user_id": int(m.auth_user.id), "email": m.auth_user.email, "role": m.auth_role.name}
            for m in members
        ],
    )


def list_teams(
    dal: Dal, *, name: str | None, offset: int, limit: int
) -> tuple[list[TeamRecord], int]:
    query = dal.team.id > 0
    if name:
        query &= dal.team.name.contains(name)
    total = int(dal(query).count())
    rows = dal(query).select(dal.team.id, orderby=dal.team.id, limitby=(offset, offset + limit))
    teams = [team_record(dal, int(row.id)) for row in rows]
    return [team for team in teams if team is not None], total


# --- API keys --------------------------------------------------------------------------


def _key(row: Any) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=int(row.id),
        name=row.name,
        prefix=row.key_prefix,
        key_hash=row.key_hash,
        scopes=frozenset(_split(row.scopes)),
        owner_user_id=None if row.owner_user_id is None else int(row.owner_user_id),
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
        created_at=row.created_at,
        node_id=row.node_id,
    )


def insert_api_key(
    dal: Dal,
    *,
    name: str,
    prefix: str,
    key_hash: str,
    scopes: Iterable[str],
    owner_user_id: int | None,
    expires_at: datetime | None,
    rotated_from_id: int | None = None,
    node_id: str | None = None,
) -> ApiKeyRecord:
    key_id = dal.api_client.insert(
        name=name,
        key_prefix=prefix,
        key_hash=key_hash,
        scopes=" ".join(sorted(set(scopes))),
        owner_user_id=owner_user_id,
        expires_at=expires_at,
        created_at=utcnow(),
        rotated_from_id=rotated_from_id,
        node_id=node_id,
    )
    record = api_key_by_id(dal, int(key_id))
    assert record is not None
    return record


def api_key_by_id(dal: Dal, key_id: int) -> ApiKeyRecord | None:
    row = dal(dal.api_client.id == key_id).select().first()
    return None if row is None else _key(row)


def api_key_by_prefix(dal: Dal, prefix: str) -> list[ApiKeyRecord]:
    return [_key(row) for row in dal(dal.api_client.key_prefix == prefix).select()]


def list_api_keys(
    dal: Dal,
    *,
    owner_user_id: int | None,
    name: str | None,
    include_revoked: bool,
    offset: int,
    limit: int,
    visible: Callable[[ApiKeyRecord], bool] | None = None,
) -> tuple[list[ApiKeyRecord], int]:
    """A page of keys; with `visible`, only the keys it admits (filtered before paging, so
    `total` counts what the caller may see)."""
    query = dal.api_client.id > 0
    if owner_user_id is not None:
        query &= dal.api_client.owner_user_id == owner_user_id
    if name:
        query &= dal.api_client.name.contains(name)
    if not include_revoked:
        query &= dal.api_client.revoked_at == None  # noqa: E711 - PyDAL builds IS NULL
    if visible is None:
        total = dal(query).count()
        rows = dal(query).select(orderby=dal.api_client.id, limitby=(offset, offset + limit))
        return [_key(row) for row in rows], int(total)
    keys = [key for key in map(_key, dal(query).select(orderby=dal.api_client.id))
            if visible(key)]
    return keys[offset:offset + limit], len(keys)


def live_key_count(dal: Dal, owner_user_id: int) -> int:
    """Unrevoked keys the user owns (bounded per user: MAX_KEYS_PER_OWNER in keys.py)."""
    return int(dal((dal.api_client.owner_user_id == owner_user_id)
                   & (dal.api_client.revoked_at == None)).count())  # noqa: E711


def touch_api_keys(dal: Dal, used: dict[int, datetime]) -> None:
    """Batched last-used update (one transaction for everything seen since the last flush)."""
    for key_id, when in used.items():
        dal(dal.api_client.id == key_id).update(last_used_at=when)


# --- refresh tokens --------------------------------------------------------------------


def claim_refresh(dal: Dal, token_id: int, now: datetime) -> bool:
    """Mark a refresh token used, compare-and-set: True for exactly one of any number of
    concurrent claims. The conditional UPDATE takes the row lock and re-checks the row as
    committed (PostgreSQL READ COMMITTED, InnoDB current read, SQLite's single writer), so
    a second claimer sees `used_at` set and matches no row."""
    table = dal.refresh_token
    claimed = dal(
        (table.id == token_id)
        & (table.used_at == None)  # noqa: E711 - PyDAL builds IS NULL
        & (table.revoked_at == None)  # noqa: E711
    ).update(used_at=now)
    return int(claimed or 0) == 1


def revoke_refresh_family(dal: Dal, family: str, now: datetime, first_id: int) -> None:
    """Revoke every live token of `family`. The presented token's row (`first_id`) is locked
    first, by primary key, as `claim_refresh` does: concurrent revokers then queue on that
    row instead of deadlocking on InnoDB's family index (measured on MariaDB)."""
    table = dal.refresh_token
    dal(table.id == first_id).update(revoked_at=now)
    dal((table.family_id == family) & (table.revoked_at == None)).update(revoked_at=now)  # noqa: E711


# --- the account-wide login ceiling --------------------------------------------------------


@dataclass(slots=True, frozen=True)
class AccountSeat:
    """One login attempt counted against an email's window (or refused: `retry_after`)."""

    window_start: datetime | None  # None: not tracked (the table was full)
    attempts: int
    retry_after: int = 0


def email_key(email: str) -> str:
    """What the ceiling is keyed by: no raw address (known or mistyped) is stored."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def reserve_login_seat(
    dal: Dal, key: str, now: datetime, window: timedelta, ceiling: int, *, may_insert: bool
) -> AccountSeat:
    """Count one attempt for `key` unless its window already holds `ceiling` attempts.

    Conditional UPDATEs (start a new window when the old one ended; else add one while
    below the ceiling) take the row lock and re-check the committed row, so concurrent
    instances never both take the last seat. A concurrent first insert for the same key
    raises IntegrityError: run the unit again."""
    table = dal.login_throttle
    now = now.replace(microsecond=0)  # every backend stores whole seconds alike
    cutoff = now - window
    row = dal(table.email_hash == key).select(table.window_start, table.attempts).first()
    if row is None:
        if not may_insert:
            return AccountSeat(None, 0)
        table.insert(email_hash=key, window_start=now, attempts=1)
        return AccountSeat(now, 1)
    mine = table.email_hash == key
    if dal(mine & (table.window_start <= cutoff)).update(window_start=now, attempts=1):
        return AccountSeat(now, 1)
    counted = dal(mine & (table.window_start > cutoff) & (table.attempts < ceiling)).update(
        attempts=table.attempts + 1
    )
    current = dal(mine).select(table.window_start, table.attempts).first()
    if counted:
        return AccountSeat(current.window_start, int(current.attempts))
    wait = (current.window_start + window - now).total_seconds()
    return AccountSeat(current.window_start, int(current.attempts), max(1, math.ceil(wait)))


def release_login_seat(dal: Dal, key: str, window_start: datetime) -> None:
    """Give one attempt back (it succeeded), if its window is still the current one."""
    table = dal.login_throttle
    dal(
        (table.email_hash == key) & (table.window_start == window_start) & (table.attempts > 0)
    ).update(attempts=table.attempts - 1)


def mark_locked(dal: Dal, email: str, until: datetime | None) -> None:
    """Show the ceiling's lock on the account (`locked_until`); no row for unknown emails,
    same statement."""
    dal(dal.auth_user.email == email.lower()).update(locked_until=until)


def clear_login_seat(dal: Dal, key: str) -> int:
    return int(dal(dal.login_throttle.email_hash == key).delete() or 0)


def prune_login_seats(dal: Dal, cutoff: datetime) -> int:
    """Drop rows whose window ended before `cutoff`; returns how many."""
    return int(dal(dal.login_throttle.window_start <= cutoff).delete() or 0)


def count_login_seats(dal: Dal) -> int:
    return int(dal(dal.login_throttle.id > 0).count())


def login_seat(dal: Dal, key: str) -> tuple[datetime, int] | None:
    """(window start, attempts) of `key`'s current row, if any."""
    table = dal.login_throttle
    row = dal(table.email_hash == key).select(table.window_start, table.attempts).first()
    return None if row is None else (row.window_start, int(row.attempts or 0))
