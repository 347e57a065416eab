"""What the gateway's authorizer (and STS, and the simulator) asks IAM about a principal: its
identity-based policies, its permissions boundary, its tags, a role.

Policies come back parsed and named, so a decision can cite them:

* a managed policy by its ARN;
* an inline policy as ``user/<user>/<policy>``, ``group/<group>/<policy>`` or
  ``role/<role>/<policy>``.

A user's identity policies are its inline and attached policies and those of every group it is
in; a role session's are its role's. A session whose role was deleted (or deleted and created
again: the id differs) has none.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from sqlmodel import Session, col, select

from emustudio.aws.errors import InternalFailure
from emustudio.context import Principal
from emustudio.iam import Policy, PolicyError, PolicyKind, parse_policy
from emustudio.services.iam.aws_managed import AWS_MANAGED
from emustudio.services.iam.common import IamBase, tag_map
from emustudio.store.iam_tables import (
    IamGroup,
    IamGroupMember,
    IamInlinePolicy,
    IamManagedPolicy,
    IamPolicyAttachment,
    IamPolicyVersion,
    IamRole,
    IamUser,
)


@lru_cache(maxsize=4096)
def parsed(text: str, kind: PolicyKind = "identity") -> Policy:
    """A stored (already validated) document, parsed once."""
    try:
        return parse_policy(text, kind)
    except PolicyError as error:
        # A stored policy the engine no longer reads must not silently grant or stop denying.
        raise InternalFailure(f"A stored policy could not be read: {error.message}") from None


@dataclass(frozen=True)
class SourcedPolicy:
    """A policy and where it comes from, as ``SimulatePrincipalPolicy`` reports it:
    ``source_id`` the policy's name, ``source_type`` ``user``/``group``/``role`` (inline),
    ``aws-managed`` or ``user-managed``."""

    policy: Policy
    source_id: str
    source_type: str


def managed_document(session: Session, arn: str) -> tuple[str, str] | None:
    """``(name, default version document)`` of a managed policy, or ``None``."""
    builtin = AWS_MANAGED.get(arn)
    if builtin is not None:
        return builtin.name, builtin.document
    policy = session.get(IamManagedPolicy, arn)
    if policy is None:
        return None
    version = session.get(IamPolicyVersion, (arn, policy.default_version))
    return (policy.name, version.document) if version is not None else None


class IdentityOperations(IamBase):
    def _entity_policies(
        self, session: Session, kind: str, entity_id: str, entity_name: str
    ) -> list[SourcedPolicy]:
        out: list[SourcedPolicy] = []
        inline = session.exec(
            select(IamInlinePolicy)
            .where(IamInlinePolicy.entity_type == kind, IamInlinePolicy.entity_id == entity_id)
            .order_by(col(IamInlinePolicy.name))
        )
        for row in inline:
            policy = parsed(row.document).named(f"{kind}/{entity_name}/{row.name}")
            out.append(SourcedPolicy(policy, row.name, kind))
        attached = session.exec(
            select(IamPolicyAttachment)
            .where(
                IamPolicyAttachment.entity_type == kind, IamPolicyAttachment.entity_id == entity_id
            )
            .order_by(col(IamPolicyAttachment.policy_arn))
        )
        for attachment in attached:
            found = managed_document(session, attachment.policy_arn)
            if found is None:
                continue
            name, document = found
            source_type = "aws-managed" if attachment.policy_arn in AWS_MANAGED else "user-managed"
            out.append(
                SourcedPolicy(parsed(document).named(attachment.policy_arn), name, source_type)
            )
        return out

    def boundary_policy(self, session: Session, arn: str | None) -> SourcedPolicy | None:
        if arn is None:
            return None
        found = managed_document(session, arn)
        if found is None:
            return None
        source_type = "aws-managed" if arn in AWS_MANAGED else "user-managed"
        return SourcedPolicy(parsed(found[1]).named(arn), found[0], source_type)

    def user_policies(
        self, session: Session, user: IamUser
    ) -> tuple[list[SourcedPolicy], SourcedPolicy | None]:
        policies = self._entity_policies(session, "user", user.id, user.name)
        groups: Iterable[IamGroup] = session.exec(
            select(IamGroup)
            .join(IamGroupMember, col(IamGroupMember.group_id) == col(IamGroup.id))
            .where(IamGroupMember.user_id == user.id)
            .order_by(col(IamGroup.name_key))
        )
        for group in groups:
            policies += self._entity_policies(session, "group", group.id, group.name)
        return policies, self.boundary_policy(session, user.boundary_arn)

    def role_policies(
        self, session: Session, role: IamRole
    ) -> tuple[list[SourcedPolicy], SourcedPolicy | None]:
        policies = self._entity_policies(session, "role", role.id, role.name)
        return policies, self.boundary_policy(session, role.boundary_arn)

    def principal_policies(
        self, session: Session, principal: Principal
    ) -> tuple[list[SourcedPolicy], SourcedPolicy | None]:
        if principal.kind == "IAMUser":
            user = session.get(IamUser, principal.user_id)
            return self.user_policies(session, user) if user is not None else ([], None)
        if principal.kind == "AssumedRole" and principal.issuer_id:
            role = session.get(IamRole, principal.issuer_id)
            return self.role_policies(session, role) if role is not None else ([], None)
        return [], None

    # --- the authorizer's API -------------------------------------------------------------------

    async def identity_policy_set(self, principal: Principal) -> tuple[list[Policy], Policy | None]:
        """The principal's identity-based policies and permissions boundary, parsed and named.

        Root has none (root is never evaluated). Session policies are not included: they travel
        on the principal (``Principal.session_policies``).
        """

        def read(session: Session) -> tuple[list[Policy], Policy | None]:
            policies, boundary = self.principal_policies(session, principal)
            return [p.policy for p in policies], boundary.policy if boundary else None

        if principal.is_root:
            return [], None
        return await self.store.tx(read)

    async def principal_tags(self, principal: Principal) -> dict[str, str]:
        """``aws:PrincipalTag`` values: a user's tags; for a role session the role's tags,
        overridden by the session's tags (keys compared without case)."""

        def read(session: Session) -> dict[str, str]:
            if principal.kind == "IAMUser":
                user = session.get(IamUser, principal.user_id)
                return tag_map(user.tags) if user is not None else {}
            if principal.kind == "AssumedRole" and principal.issuer_id:
                role = session.get(IamRole, principal.issuer_id)
                tags = tag_map(role.tags) if role is not None else {}
                overridden = {k.lower() for k in principal.session_tags}
                tags = {k: v for k, v in tags.items() if k.lower() not in overridden}
                tags.update(principal.session_tags)
                return tags
            return {}

        if principal.is_root:
            return {}
        return await self.store.tx(read)

    async def get_role(self, name_or_arn: str) -> IamRole | None:
        """A role by name or ARN, or ``None``.

        The ARN is ``arn:aws:iam::<account>:role/<path><name>``; one without the path names
        the role too, one with a different path does not.
        """
        if not name_or_arn.startswith("arn:"):
            return await self.store.tx(lambda session: self.find_role(session, name_or_arn))
        parts = name_or_arn.split(":", 5)
        if len(parts) < 6 or parts[4] != self.account_id or not parts[5].startswith("role/"):
            return None
        name = parts[5].rsplit("/", 1)[-1]
        role = await self.store.tx(lambda session: self.find_role(session, name))
        if role is None:
            return None
        plain = self.arn("role", "/", role.name)
        known = {self.role_arn(role).lower(), plain.lower()}
        return role if name_or_arn.lower() in known else None

    async def lookup_user(self, name: str) -> IamUser | None:
        return await self.store.tx(lambda session: self.find_user(session, name))
