"""STS: caller identity, role sessions (``AssumeRole``, ``AssumeRoleWithSAML``), session tokens,
EMR Studio's sessions of a Studio user role (`studio.py`) and EC2's sessions of an instance
profile's role for an EMR node (`instance.py`). Temporary credentials persist in
the store and are served from memory by :class:`StsCredentials`. Call :meth:`StsService.load`
once at start-up."""

from __future__ import annotations

from sqlmodel import Session, col, delete, select

from emustudio.aws.sigv4 import Credential
from emustudio.context import Principal
from emustudio.services.iam import IamService
from emustudio.services.sts.assume import AssumeRoleOperations
from emustudio.services.sts.common import StsBase
from emustudio.services.sts.credentials import (
    EXPIRED_KEPT_SECONDS,
    StsCredentials,
    principal_from_json,
)
from emustudio.services.sts.instance import InstanceProfileSessions
from emustudio.services.sts.saml import SamlAssertion, SamlOperations, SamlVerifier
from emustudio.services.sts.studio import StudioSessionOperations
from emustudio.store import Store
from emustudio.store.iam_tables import StsSession


class StsService(
    AssumeRoleOperations, SamlOperations, StudioSessionOperations, InstanceProfileSessions
):
    """The STS operations emustudio answers; everything else in the model is NotImplemented.

    ``saml_verifier`` checks AssumeRoleWithSAML's responses (without one, it is refused)."""

    def __init__(
        self,
        store: Store,
        iam: IamService,
        *,
        account_id: str,
        region: str,
        credentials: StsCredentials | None = None,
        saml_verifier: SamlVerifier | None = None,
        accounts: dict[str, StsBase] | None = None,
    ) -> None:
        super().__init__(store, iam, account_id=account_id, region=region, credentials=credentials)
        self.saml_verifier = saml_verifier
        # Every account's STS by account id, this one's included (setting other_accounts): a
        # role of another account is found, and its session issued, by that account's STS.
        self.accounts = accounts if accounts is not None else {}
        self.accounts[account_id] = self

    async def load(self) -> None:
        """Start-up: forget sessions expired more than a day ago; cache the others."""
        cutoff = self.credentials.clock() - EXPIRED_KEPT_SECONDS

        def read(session: Session) -> list[tuple[Credential, Principal]]:
            session.exec(delete(StsSession).where(col(StsSession.expiration) < cutoff))
            out = []
            for row in session.exec(select(StsSession)):
                principal = principal_from_json(row.access_key_id, row.principal)
                credential = Credential(
                    row.access_key_id,
                    row.secret,
                    row.session_token,
                    principal.session_expires,
                )
                out.append((credential, principal))
            return out

        self.credentials.load(await self.store.tx(read))


__all__ = ["SamlAssertion", "SamlVerifier", "StsCredentials", "StsService"]
