"""`floe users list|create|set-password|unlock|deactivate`: the operator's way in when nobody
can log in. Talks to the database directly, with the same environment as `floe serve`
(DB_*, FLOE_DATA_DIR, SECRET_KEY, REDIS_URL), through the identity layer's operator use
cases (app/identity/operator.py), which audit every action.

Passwords are read from the terminal (asked twice) or, when stdin is not a terminal, from
its first line — never from the command line, where `ps` and shell history would keep them.
Exit codes: 0 done, 1 refused (one line on stderr), 2 usage or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import secrets
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import orjson
from pydantic import TypeAdapter, ValidationError
from redis.exceptions import RedisError

from app.api.envelope import ApiError
from app.config import Settings
from app.db.database import Database
from app.db.errors import DatabaseError
from app.db.setup import initialise_schema, wait_for_database
from app.identity.cache import IdentityCache
from app.identity.invalidation import channel_for
from app.identity.mailer import Mailer
from app.identity.operator import OperatorUseCases, OperatorUser
from app.identity.passwords import Passwords
from app.identity.secret import resolve_secret_key
from app.identity.web import Email, Password

__all__ = ["run_users"]

log = logging.getLogger(__name__)
T = TypeVar("T")


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("New password: ")
        if getpass.getpass("Again: ") != first:
            raise ApiError(422, "mismatch", "The two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _check(adapter: TypeAdapter[str], value: str, what: str) -> str:
    try:
        return adapter.validate_python(value)
    except ValidationError as error:
        reason = error.errors()[0]["msg"]
        raise ApiError(422, "invalid", f"{what}: {reason}") from None


def _publish(settings: Settings, secret: str, user_ids: list[int]) -> None:
    """Tell running instances (REDIS_URL) to drop their cached view of these users."""
    if not settings.redis_url or not user_ids:
        return
    import redis

    client = redis.Redis.from_url(settings.redis_url, socket_timeout=3)
    try:
        for user_id in user_ids:
            message = {"k": "user", "id": user_id, "o": "cli-" + secrets.token_hex(4)}
            client.publish(channel_for(secret), orjson.dumps(message))
    finally:
        client.close()


def _table(users: list[OperatorUser]) -> str:
    lines = [f"{'id':>5}  {'email':<36} {'active':<6} {'locked until':<20} roles"]
    for item in users:
        user = item.user
        locked = item.locked_until.isoformat(sep=" ", timespec="seconds") if item.locked_until \
            else "-"
        flag = " (must change password)" if item.password_change_required else ""
        lines.append(
            f"{user.id:>5}  {user.email:<36} {'yes' if user.active else 'no':<6} "
            f"{locked:<20} {','.join(user.roles) or '-'}{flag}"
        )
    return "\n".join(lines)


def _json(users: list[OperatorUser]) -> str:
    return json.dumps(
        [
            {
                "id": item.user.id,
                "email": item.user.email,
                "active": item.user.active,
                "roles": item.user.roles,
                "locked": item.locked_until is not None,
                "locked_until": item.locked_until,
                "password_change_required": item.password_change_required,
                "last_login_at": item.user.current_login_at,
            }
            for item in users
        ],
        default=str,
        indent=2,
    )


async def _with_service(
    settings: Settings, secret: str, act: Callable[[OperatorUseCases], Awaitable[T]]
) -> T:
    db = Database(settings)
    await db.start()
    try:
        passwords = await asyncio.to_thread(
            Passwords, settings.extra.get("FLOE_ARGON2_PROFILE", "default")
        )
        service = OperatorUseCases(
            settings, db, secret, passwords, IdentityCache(), Mailer(settings)
        )
        return await act(service)
    finally:
        await db.close()


def run_users(args: argparse.Namespace, settings: Settings) -> int:
    command: str = args.users_command
    email = getattr(args, "email", None)
    try:
        if email is not None:
            email = _check(TypeAdapter(Email), email, "email")
        password = None
        if command in ("create", "set-password"):
            password = _check(TypeAdapter(Password), _read_password(), "password")
        wait_for_database(settings)
        initialise_schema(settings)
        secret = resolve_secret_key(settings)

        async def act(service: OperatorUseCases) -> tuple[str, list[int]]:
            if command == "list":
                users = await service.operator_list()
                return (_json(users) if args.json else _table(users)), []
            assert email is not None
            if command == "create":
                assert password is not None
                user = await service.operator_create(
                    email, password, args.role or ["viewer"], args.name
                )
                return f"created user {user.id} {user.email} ({', '.join(user.roles)})", []
            if command == "set-password":
                assert password is not None
                user_id = await service.operator_set_password(email, password)
                return f"password set for {email}; it must be changed at next login", [user_id]
            if command == "unlock":
                await service.operator_unlock(email)
                return f"unlocked {email}", []
            user_id = await service.operator_deactivate(email)
            return f"deactivated {email}", [user_id]

        text, touched = asyncio.run(_with_service(settings, secret, act))
        try:
            _publish(settings, secret, touched)
        except RedisError as error:
            print(f"floe users {command}: done, but running instances were not told "
                  f"(Redis: {error}); they see the change after a restart", file=sys.stderr)
    except ApiError as error:
        print(f"floe users {command}: {error.message}", file=sys.stderr)
        return 1
    except DatabaseError as error:
        print(f"floe users {command}: {error}", file=sys.stderr)
        return 1
    print(text)
    return 0
