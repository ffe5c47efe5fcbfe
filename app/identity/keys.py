"""API-key (api_client) use cases: create, read, rotate, revoke. Key material is in apikeys.py.

Every use case asks the policy (`policy.py`): a key is reached only by its owner or a
`clients:admin` holder, and only by a caller whose scopes cover the key's — so a narrow key
can neither rotate (and so read) nor revoke nor list a broader key of the same owner.
A key carrying `dataplane:write` is bound to the node id (or `*` pattern) it may claim in its
uplink Hello; other keys carry no binding.
"""

from __future__ import annotations

from datetime import datetime

from app.api.envelope import ApiError
from app.identity import store
from app.identity._service_core import (
    Dal,
    ServiceCore,
    audit,
    not_found,
    scopes_or_422,
)
from app.identity.apikeys import hash_key, new_key
from app.identity.policy import Action, Capabilities, authorize, decide
from app.identity.records import ApiKeyRecord, utcnow
from app.nodeid import MAX_NODE_ID, valid_binding
from app.types import Principal, covers

__all__ = ["MAX_KEYS_PER_OWNER", "KeyUseCases"]

# Live (unrevoked) keys one user may own; provisioned keys (no owner) are the operator's.
MAX_KEYS_PER_OWNER = 100

_DATAPLANE_WRITE = "dataplane:write"


def _node_binding(scopes: frozenset[str], node_id: str | None) -> str | None:
    """The binding a new key gets: required with dataplane:write, refused without it."""
    if covers(scopes, _DATAPLANE_WRITE):
        if node_id is None:
            raise ApiError(
                422,
                "node_id_required",
                "A key with dataplane:write must name the node it speaks for: node_id is a "
                "node id, or a pattern where * stands for any characters (e.g. edge-*, or *)",
            )
        if not valid_binding(node_id):
            raise ApiError(
                422, "validation_error", f"node_id must be 1-{MAX_NODE_ID} printable characters: "
                "node ids or patterns (`*` for any characters) separated by `,`"
            )
        return node_id
    if node_id is not None:
        raise ApiError(422, "node_id_unused", "node_id only applies to keys with dataplane:write")
    return None


class KeyUseCases(ServiceCore):
    """Create, read, list, rotate and revoke API keys."""

    async def create_api_key(
        self,
        name: str,
        scopes: list[str],
        expires_at: datetime | None,
        *,
        actor: Principal | None,
        ip: str,
        owner_user_id: int | None = None,
        node_id: str | None = None,
    ) -> tuple[ApiKeyRecord, str]:
        chosen = scopes_or_422(scopes)
        binding = _node_binding(chosen, node_id)
        authorize(actor, Action.KEY_CREATE, granting=Capabilities(chosen), binding=binding)
        if expires_at is not None and expires_at <= utcnow():
            raise ApiError(422, "invalid_expiry", "expires_at must be in the future")
        plain, prefix = new_key()

        def work(dal: Dal) -> ApiKeyRecord:
            if owner_user_id is not None and (
                store.live_key_count(dal, owner_user_id) >= MAX_KEYS_PER_OWNER
            ):
                raise ApiError(
                    409,
                    "key_limit",
                    f"A user may own at most {MAX_KEYS_PER_OWNER} live API keys; revoke one",
                )
            record = store.insert_api_key(
                dal,
                name=name,
                prefix=prefix,
                key_hash=hash_key(plain),
                scopes=chosen,
                owner_user_id=owner_user_id,
                expires_at=expires_at,
                node_id=binding,
            )
            details: dict[str, object] = {"name": name, "scopes": sorted(chosen)}
            if binding is not None:
                details["node_id"] = binding
            audit(dal, "api_key_create", actor, ip, f"client:{record.id}", details=details)
            return record

        record: ApiKeyRecord = await self.db.run(work)
        self.cache.forget_key(prefix)
        return record, plain

    @staticmethod
    def _reach(dal: Dal, key_id: int, actor: Principal | None, action: Action) -> ApiKeyRecord:
        """The key, if `actor` may do `action` to it (404 if unknown, 403 if out of reach)."""
        key = store.api_key_by_id(dal, key_id)
        if key is None:
            raise not_found("API key")
        authorize(actor, action, target=Capabilities(key.scopes), owner_user_id=key.owner_user_id,
                  binding=key.node_id)
        return key

    async def get_api_key(self, key_id: int, *, actor: Principal) -> ApiKeyRecord:
        key: ApiKeyRecord = await self.db.run(
            lambda dal: self._reach(dal, key_id, actor, Action.KEY_READ)
        )
        return key

    async def list_api_keys(
        self,
        *,
        actor: Principal,
        mine: bool,
        name: str | None,
        include_revoked: bool,
        offset: int,
        limit: int,
    ) -> tuple[list[ApiKeyRecord], int]:
        """Keys the caller may read: its own (or, with clients:admin and not `mine`, every
        key), leaving out any key whose scopes the caller does not cover."""
        everyone = actor.has("clients:admin") and not mine
        if not everyone and actor.user_id is None:
            return [], 0  # an ownerless key owns nothing

        def visible(key: ApiKeyRecord) -> bool:
            return decide(actor, Action.KEY_READ, target=Capabilities(key.scopes),
                          owner_user_id=key.owner_user_id, binding=key.node_id).allowed

        result: tuple[list[ApiKeyRecord], int] = await self.db.run(
            lambda dal: store.list_api_keys(
                dal,
                owner_user_id=None if everyone else actor.user_id,
                name=name,
                include_revoked=include_revoked,
                offset=offset,
                limit=limit,
                visible=visible,
            )
        )
        return result

    async def rotate_api_key(
        self, key_id: int, *, actor: Principal | None, ip: str
    ) -> tuple[ApiKeyRecord, str]:
        plain, prefix = new_key()

        def work(dal: Dal) -> tuple[ApiKeyRecord, str]:
            old = self._reach(dal, key_id, actor, Action.KEY_ROTATE)
            if old.revoked_at is not None:
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
                node_id=old.node_id,
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
            record = self._reach(dal, key_id, actor, Action.KEY_REVOKE)
            if record.revoked_at is not None:
                raise not_found("API key")
            dal(dal.api_client.id == key_id).update(revoked_at=utcnow())
            audit(dal, "api_key_revoke", actor, ip, f"client:{key_id}")
            return record.prefix

        self.cache.forget_key(await self.db.run(work))
