"""The audit log (table `audit_log`): who changed what, from where. Written in the same
transaction as the change it records; read by `GET /api/v2/audit`."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from app.db.schema import utcnow

__all__ = ["AuditEntry", "add_audit", "list_audit"]

Dal = Any  # pydal.DAL: untyped library


@dataclass(slots=True, frozen=True)
class AuditEntry:
    id: int
    at: dt.datetime
    action: str
    success: bool
    actor_user_id: int | None
    actor_client_id: int | None
    target: str
    ip: str
    details: dict[str, Any]


def add_audit(
    dal: Dal,
    action: str,
    *,
    success: bool = True,
    actor_user_id: int | None = None,
    actor_client_id: int | None = None,
    target: str = "",
    ip: str = "",
    details: dict[str, Any] | None = None,
) -> None:
    dal.audit_log.insert(
        at=utcnow(),
        actor_user_id=actor_user_id,
        actor_client_id=actor_client_id,
        action=action[:64],
        target=target[:255],
        ip=ip[:64],
        details=json.dumps(details or {}, default=str),
        success=success,
    )


def _details(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {"unparsed": text}
    return value if isinstance(value, dict) else {"value": value}


def list_audit(
    dal: Dal,
    *,
    action: str | None = None,
    actor_user_id: int | None = None,
    target: str | None = None,
    since: dt.datetime | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[AuditEntry], int]:
    """Newest first, filtered; returns (page, total matching)."""
    table = dal.audit_log
    query = table.id > 0
    if action:
        query &= table.action == action
    if actor_user_id is not None:
        query &= table.actor_user_id == actor_user_id
    if target:
        query &= table.target == target
    if since is not None:
        query &= table.at >= since
    total = dal(query).count()
    rows = dal(query).select(orderby=~table.id, limitby=(offset, offset + limit))
    return [
        AuditEntry(
            id=int(row.id),
            at=row.at,
            action=row.action,
            success=bool(row.success),
            actor_user_id=row.actor_user_id,
            actor_client_id=row.actor_client_id,
            target=row.target or "",
            ip=row.ip or "",
            details=_details(row.details),
        )
        for row in rows
    ], int(total)
