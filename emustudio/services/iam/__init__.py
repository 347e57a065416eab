"""IAM: users, groups, roles, managed, attached and inline policies, access keys, login
profiles, instance profiles, SAML providers and the policy simulator; and what the authorizer
and sign-in ask of IAM.

One module per concern; :class:`IamService` puts them together. Call :meth:`IamService.load`
once at start-up: it fills the access-key cache that SigV4 reads.
"""

from __future__ import annotations

from sqlmodel import Session, select

from emustudio.aws.sigv4 import Credential
from emustudio.services.iam.access_keys import AccessKeyOperations
from emustudio.services.iam.attachments import AttachmentOperations
from emustudio.services.iam.common import now
from emustudio.services.iam.credentials import IamCredentials, KeyEntry
from emustudio.services.iam.groups import GroupOperations
from emustudio.services.iam.inline import InlinePolicyOperations
from emustudio.services.iam.instance_profiles import InstanceProfileOperations
from emustudio.services.iam.login_profiles import LoginProfileOperations
from emustudio.services.iam.policies import PolicyOperations
from emustudio.services.iam.roles import RoleOperations
from emustudio.services.iam.saml_providers import SamlProviderOperations
from emustudio.services.iam.simulate import SimulateOperations
from emustudio.services.iam.users import UserOperations
from emustudio.store.iam_tables import IamAccessKey, IamUser
from emustudio.store.tables import Meta

_ACCOUNT_CREATED = "iam.account-created-at"


class IamService(
    UserOperations,
    GroupOperations,
    RoleOperations,
    InstanceProfileOperations,
    PolicyOperations,
    AttachmentOperations,
    InlinePolicyOperations,
    AccessKeyOperations,
    LoginProfileOperations,
    SamlProviderOperations,
    SimulateOperations,
):
    """The IAM operations emustudio answers; everything else in the model is NotImplemented."""

    async def load(self) -> None:
        """Start-up: cache every active access key; note when the account was "created"."""

        def read(session: Session) -> tuple[list[KeyEntry], float]:
            entries: list[KeyEntry] = []
            keys = session.exec(select(IamAccessKey).where(IamAccessKey.status == "Active"))
            for key in keys:
                user = session.get(IamUser, key.user_id)
                if user is not None:
                    credential = Credential(key.id, key.secret)
                    entries.append(KeyEntry(user.id, credential, self.user_principal(user, key.id)))
            meta = session.get(Meta, _ACCOUNT_CREATED)
            if meta is None:
                meta = Meta(key=_ACCOUNT_CREATED, value=str(now()))
                session.add(meta)
            return entries, float(meta.value)

        entries, created = await self.store.tx(read)
        self.credentials.load(entries)
        self.account_created_at = created


__all__ = ["IamCredentials", "IamService"]
