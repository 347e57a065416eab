"""Users and groups alike: :class:`Entities` does for either kind what the API does the same.

Both are looked up by id or ARN within the store, named uniquely (case-insensitively), created,
listed in creation order with an optional name filter, updated with a revision check, described
with the same members and deleted with their memberships. ``USERS`` and ``GROUPS`` are the two
kinds. Their six operations each (``Create``, ``Describe``, ``List``, ``Update``, ``Delete``,
``Get…Id``) are written once, in :class:`EntityOperations`; what only one kind has (a user's many
attributes and its lookup by e-mail, a group's description) is the data that ``users.py`` and
``groups.py`` give it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Mapped
from sqlmodel import Session, col, select

from emustudio.context import RequestContext
from emustudio.services import pages
from emustudio.services.base import operation
from emustudio.services.identitystore.common import (
    Conflict,
    IdentityStoreBase,
    ResourceNotFound,
    Validation,
    check_name,
    epoch,
    filter_value,
    page,
    resource_id,
    who,
)
from emustudio.store.identity_tables import (
    IdentityEntity,
    IdentityGroup,
    IdentityMembership,
    IdentityUser,
)

E = TypeVar("E", bound=IdentityEntity)
Apply = Callable[[Session, E, dict[str, Any]], None]


class Entities(Generic[E]):
    """One kind of identity (``USER`` or ``GROUP``) in one store's tables."""

    def __init__(
        self,
        table: type[E],
        kind: str,
        name_member: str,
        member_column: Mapped[str],
    ) -> None:
        self.table = table
        self.kind = kind  # the ResourceType of its errors
        self.noun = kind.lower()  # in its ARN
        self.id_member = kind.title() + "Id"  # UserId, GroupId
        self.name_member = name_member  # UserName, DisplayName
        # The ConflictException's message: "Duplicate UserName", "Duplicate GroupDisplayName".
        self.duplicate = "Duplicate " + ("" if kind == "USER" else kind.title()) + name_member
        self.member_column = member_column  # IdentityMembership's column that names one

    def membership(self, entity_id: str) -> ColumnElement[bool]:
        """Where a membership is one of ``entity_id``'s."""
        return self.member_column == entity_id

    def arn(self, entity_id: str) -> str:
        return f"arn:aws:identitystore:::{self.noun}/{entity_id}"

    def get(self, session: Session, store_id: str, given: str) -> E:
        """By id or ARN; ``ResourceNotFoundException`` when not in this store."""
        entity_id = resource_id(given)
        row = session.get(self.table, entity_id)
        if row is None or row.store_id != store_id:
            raise ResourceNotFound(self.kind, entity_id)
        return row

    def by_name(self, session: Session, store_id: str, name: str) -> E | None:
        return session.exec(
            select(self.table).where(
                col(self.table.store_id) == store_id, col(self.table.name_key) == name.lower()
            )
        ).first()

    def rename(self, session: Session, row: E, value: Any) -> None:
        """Give ``row`` the name ``value``, unless another of its kind has it."""
        name = check_name(self.name_member, value)
        other = self.by_name(session, row.store_id, name)
        if other is not None and other.id != row.id:
            raise Conflict(self.duplicate)
        row.name, row.name_key = name, name.lower()

    def create(
        self,
        session: Session,
        store_id: str,
        entity_id: str,
        name: str,
        attributes: dict[str, Any],
        who: str,
    ) -> dict[str, Any]:
        """A new one (``name`` already checked); the Create operation's answer."""
        if self.by_name(session, store_id, name) is not None:
            raise Conflict(self.duplicate)
        now = time.time()
        row = self.table(
            id=entity_id,
            store_id=store_id,
            name=name,
            name_key=name.lower(),
            attributes=attributes,
            created_at=now,
            created_by=who,
            updated_at=now,
            updated_by=who,
        )
        session.add(row)
        return {"IdentityStoreId": store_id, self.id_member: row.id}

    def shape(self, row: E, **extra: Any) -> dict[str, Any]:
        """The Describe operation's answer (``extra`` members after the attributes)."""
        return {
            "IdentityStoreId": row.store_id,
            self.id_member: row.id,
            f"{self.kind.title()}Arn": self.arn(row.id),
            "Revision": str(row.revision),
            self.name_member: row.name,
            **row.attributes,
            **extra,
            "CreatedAt": epoch(row.created_at),
            "CreatedBy": row.created_by,
            "UpdatedAt": epoch(row.updated_at),
            "UpdatedBy": row.updated_by,
        }

    def listing(
        self,
        session: Session,
        store_id: str,
        params: dict[str, Any],
        name: str | None,
        shape: Callable[[E], dict[str, Any]],
        member: str,
    ) -> dict[str, Any]:
        """The List operation's answer: in creation order, ``name`` alone when given."""
        query = select(self.table).where(col(self.table.store_id) == store_id)
        if name is not None:
            query = query.where(col(self.table.name_key) == name.lower())
        rows = list(session.exec(query.order_by(col(self.table.created_at), col(self.table.id))))
        found, token = page(rows, params, pages.fingerprint(f"List{member}", name))
        return pages.with_token({member: [shape(r) for r in found]}, token)

    def update(
        self, session: Session, store_id: str, params: dict[str, Any], who: str, apply: Apply[E]
    ) -> dict[str, Any]:
        """The Update operation: ``apply`` each of ``Operations`` if ``Revision`` still holds."""
        row = self.get(session, store_id, params[self.id_member])
        expected = params.get("Revision")
        if expected is not None and expected != str(row.revision):
            raise Conflict(
                f"Revision {expected} does not match the current revision {row.revision}.",
                "CONCURRENT_MODIFICATION",
            )
        for op in params["Operations"]:
            apply(session, row, op)
        row.revision += 1
        row.updated_at, row.updated_by = time.time(), who
        session.add(row)
        return {}

    def delete(self, session: Session, store_id: str, given: str) -> dict[str, Any]:
        """The Delete operation: its memberships first, then it."""
        row = self.get(session, store_id, given)
        for m in session.exec(select(IdentityMembership).where(self.membership(row.id))):
            session.delete(m)
        session.flush()
        session.delete(row)
        return {}

    def unique_attribute(self, alternate: dict[str, Any]) -> tuple[str, Any]:
        """``(attribute path, value)`` of a Get…Id's ``AlternateIdentifier``."""
        unique = alternate.get("UniqueAttribute")
        if unique is None:  # an ExternalId: none are made here, so it names nothing
            raise ResourceNotFound(self.kind)
        return str(unique["AttributePath"]), unique.get("AttributeValue")

    def found_id(self, store_id: str, row: E | None) -> dict[str, Any]:
        """A Get…Id operation's answer."""
        if row is None:
            raise ResourceNotFound(self.kind)
        return {"IdentityStoreId": store_id, self.id_member: row.id}

    def not_unique(self, path: str) -> Validation:
        return Validation(f"AttributePath '{path}' is not a unique attribute of a {self.noun}.")


