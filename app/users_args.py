"""`floe users` arguments, apart from app/users_cli.py so that building the CLI's parser (for
every command, `floe observe` included) does not import the database and identity layers."""

from __future__ import annotations

from typing import Any

__all__ = ["add_users_parser"]


def add_users_parser(sub: Any) -> None:
    users = sub.add_parser(
        "users", help="manage accounts from the server (list, create, set-password, unlock, "
        "deactivate); passwords from a prompt or stdin"
    )
    cmd = users.add_subparsers(dest="users_command", required=True)
    listing = cmd.add_parser("list", help="every account, with roles and lock state")
    listing.add_argument("--json", action="store_true", help="JSON instead of a table")
    create = cmd.add_parser("create", help="a confirmed, active account")
    create.add_argument("email")
    create.add_argument(
        "--role", action="append", default=None, help="role name (repeatable; default viewer)"
    )
    create.add_argument("--name", default=None, help="display name")
    for name, text in (
        ("set-password", "set a new password (the holder must change it at next login)"),
        ("unlock", "lift the account's login lock"),
        ("deactivate", "disable the account and end its sessions"),
    ):
        cmd.add_parser(name, help=text).add_argument("email")
