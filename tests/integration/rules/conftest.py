"""Fixtures for the rule-store suite: fresh databases on each backend."""

from __future__ import annotations

from tests.support.databases import db_env, sqlite_env

__all__ = ["db_env", "sqlite_env"]
