"""First-start provisioning: built-in roles, the default admin and the local dataplane key.

`ensure_defaults` is also what `floe db init` calls. `provision_api_key` lets other layers'
tests mint real keys through the same code path as the REST API.
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from quart import Quart

from app.config import Settings
from app.identity import store
from app.identity.apikeys import hash_key, parse_key
from app.identity.passwords import Passwords
from app.identity.records import utcnow
from app.nodeid import default_node_id
from app.runtime import get_runtime

__all__ = [
    "DEFAULT_ADMIN_EMAIL",
    "DEFAULT_ADMIN_PASSWORD",
    "LOCAL_DATAPLANE_KEY_NAME",
    "ensure_dataplane_key",
    "ensure_defaults",
    "ensure_defaults_sync",
    "provision_api_key",
]

log = logging.getLogger(__name__)

DEFAULT_ADMIN_EMAIL = "admin@localhost.local"
DEFAULT_ADMIN_PASSWORD = "admin123"  # noqa: S105 - documented first-start default
LOCAL_DATAPLANE_KEY_NAME = "local-dataplane"
DATAPLANE_KEY_FILE = "dataplane.key"

Dal = Any


def ensure_defaults_sync(dal: Dal, password_hash: str) -> bool:
    """Built-in roles always; the default admin only when there are no users. True if created."""
    store.ensure_builtin_roles(dal)
    if dal(dal.auth_user.id > 0).count():
        return False
    now = utcnow()
    user_id = dal.auth_user.insert(
        email=DEFAULT_ADMIN_EMAIL,
        password_hash=password_hash,
        active=True,
        fs_uniquifier=store.new_uniquifier(),
        display_name="Administrator",
        confirmed_at=now,
        totp_enabled=False,
        login_count=0,
        failed_logins=0,
        created_at=now,
        updated_at=now,
    )
    store.set_user_roles(dal, int(user_id), [store.roles_by_name(dal, ["admin"])["admin"].id])
    store.add_audit(dal, "default_admin_create", target=f"user:{user_id}")
    return True


async def ensure_defaults(db: Any, settings: Settings, passwords: Passwords | None = None) -> bool:
    """Async entry point (start-up and `floe db init`)."""
    hasher = passwords or Passwords(settings.extra.get("FLOE_ARGON2_PROFILE", "default"))
    password_hash = await hasher.hash(DEFAULT_ADMIN_PASSWORD)
    created: bool = await db.run(lambda dal: ensure_defaults_sync(dal, password_hash))
    if created:
        log.warning("created the default admin %s — change its password", DEFAULT_ADMIN_EMAIL)
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
    id) and its plaintext in the data dir; re-minted when missing, revoked or bound elsewhere
    (e.g. a key from before node binding, or FLOE_NODE_ID changed)."""
    runtime = get_runtime(app)
    service = runtime.components["identity"]
    path = Path(runtime.settings.data_dir) / DATAPLANE_KEY_FILE
    node = default_node_id(runtime.settings.extra)  # the local dataplane's default node id
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
