"""Login profiles (console passwords) and checking a password at sign-in.

Passwords are never stored: only an scrypt hash with a random salt (`passwords.py`). With no
custom account password policy, IAM applies its default one: at least 8 characters, and at
least three of upper-case letters, lower-case letters, digits and other characters.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

from sqlmodel import Session

from emustudio.context import Principal, RequestContext
from emustudio.services.base import operation
from emustudio.services.iam.common import (
    EntityAlreadyExists,
    IamBase,
    NoSuchEntity,
    PasswordPolicyViolation,
    ValidationError,
    now,
    to_datetime,
)
from emustudio.services.iam.passwords import hash_password, salted_hash
from emustudio.store.iam_tables import IamLoginProfile, IamUser

MIN_PASSWORD_LENGTH = 8


def check_password_policy(password: str) -> None:
    kinds = [
        any(c.isupper() for c in password),
        any(c.islower() for c in password),
        any(c.isdigit() for c in password),
        any(not c.isalnum() for c in password),
    ]
    if len(password) < MIN_PASSWORD_LENGTH or sum(kinds) < 3:
        raise PasswordPolicyViolation("Password does not conform to the account password policy.")


def profile_not_found(name: str) -> NoSuchEntity:
    return NoSuchEntity(f"Login Profile for User {name} cannot be found.")


async def new_hash(password: str) -> tuple[str, str]:
    salt, digest = await asyncio.to_thread(salted_hash, password)
    return digest.hex(), salt.hex()


class LoginProfileOperations(IamBase):
    def profile_shape(self, user: IamUser, profile: IamLoginProfile) -> dict[str, Any]:
        return {
            "UserName": user.name,
            "CreateDate": to_datetime(profile.created_at),
            "PasswordResetRequired": profile.password_reset_required,
        }

    @operation("CreateLoginProfile")
    async def create_login_profile(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        password = params.get("Password")
        if password is None:
            raise ValidationError(
                "1 validation error detected: Value null at 'password' failed to satisfy"
                " constraint: Member must not be null"
            )
        check_password_policy(password)
        digest, salt = await new_hash(password)

        def create(session: Session) -> dict[str, Any]:
            user = self.target_user(session, ctx, params.get("UserName"))
            if session.get(IamLoginProfile, user.id) is not None:
                raise EntityAlreadyExists(f"Login Profile for user {user.name} already exists.")
            profile = IamLoginProfile(
                user_id=user.id,
                password_hash=digest,
                salt=salt,
                password_reset_required=bool(params.get("PasswordResetRequired")),
                created_at=now(),
            )
            session.add(profile)
            return {"LoginProfile": self.profile_shape(user, profile)}

        return await self.store.tx(create)

    @operation("GetLoginProfile")
    async def get_login_profile(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def get(session: Session) -> dict[str, Any]:
            user = self.target_user(session, ctx, params.get("UserName"))
            profile = session.get(IamLoginProfile, user.id)
            if profile is None:
                raise profile_not_found(user.name)
            return {"LoginProfile": self.profile_shape(user, profile)}

        return await self.store.tx(get)

    @operation("UpdateLoginProfile")
    async def update_login_profile(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        password = params.get("Password")
        hashed: tuple[str, str] | None = None
        if password is not None:
            check_password_policy(password)
            hashed = await new_hash(password)

        def update(session: Session) -> dict[str, Any]:
            user = self.user_or_raise(session, params["UserName"])
            profile = session.get(IamLoginProfile, user.id)
            if profile is None:
                raise profile_not_found(user.name)
            if hashed is not None:
                profile.password_hash, profile.salt = hashed
            if params.get("PasswordResetRequired") is not None:
                profile.password_reset_required = bool(params["PasswordResetRequired"])
            session.add(profile)
            return {}

        return await self.store.tx(update)

    @operation("DeleteLoginProfile")
    async def delete_login_profile(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def delete(session: Session) -> dict[str, Any]:
            user = self.target_user(session, ctx, params.get("UserName"))
            profile = session.get(IamLoginProfile, user.id)
            if profile is None:
                raise profile_not_found(user.name)
            session.delete(profile)
            return {}

        return await self.store.tx(delete)

    # --- for sign-in ----------------------------------------------------------------------------

    async def check_password(self, user_name: str, password: str) -> Principal | None:
        """The user's principal if ``password`` is the user's console password, else ``None``.

        A successful check records ``PasswordLastUsed``. The principal has no access key id
        (a console session is not signed with one).
        """

        def read(session: Session) -> tuple[IamUser, IamLoginProfile] | None:
            user = self.find_user(session, user_name)
            profile = session.get(IamLoginProfile, user.id) if user is not None else None
            return (user, profile) if user is not None and profile is not None else None

        found = await self.store.tx(read)
        if found is None:
            # Spend the same time as a real check, so a missing user is not told apart.
            await asyncio.to_thread(hash_password, password, b"\0" * 16)
            return None
        user, profile = found
        digest = await asyncio.to_thread(hash_password, password, bytes.fromhex(profile.salt))
        if not hmac.compare_digest(digest.hex(), profile.password_hash):
            return None

        def touch(session: Session) -> None:
            row = session.get(IamUser, user.id)
            if row is not None:
                row.password_last_used = now()
                session.add(row)

        await self.store.tx(touch)
        return self.user_principal(user, "")