USERS = Entities(IdentityUser, "USER", "UserName", col(IdentityMembership.user_id))
GROUPS = Entities(IdentityGroup, "GROUP", "DisplayName", col(IdentityMembership.group_id))


# Get…Id's finder for one unique attribute path: (session, store id, value) -> the one or None.
Lookup = Callable[[Session, str, Any], Any]
Handler = Callable[[IdentityStoreBase, RequestContext, dict[str, Any]], Awaitable[dict[str, Any]]]


class EntityOperations(IdentityStoreBase):
    """The operations users and groups share, declared once from a subclass's data.

    A subclass names its kind (``entities``) and, as class arguments, what is its own: the
    members ``Create…`` takes besides the name, the members ``Describe…`` adds, how ``Update…``
    applies one operation, and the unique attribute paths ``Get…Id`` finds one by besides its
    name. It then answers ``Create<Kind>``, ``Describe<Kind>``, ``List<Kind>s``,
    ``Update<Kind>``, ``Delete<Kind>`` and ``Get<Kind>Id``, as methods named after them
    (``create_user``, ``list_groups``...).
    """

    def __init_subclass__(
        cls,
        *,
        entities: Entities[Any] | None = None,
        apply: Apply[Any] | None = None,
        create_members: tuple[str, ...] = (),
        shape_extra: dict[str, Any] | None = None,
        lookups: dict[str, Lookup] | None = None,
        **kwargs: Any,
    ) -> None:
        # Before Service's hook, which collects the operations the class now holds.
        if entities is not None and apply is not None:
            kind = _Kind(entities, apply, create_members, shape_extra or {}, lookups or {})
            for name, handler in kind.handlers().items():
                attr = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()  # GetUserId: get_user_id
                setattr(cls, attr, operation(name)(handler))
        super().__init_subclass__(**kwargs)


