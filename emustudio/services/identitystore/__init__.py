"""The Identity Store (``identitystore``, JSON protocol): users, groups and memberships.

The gateway serves one identity store. Its id is ``d-`` and the first 10 hex digits of
``sha256("emustudio-identitystore/<account id>")``: stable, setting-free and the same after a
restart (:func:`identity_store_id`). A request naming another store (by id or ARN) is
``ResourceNotFoundException`` (``ResourceType`` ``IDENTITY_STORE``).

User, group and membership ids are ``<10 hex>-<uuid4>``, the 10 hex digits being the store's,
as Identity Center issues them; an id may also be given as its ARN
(``arn:aws:identitystore:::user/<id>``). ``UserName`` and group ``DisplayName`` are unique in
the store, case-insensitively (``ConflictException``, ``Duplicate UserName`` /
``Duplicate GroupDisplayName``); ``ListUsers``/``ListGroups`` filters and ``GetUserId``/
``GetGroupId`` match them the same way. Deleting a user or a group deletes its memberships.
Users created through the API carry no ``ExternalIds``, so an ``ExternalId`` lookup finds
nothing. ``NextToken`` is opaque and bound to the call's parameters. ``ListIdentityStores`` and
``DescribeIdentityStore`` answer the one store, so a client can discover its id.

Users and groups behave alike wherever the API lets them, so what they share is one helper,
:class:`~emustudio.services.identitystore.entities.Entities` (``USERS``, ``GROUPS``), and their
six operations each are written once (``EntityOperations``, there); the modules ``users`` and
``groups`` give it what each kind has of its own, ``memberships`` holds the membership
operations, ``directory`` resolves the users and groups of EMR Studio session mappings against
the same tables.
"""

from emustudio.services.identitystore.common import identity_store_id
from emustudio.services.identitystore.directory import IdentityStoreDirectory
from emustudio.services.identitystore.groups import GroupOperations
from emustudio.services.identitystore.memberships import MembershipOperations
from emustudio.services.identitystore.users import UserOperations


class IdentityStoreService(UserOperations, GroupOperations, MembershipOperations):
    """The Identity Store operations emustudio answers; the rest of the model is NotImplemented."""


__all__ = ["IdentityStoreDirectory", "IdentityStoreService", "identity_store_id"]
