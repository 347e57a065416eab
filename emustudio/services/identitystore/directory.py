"""The users and groups of EMR Studio session mappings, resolved in the Identity Store."""

from __future__ import annotations

from sqlmodel import Session

from emustudio.services.emr.common import InvalidRequest
from emustudio.services.emr.session_mappings import IdentityDirectory
from emustudio.services.identitystore.entities import GROUPS, USERS


class IdentityStoreDirectory(IdentityDirectory):
    """Session mappings' users and groups, looked up in the Identity Store by id or name."""

    def __init__(self, store_id: str) -> None:
        self.store_id = store_id

    def resolve(
        self, session: Session, identity_type: str, identity_id: str | None, name: str | None
    ) -> tuple[str, str]:
        entities = USERS if identity_type == "USER" else GROUPS
        if identity_id is not None:
            row = session.get(entities.table, identity_id)
            described = f"IdentityId '{identity_id}'"
        else:
            assert name is not None
            row = entities.by_name(session, self.store_id, name)
            described = f"IdentityName '{name}'"
        if row is not None and row.store_id == self.store_id:
            return row.id, row.name
        raise InvalidRequest(
            f"{entities.kind.title()} with {described} does not exist in identity store"
            f" {self.store_id}."
        )
