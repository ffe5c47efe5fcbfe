"""SECRET_KEY: from the environment, else generated once into FLOE_DATA_DIR (mode 0600)."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from app.config import Settings

__all__ = ["resolve_secret_key"]

log = logging.getLogger(__name__)

SECRET_FILE = "secret_key"  # noqa: S105 - a file name


def resolve_secret_key(settings: Settings) -> str:
    """Blocking file I/O: called once at start-up, before the loop serves requests."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.data_dir) / SECRET_FILE
    if path.is_file():
        value = path.read_text().strip()
        if len(value) >= 32:
            return value
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    os.chmod(path, 0o600)
    log.warning("SECRET_KEY is not set: generated one into %s (mode 0600)", path)
    return value
