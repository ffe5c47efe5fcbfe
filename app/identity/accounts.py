"""Account use cases: users, registration and email links, passwords and TOTP 2FA."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from app.api.envelope import ApiError
from app.identity import store
from app.identity._service_core import (
    USER_EXISTS,
    Dal,
    ServiceCore,
    audit,
    audit_self,
    conflict_error,
    not_found,
    role_scopes,
    roles_or_422,
    user_capabilities,
)
from app.identity.apikeys import token_hash
from app.identity.onetime import PURPOSES
from app.identity.policy import Action, Capabilities, authorize
from app.identity.records import UserRecord, utcnow
from app.identity.totp import (
    new_recovery_codes,
    new_totp_secret,
    provisioning_uri,
    verify_totp,
)
from app.types import Principal

__all__ = ["AccountUseCases"]


class AccountUseCases(ServiceCore):
    """Users, passwords, one-time links and 2FA."""

    async def get_user(self, user_id: int) -> UserRecord:
        user: UserRecord | None = await self.db.run(lambda dal: store.user_record(dal, user_id))
        if user is None:
            raise not_found("User")
        return user

    async def create_user(
        self,
        email: str,
        password: str,
        roles: list[str],
        *,
        actor: Principal | None,
        ip: str,
        confirmed: bool = True,
        display_name: str | None = None,
    ) -> UserRecord:
        email = email.strip().lower()
        password_hash = await self.passwords.hash(password)

        def work(dal: Dal) -> UserRecord:
            chosen = roles_or_422(dal, roles)
            granting = Capabilities(role_scopes(chosen.values()))
            authorize(actor, Action.USER_CREATE, granting=granting)
            if store.user_row_by_email(dal, email) is not None:
                raise conflict_error(USER_EXISTS)
            # Self-registration (no actor): the holder chose the password; else someone else.
            user_id = store.insert_user(
                dal, email=email, password_hash=password_hash,
                role_ids=[role.id for role in chosen.values()], display_name=display_name,
                confirmed=confirmed, password_chosen=actor is None)
            details = {"roles": sorted(roles)}
            if actor is None:  # self-registration: the new user is its own actor
                audit_self(dal, "user_create", user_id, ip, details=details)
            else:
                audit(dal, "user_create", actor, ip, f"user:{user_id}", details=details)
            record = store.user_record(dal, user_id)
            assert record is not None
            return record

        record: UserRecord = await self._commit(work, conflict=USER_EXISTS)
        return record

    def _mail_allowed(self, ip: str) -> None:
        wait = self.mail_throttle.retry_after(ip)
        if wait:
            raise ApiError(
                429, "rate_limited", "Too many requests", headers={"Retry-After": str(wait)}
            )
        self.mail_throttle.failed(ip)  # every request counts

    async def register(self, email: str, password: str, ip: str) -> UserRecord:
        if not self.settings.registration_enabled:
            raise ApiError(403, "registration_disabled", "Self-registration is disabled")
        self._mail_allowed(ip)
        user = await self.create_user(
            email, password, ["viewer"], actor=None, ip=ip, confirmed=False
        )
        token = await self.issue_one_time("confirm", user.id)
        await self.mailer.send_link(
            user.email, "Confirm your Floe account", "/api/v2/auth/confirm", token
        )
        return user

    async def issue_one_time(self, purpose: str, user_id: int) -> str:
        token = self.onetime.issue(purpose, user_id)
        hashed = token_hash(token)

        def work(dal: Dal) -> None:
            dal.one_time_token.insert(
                purpose=purpose,
                token_hash=hashed,
                user_id=user_id,
                expires_at=utcnow() + timedelta(seconds=PURPOSES[purpose]),
            )

        await self.db.run(work)
        return token

    def _redeem_sync(self, dal: Dal, purpose: str, token: str, user_id: int) -> None:
        row = (
            dal(
                (dal.one_time_token.token_hash == token_hash(token))
                & (dal.one_time_token.purpose == purpose)
            )
            .select()
            .first()
        )
        if (
            row is None
            or row.used_at is not None
            or row.expires_at <= utcnow()
            or int(row.user_id) != user_id
        ):
            raise ApiError(400, "invalid_token", "The link is invalid, expired or already used")
        row.update_record(used_at=utcnow())

    async def confirm(self, token: str, ip: str) -> None:
        user_id = self.onetime.load("confirm", token)
        if user_id is None:
            raise ApiError(400, "invalid_token", "The link is invalid, expired or already used")

        def work(dal: Dal) -> None:
            self._redeem_sync(dal, "confirm", token, user_id)
            dal(dal.auth_user.id == user_id).update(confirmed_at=utcnow(), updated_at=utcnow())
            audit_self(dal, "email_confirm", user_id, ip)

        await self.db.run(work)

    async def request_password_reset(self, email: str, ip: str) -> None:
        """Always succeeds from the caller's view, so it cannot be used to probe emails."""
        self._mail_allowed(ip)
        user = await self.db.run(lambda dal: store.user_by_email(dal, email.strip().lower()))
        if user is None or not user.active:
            return
        token = await self.issue_one_time("reset", user.id)
        await self.mailer.send_link(
            user.email, "Reset your Floe password", "/api/v2/auth/password-reset/confirm", token
        )
        await self.db.run(
            lambda dal: store.add_audit(
                dal, "password_reset_request", target=f"user:{user.id}", ip=ip
            )
        )

    def _store_password(
        self, dal: Dal, user_id: int, password_hash: str, *, by_holder: bool = False
    ) -> None:
        """`password_changed_at` is when the holder last chose the password; a password set by
        someone else (admin, CLI) leaves it NULL, which asks for a change at every login."""
        now = utcnow()
        dal(dal.auth_user.id == user_id).update(
            fs_uniquifier=store.new_uniquifier(),
            password_hash=password_hash,
            password_changed_at=now if by_holder else None,
            updated_at=now,
            failed_logins=0,
            locked_until=None,
        )
        dal((dal.refresh_token.user_id == user_id) & (dal.refresh_token.revoked_at == None)).update(  # noqa: E711
            revoked_at=now
        )

    async def reset_password(self, token: str, password: str, ip: str) -> None:
        user_id = self.onetime.load("reset", token)
        if user_id is None:
            raise ApiError(400, "invalid_token", "The link is invalid, expired or already used")
        password_hash = await self.passwords.hash(password)

        def work(dal: Dal) -> None:
            self._redeem_sync(dal, "reset", token, user_id)
            self._store_password(dal, user_id, password_hash, by_holder=True)
            audit_self(dal, "password_reset", user_id, ip)

        await self._commit(work, forget_user=user_id)

    async def change_password(self, user_id: int, current: str, new: str, ip: str) -> None:
        row = await self.db.run(lambda dal: store.user_row_by_id(dal, user_id))
        if row is None or not await self.passwords.verify(row.password_hash, current):
            await self.db.run(
                lambda dal: audit_self(dal, "password_change", user_id, ip, success=False)
            )
            raise ApiError(403, "invalid_credentials", "The current password is wrong")
        password_hash = await self.passwords.hash(new)

        def work(dal: Dal) -> None:
            self._store_password(dal, user_id, password_hash, by_holder=True)
            audit_self(dal, "password_change", user_id, ip)

        await self._commit(work, forget_user=user_id)

    async def logout_everywhere(self, user_id: int, ip: str) -> int:
        """A new security stamp (every access token and session cookie stops at once) and
        every live refresh family revoked; returns how many refresh tokens were live."""
        now = utcnow()

        def work(dal: Dal) -> int:
            dal(dal.auth_user.id == user_id).update(
                fs_uniquifier=store.new_uniquifier(), updated_at=now
            )
            live = (dal.refresh_token.user_id == user_id) & (dal.refresh_token.revoked_at == None)  # noqa: E711
            count = int(dal(live).update(revoked_at=now) or 0)
            audit_self(dal, "logout_everywhere", user_id, ip, details={"revoked": count})
            return count

        revoked: int = await self._commit(work, forget_user=user_id)
        return revoked

    async def update_user(
        self,
        user_id: int,
        *,
        actor: Principal,
        ip: str,
        display_name: str | None = None,
        active: bool | None = None,
        roles: list[str] | None = None,
        password: str | None = None,
    ) -> UserRecord:
        """Change a user. Each change is an action of the policy: the caller must outrank
        the user (hold every scope the user holds, node by node) and hold the new roles."""
        password_hash = await self.passwords.hash(password) if password else None

        def work(dal: Dal) -> UserRecord:
            row = store.user_row_by_id(dal, user_id)
            if row is None:
                raise not_found("User")
            target = user_capabilities(dal, user_id)
            if display_name is not None:
                authorize(actor, Action.USER_UPDATE, target=target)
            if password_hash:
                authorize(actor, Action.USER_SET_PASSWORD, target=target)
            if active is not None:
                authorize(actor, Action.USER_SET_ACTIVE, target=target)
            chosen = roles_or_422(dal, roles) if roles is not None else None
            if chosen is not None:
                authorize(actor, Action.USER_SET_ROLES, target=target,
                          granting=Capabilities(role_scopes(chosen.values())))
            updates: dict[str, Any] = {"updated_at": utcnow()}
            if display_name is not None:
                updates["display_name"] = display_name
            if active is not None:
                updates["active"] = active
            row.update_record(**updates)
            if password_hash:
                self._store_password(dal, user_id, password_hash)
                audit(dal, "password_reset_by_admin", actor, ip, f"user:{user_id}")
            if chosen is not None:
                store.set_user_roles(dal, user_id, [role.id for role in chosen.values()])
                audit(
                    dal,
                    "role_change",
                    actor,
                    ip,
                    f"user:{user_id}",
                    details={"roles": sorted(chosen)},
                )
            if active is not None:
                action = "user_activate" if active else "user_deactivate"
                audit(dal, action, actor, ip, f"user:{user_id}")
            record = store.user_record(dal, user_id)
            assert record is not None
            return record

        record: UserRecord = await self._commit(work, forget_user=user_id)
        return record

    async def delete_user(self, user_id: int, *, actor: Principal, ip: str) -> None:
        if actor.user_id == user_id:
            raise ApiError(409, "self_delete", "You cannot delete your own account")

        def work(dal: Dal) -> None:
            authorize(actor, Action.USER_DELETE, target=user_capabilities(dal, user_id))
            dal(dal.api_client.owner_user_id == user_id).update(
                revoked_at=utcnow(), owner_user_id=None
            )
            for table in (
                "auth_user_role",
                "team_member",
                "resource_grant",
                "refresh_token",
                "recovery_code",
                "one_time_token",
            ):
                dal(dal[table].user_id == user_id).delete()
            dal(dal.auth_user.id == user_id).delete()
            audit(dal, "user_delete", actor, ip, f"user:{user_id}")

        await self.db.run(work)
        self.cache.forget_user(user_id)  # also drops every cached key the user owned

    # --- 2FA -------------------------------------------------------------------------------

    async def totp_enrol(self, user_id: int, ip: str) -> dict[str, str]:
        secret = new_totp_secret()

        def work(dal: Dal) -> str:
            row = store.user_row_by_id(dal, user_id)
            if row.totp_enabled:
                raise ApiError(409, "totp_enabled", "TOTP is already enabled; disable it first")
            row.update_record(totp_secret=secret, updated_at=utcnow())
            audit_self(dal, "totp_enrol", user_id, ip)
            email: str = row.email
            return email

        email = await self.db.run(work)
        return {"secret": secret, "otpauth_uri": provisioning_uri(secret, email)}

    async def totp_verify(self, user_id: int, code: str, ip: str) -> list[str]:
        row = await self.db.run(lambda dal: store.user_row_by_id(dal, user_id))
        if row.totp_enabled:
            raise ApiError(409, "totp_enabled", "TOTP is already enabled")
        if not row.totp_secret:
            raise ApiError(409, "totp_not_enrolled", "Enrol first with POST /me/2fa/totp")
        if not verify_totp(row.totp_secret, code):
            await self.db.run(
                lambda dal: audit_self(dal, "totp_verify", user_id, ip, success=False)
            )
            raise ApiError(422, "invalid_code", "The TOTP code is wrong")
        plain, hashes = new_recovery_codes()

        def work(dal: Dal) -> None:
            dal(dal.auth_user.id == user_id).update(totp_enabled=True, updated_at=utcnow())
            dal(dal.recovery_code.user_id == user_id).delete()
            for code_hash in hashes:
                dal.recovery_code.insert(user_id=user_id, code_hash=code_hash)
            audit_self(dal, "totp_enable", user_id, ip)

        await self.db.run(work)
        return plain

    async def totp_disable(self, user_id: int, code: str | None, ip: str) -> None:
        row = await self.db.run(lambda dal: store.user_row_by_id(dal, user_id))
        if row.totp_enabled:
            # A matching recovery code need not be marked used: all of them are deleted below.
            ok = False
            if code:
                ok, _ = await self._check_second_factor(user_id, row.totp_secret, code)
            if not ok:
                raise ApiError(422, "invalid_code", "A current TOTP or recovery code is required")

        def work(dal: Dal) -> None:
            dal(dal.auth_user.id == user_id).update(
                totp_enabled=False, totp_secret=None, updated_at=utcnow()
            )
            dal(dal.recovery_code.user_id == user_id).delete()
            audit_self(dal, "totp_disable", user_id, ip)

        await self.db.run(work)
