"""First-start provisioning: built-in roles, the first admin and the local dataplane key.

`ensure_defaults` is also what `floe db init` calls. `provision_api_key` lets other layers'
tests mint real keys through the same code path as the REST API.

The first admin's password (only when there are no users at all): FLOE_ENV=development keeps
the documented `admin123`; production takes FLOE_ADMIN_PASSWORD, else generates one and shows
it once — on the terminal when stderr is one, else in a 0600 file in the data directory
(a service's stderr is its log, and JSON log lines get shipped and kept). The password never
goes through `logging`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from quart import Quart

from app.config import Settings
from app.db.errors import IntegrityError
from app.identity import store
from app.identity.apikeys import hash_key, parse_key
from app.identity.passwords import Passwords
from app.identity.records import utcnow
from app.nodeid import local_key_pattern
from app.runtime import get_runtime

__all__ = [
    "DEFAULT_ADMIN_EMAIL",
    "DEFAULT_ADMIN_PASSWORD",
    "INITIAL_PASSWORD_FILE",
    "LOCAL_DATAPLANE_KEY_NAME",
    "ensure_dataplane_key",
    "ensure_defaults",
    "ensure_defaults_sync",
    "first_admin_password",
    "provision_api_key",
    "reveal_password",
]

log = logging.getLogger(__name__)

DEFAULT_ADMIN_EMAIL = "admin@localhost.local"
DEFAULT_ADMIN_PASSWORD = "admin123"  # noqa: S105 - documented development default
LOCAL_DATAPLANE_KEY_NAME = "local-dataplane"
DATAPLANE_KEY_FILE = "dataplane.key"
INITIAL_PASSWORD_FILE = "initial_admin_password"  # noqa: S105 - a file name

Dal = Any


def ensure_defaults_sync(
    dal: Dal,
    password_hash: str,
    *,
    origin: str = "development",
    chosen: bool = False,
    shown: str | None = None,
) -> bool:
    """Built-in roles always; the first admin only when there are no users. True if created.

    `origin` (development | environment | generated) and `shown` (terminal | file) go into
    the audit row; `chosen` marks a password its holder picked (no change asked)."""
    store.ensure_builtin_roles(dal)
    if dal(dal.auth_user.id > 0).count():
        return False
    user_id = store.insert_user(
        dal, email=DEFAULT_ADMIN_EMAIL, password_hash=password_hash,
        role_ids=[store.roles_by_name(dal, ["admin"])["admin"].id],
        display_name="Administrator", confirmed=True, password_chosen=chosen)
    details = {"password": origin, **({"shown": shown} if shown else {})}
    store.add_audit(dal, "default_admin_create", target=f"user:{user_id}", details=details)
    return True


def first_admin_password(settings: Settings) -> tuple[str, str]:
    """(password, origin) for the first admin, per FLOE_ENV and FLOE_ADMIN_PASSWORD."""
    if settings.development:
        return DEFAULT_ADMIN_PASSWORD, "development"
    if settings.admin_password:
        return settings.admin_password, "environment"
    return secrets.token_urlsafe(18), "generated"


def reveal_password(
    settings: Settings, password: str, where: str, stream: TextIO | None = None
) -> None:
    """Show a generated password once: on the terminal, or in INITIAL_PASSWORD_FILE (0600)
    with a log line naming the file. Blocking I/O: call it in a thread."""
    if where == "terminal":
        out = stream or sys.stderr
        out.write(
            "\n  floe: created the first admin account\n"
            f"    email:    {DEFAULT_ADMIN_EMAIL}\n"
            f"    password: {password}\n"
            "  It is shown once and never logged. Log in and change it.\n\n"
        )
        out.flush()
        return
    path = Path(settings.data_dir) / INITIAL_PASSWORD_FILE
    _write_secret_file(path, password)
    log.warning(
        "created the first admin %s with a generated password, written to %s (mode 0600): "
        "log in, change it, then delete the file",
        DEFAULT_ADMIN_EMAIL,
        path,
    )


async def ensure_defaults(db: Any, settings: Settings, passwords: Passwords | None = None) -> bool:
    """Async entry point (start-up and `floe db init`). Hashes and shows a password only
    when there is no user yet."""
    if await db.run(lambda dal: dal(dal.auth_user.id > 0).count()):
        await db.run(store.ensure_builtin_roles)
        return False
    hasher = passwords or Passwords(settings.extra.get("FLOE_ARGON2_PROFILE", "default"))
    password, origin = first_admin_password(settings)
    password_hash = await hasher.hash(password)
    shown = None
    if origin == "generated":
        shown = "terminal" if sys.stderr.isatty() else "file"

    def work(dal: Dal) -> bool:
        return ensure_defaults_sync(
            dal, password_hash, origin=origin, chosen=origin == "environment", shown=shown
        )

    try:
        created: bool = await db.run(work)
    except IntegrityError:  # another instance created it at the same moment
        return False
    if not created:
        return False
    if shown is not None:
        await asyncio.to_thread(reveal_password, settings, password, shown)
    elif origin == "development":
        log.warning(
            "FLOE_ENV=development: created the default admin %s with the documented "
            "development password; never run production this way",
            DEFAULT_ADMIN_EMAIL,
        )
    else:
        log.info(
            "created the first admin %s (password from FLOE_ADMIN_PASSWORD)", DEFAULT_ADMIN_EMAIL
        )
    return created


def _write_secret_file(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


async def ensure_dataplane_key(app: Quart) -> Path:
    """Keep a live `local-dataplane` key (dataplane:write, bound to this host's default node
    id and the demo ids made from it: `app.nodeid.local_key_pattern`) and its plaintext in
    the data dir; re-minted when missing, revoked or bound elsewhere (e.g. a key from before
    node binding, or FLOE_NODE_ID changed)."""
    runtime = get_runtime(app)
    service = runtime.components["identity"]
    path = Path(runtime.settings.data_dir) / DATAPLANE_KEY_FILE
    node = local_key_pattern(runtime.settings.extra)  # the local dataplane's and demos' ids
    current = await asyncio.to_thread(_read, path)
    parsed = parse_key(current) if current else None
    if parsed is not None:
        rows = await service.db.run(lambda dal: store.api_key_by_prefix(dal, parsed.prefix))
        now = utcnow()
        if any(
            row.revoked_at is None
            and row.key_hash == hash_key(parsed.full)
            and (row.expires_at is None or row.expires_at > now)
            and row.name == LOCAL_DATAPLANE_KEY_NAME
            and row.node_id == node
            for row in rows
        ):
            return path
    _, plain = await service.create_api_key(
        LOCAL_DATAPLANE_KEY_NAME, ["dataplane:write"], None, actor=None, ip="local", node_id=node
    )
    await asyncio.to_thread(_write_secret_file, path, plain)
    log.info("provisioned the local dataplane API key into %s (mode 0600)", path)
    return path


async def provision_api_key(
    app: Quart,
    name: str,
    scopes: list[str] | tuple[str, ...],
    expires_at: datetime | None = None,
    node_id: str | None = None,
) -> str:
    """Mint an API key with `scopes` (no owner) and return its plaintext; `node_id` binds a
    dataplane:write key to the node id (or `*` pattern) it may claim."""
    service = get_runtime(app).components["identity"]
    _, plain = await service.create_api_key(
        name, list(scopes), expires_at, actor=None, ip="local", node_id=node_id
    )
    key: str = plain
    return key
