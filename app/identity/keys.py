"""API-key (api_client) use cases: create, rotate, revoke. Key material is in apikeys.py."""

from __future__ import annotations

from datetime import datetime

from app.api.envelope import ApiError
from app.identity import store
from app.identity._service_core import (
    Dal,
    ServiceCore,
    audit,
    no_escalation,
    not_found,
    scopes_or_422,
)
from app.identity.apikeys import hash_key, new_key
from app.identity.records import ApiKeyRecord, utcnow
from app.types import Principal

__all__ = ["KeyUseCases"]


class KeyUseCases(ServiceCore):
    """Create, rotate and revoke API keys."""

    async def create_api_key(
        self,
        name: str,
        scopes: list[str],
        expires_at: datetime | None,
        *,
        actor: Principal | None,
        ip: str,
        owner_user_id: int | None = None,
    ) -> tuple[ApiKeyRecord, str]:
        chosen = scopes_or_422(scopes)
        no_escalation(actor, chosen, "A key cannot carry scopes its creator lacks")
        if expires_at is not None and expires_at <= utcnow():
            raise ApiError(422, "invalid_expiry", "expires_at must be in the future")
        plain, prefix = new_key()

        def work(dal: Dal) -> ApiKeyRecord:
            record = store.insert_api_key(
                dal,
                name=name,
                prefix=prefix,
                key_hash=hash_key(plain),
                scopes=chosen,
                owner_user_id=owner_user_id,
                expires_at=expires_at,
            )
            audit(
                dal,
                "api_key_create",
                actor,
                ip,
                f"client:{record.id}",
                details={"name": name, "scopes": sorted(chosen)},
            )
            return record

        record: ApiKeyRecord = await self.db.run(work)
        self.cache.forget_key(prefix)
        return record, plain

    async def rotate_api_key(
        self, key_id: int, *, actor: Principal | None, ip: str
    ) -> tuple[ApiKeyRecord, str]:
        plain, prefix = new_key()

        def work(dal: Dal) -> tuple[ApiKeyRecord, str]:
            old = store.api_key_by_id(dal, key_id)
            if old is None or old.revoked_at is not None:
                raise not_found("API key")
            dal(dal.api_client.id == key_id).update(revoked_at=utcnow())
            record = store.insert_api_key(
                dal,
                name=old.name,
                prefix=prefix,
                key_hash=hash_key(plain),
                scopes=old.scopes,
                owner_user_id=old.owner_user_id,
                expires_at=old.expires_at,
                rotated_from_id=old.id,
            )
            audit(
                dal, "api_key_rotate", actor, ip, f"client:{key_id}", details={"new_id": record.id}
            )
            return record, old.prefix

        record, old_prefix = await self.db.run(work)
        self.cache.forget_key(old_prefix)
        self.cache.forget_key(prefix)
        return record, plain

    async def revoke_api_key(self, key_id: int, *, actor: Principal | None, ip: str) -> None:
        def work(dal: Dal) -> str:
            record = store.api_key_by_id(dal, key_id)
            if record is None or record.revoked_at is not None:
                raise not_found("API key")
            dal(dal.api_client.id == key_id).update(revoked_at=utcnow())
            audit(dal, "api_key_revoke", actor, ip, f"client:{key_id}")
            return record.prefix

        self.cache.forget_key(await self.db.run(work))