@dataclass(frozen=True)
class _Kind:
    """What :class:`EntityOperations` is given for one kind."""

    e: Entities[Any]
    apply: Apply[Any]
    create_members: tuple[str, ...]
    shape_extra: dict[str, Any]
    lookups: dict[str, Lookup]  # lowercase attribute path -> finder

    def shape(self, row: Any) -> dict[str, Any]:
        return self.e.shape(row, **self.shape_extra)

    def by_name(self, session: Session, store_id: str, value: Any) -> Any:
        return self.e.by_name(session, store_id, value) if isinstance(value, str) else None

    def handlers(self) -> dict[str, Handler]:
        """The six operations, by operation name."""
        e, kind = self.e, self
        noun = e.kind.title()
        lookups = {e.name_member.lower(): self.by_name, **self.lookups}

        async def create(
            self: IdentityStoreBase, ctx: RequestContext, params: dict[str, Any]
        ) -> dict[str, Any]:
            name = check_name(e.name_member, params.get(e.name_member))
            attributes = {k: params[k] for k in kind.create_members if k in params}
            new_id, by = self.new_id(), who(ctx)
            return await self.tx(
                params, lambda s: e.create(s, self.store_id, new_id, name, attributes, by)
            )

        async def describe(
            self: IdentityStoreBase, ctx: RequestContext, params: dict[str, Any]
        ) -> dict[str, Any]:
            return await self.tx(
                params, lambda s: kind.shape(e.get(s, self.store_id, params[e.id_member]))
            )

        async def listing(
            self: IdentityStoreBase, ctx: RequestContext, params: dict[str, Any]
        ) -> dict[str, Any]:
            name = filter_value(params, e.name_member)
            return await self.tx(
                params, lambda s: e.listing(s, self.store_id, params, name, kind.shape, noun + "s")
            )

        async def update(
            self: IdentityStoreBase, ctx: RequestContext, params: dict[str, Any]
        ) -> dict[str, Any]:
            by = who(ctx)
            return await self.tx(
                params, lambda s: e.update(s, self.store_id, params, by, kind.apply)
            )

        async def delete(
            self: IdentityStoreBase, ctx: RequestContext, params: dict[str, Any]
        ) -> dict[str, Any]:
            return await self.tx(params, lambda s: e.delete(s, self.store_id, params[e.id_member]))

        async def get_id(
            self: IdentityStoreBase, ctx: RequestContext, params: dict[str, Any]
        ) -> dict[str, Any]:
            def get(session: Session) -> dict[str, Any]:
                path, value = e.unique_attribute(params["AlternateIdentifier"])
                find = lookups.get(path.lower())
                if find is None:
                    raise e.not_unique(path)
                return e.found_id(self.store_id, find(session, self.store_id, value))

            return await self.tx(params, get)

        return {
            f"Create{noun}": create,
            f"Describe{noun}": describe,
            f"List{noun}s": listing,
            f"Update{noun}": update,
            f"Delete{noun}": delete,
            f"Get{noun}Id": get_id,
        }
