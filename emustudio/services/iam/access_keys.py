"""Access keys: create (two per user at most), list, activate/deactivate, delete, last use.

Without ``UserName`` an operation acts on the calling user. Each change refreshes the user's
entries in the in-memory :class:`~emustudio.services.iam.credentials.IamCredentials`, so a
deleted or deactivated key is refused by the very next request.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, func, select

from emustudio.aws.errors import NotImplementedOperation
from emustudio.context import RequestContext
from emustudio.services.base import operation
from emustudio.services.iam.common import (
    IamBase,
    LimitExceeded,
    NoSuchEntity,
    access_key_id,
    now,
    page,
    secret_access_key,
    to_datetime,
)
from emustudio.services.iam.credentials import KeyEntry
from emustudio.store.iam_tables import IamAccessKey, IamUser

MAX_KEYS = 2


def key_not_found(key_id: str) -> NoSuchEntity:
    return NoSuchEntity(f"The Access Key with id {key_id} cannot be found.")


class AccessKeyOperations(IamBase):
    @staticmethod
    def _root_keys(ctx: RequestContext, name: str | None) -> None:
        if name is None and ctx.principal is not None and ctx.principal.is_root:
            raise NotImplementedOperation(
                "emustudio's root access key comes from its settings (EMUSTUDIO_ACCESS_KEY_ID);"
                " name an IAM user with UserName."
            )

    @operation("CreateAccessKey")
    async def create_access_key(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        self._root_keys(ctx, params.get("UserName"))

        def create(session: Session) -> tuple[dict[str, Any], str, list[KeyEntry]]:
            user = self.target_user(session, ctx, params.get("UserName"))
            count = session.exec(
                select(func.count())
                .select_from(IamAccessKey)
                .where(IamAccessKey.user_id == user.id)
            ).one()
            if count >= MAX_KEYS:
                raise LimitExceeded(f"Cannot exceed quota for AccessKeysPerUser: {MAX_KEYS}")
            key = IamAccessKey(
                id=access_key_id("AKIA"),
                user_id=user.id,
                secret=secret_access_key(),
                status="Active",
                created_at=now(),
            )
            session.add(key)
            session.flush()
            shape = {
                "UserName": user.name,
                "AccessKeyId": key.id,
                "Status": key.status,
                "SecretAccessKey": key.secret,
                "CreateDate": to_datetime(key.created_at),
            }
            return {"AccessKey": shape}, user.id, self.key_entries(session, user)

        result, user_id, entries = await self.store.tx(create)
        self.credentials.replace_user(user_id, entries)
        return result

    @operation("ListAccessKeys")
    async def list_access_keys(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("UserName")
        if name is None and ctx.principal is not None and ctx.principal.is_root:
            return {"AccessKeyMetadata": [], "IsTruncated": False}

        def list_(session: Session) -> dict[str, Any]:
            user = self.target_user(session, ctx, name)
            keys = session.exec(
                select(IamAccessKey)
                .where(IamAccessKey.user_id == user.id)
                .order_by(col(IamAccessKey.created_at), col(IamAccessKey.id))
            )
            entries = [
                {
                    "UserName": user.name,
                    "AccessKeyId": k.id,
                    "Status": k.status,
                    "CreateDate": to_datetime(k.created_at),
                }
                for k in keys
            ]
            items, result = page(entries, params, "AccessKeyMetadata")
            result["AccessKeyMetadata"] = items
            return result

        return await self.store.tx(list_)

    def _key_of(
        self, session: Session, ctx: RequestContext, params: dict[str, Any]
    ) -> tuple[IamUser, IamAccessKey]:
        user = self.target_user(session, ctx, params.get("UserName"))
        key = session.get(IamAccessKey, params["AccessKeyId"])
        if key is None or key.user_id != user.id:
            raise key_not_found(params["AccessKeyId"])
        return user, key

    @operation("UpdateAccessKey")
    async def update_access_key(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        self._root_keys(ctx, params.get("UserName"))

        def update(session: Session) -> tuple[str, list[KeyEntry]]:
            user, key = self._key_of(session, ctx, params)
            key.status = params["Status"]
            session.add(key)
            session.flush()
            return user.id, self.key_entries(session, user)

        user_id, entries = await self.store.tx(update)
        self.credentials.replace_user(user_id, entries)
        return {}

    @operation("DeleteAccessKey")
    async def delete_access_key(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        self._root_keys(ctx, params.get("UserName"))

        def delete(session: Session) -> tuple[str, list[KeyEntry]]:
            user, key = self._key_of(session, ctx, params)
            session.delete(key)
            session.flush()
            return user.id, self.key_entries(session, user)

        user_id, entries = await self.store.tx(delete)
        self.credentials.replace_user(user_id, entries)
        self.credentials.forget(params["AccessKeyId"])
        return {}

    @operation("GetAccessKeyLastUsed")
    async def get_access_key_last_used(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        key_id = params["AccessKeyId"]

        def get(session: Session) -> str:
            key = session.get(IamAccessKey, key_id)
            user = session.get(IamUser, key.user_id) if key is not None else None
            if user is None:
                raise key_not_found(key_id)
            return user.name

        user_name = await self.store.tx(get)
        use = self.credentials.last_use(key_id)
        last: dict[str, Any] = {"ServiceName": "N/A", "Region": "N/A"}
        if use is not None:
            last = {
                "LastUsedDate": to_datetime(use.at),
                "ServiceName": use.service or "N/A",
                "Region": use.region or "N/A",
            }
        return {"UserName": user_name, "AccessKeyLastUsed": last}
