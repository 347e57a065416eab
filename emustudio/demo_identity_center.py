"""The demo's Identity Center half: an SSO-mode Studio whose users sign in through IAM Identity
Center, which trusts the built-in IdP (`auth.idc`).

Made when missing, like the rest of the demo (:mod:`emustudio.demo`), through the services' own
operation code:

* Identity Store: a user for each user of the demo's users file (``UserName`` = the IdP's user
  name, which Identity Center matches the NameID to) and a group for each of its groups, with the
  same members, as an administrator provisions them;
* IAM: the Studio user role ``EMRStudio_User_Role`` (trusting EMR; allowed the basic user's
  Workspace actions) and the managed session policy ``EmuStudioDemoSessionPolicy`` (the same
  actions);
* the Studio ``Demo (Identity Center)``, known by its id in the store (``Meta``
  ``demo-sso-studio:<region>``), and, when made, its one session mapping: the group
  ``analysts`` with that policy. alice (an analyst) gets in; bob (in no group) sees Identity
  Center's refusal.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from sqlmodel import Session

from emustudio.auth.idp import IdpUser
from emustudio.aws.errors import AwsError
from emustudio.config import Settings
from emustudio.store import Store
from emustudio.store.tables import Meta, Studio

log = logging.getLogger(__name__)

USER_ROLE = "EMRStudio_User_Role"
SESSION_POLICY = "EmuStudioDemoSessionPolicy"
STUDIO_NAME = "Demo (Identity Center)"
MAPPED_GROUP = "analysts"


def _meta_key(region: str) -> str:
    return f"demo-sso-studio:{region}"


class DemoSteps(Protocol):
    """What the Identity Center part uses of `emustudio.demo.Demo` (which hands itself over:
    this module does not import it back)."""

    settings: Settings
    store: Store
    account: str
    region: str
    identity_store_id: str

    def role_arn(self, name: str) -> str: ...

    @staticmethod
    def service_trust() -> str: ...

    @staticmethod
    def basic_user_policy() -> str: ...

    async def ensure_role(self, name: str, trust: str) -> bool: ...

    async def put_policy(self, role: str, document: str) -> None: ...

    async def call(
        self, service: str, operation: str, params: dict[str, Any], *, audit: bool = True
    ) -> dict[str, Any]: ...


class IdentityCenterDemo:
    def __init__(self, demo: DemoSteps) -> None:
        self.demo = demo
        self.store_id = demo.identity_store_id

    async def ensure(
        self, users: dict[str, IdpUser], network: tuple[str, list[str], str] | None
    ) -> str | None:
        """The SSO demo Studio's id (None without a default VPC), made with what it needs."""
        group_ids = await self.ensure_directory(users)
        if await self.ensure_user_role():
            await self.demo.put_policy(USER_ROLE, self.demo.basic_user_policy())
        policy_arn = await self.ensure_session_policy()
        studio_id, made = await self.ensure_studio(network)
        if made and studio_id is not None and MAPPED_GROUP in group_ids:
            await self.demo.call(
                "emr",
                "CreateStudioSessionMapping",
                {
                    "StudioId": studio_id,
                    "IdentityId": group_ids[MAPPED_GROUP],
                    "IdentityType": "GROUP",
                    "SessionPolicyArn": policy_arn,
                },
            )
        return studio_id

    # --- Identity Store -------------------------------------------------------------------------

    async def find(self, operation: str, path: str, value: str, key: str) -> str | None:
        try:
            found = await self.demo.call(
                "identitystore",
                operation,
                {
                    "IdentityStoreId": self.store_id,
                    "AlternateIdentifier": {
                        "UniqueAttribute": {"AttributePath": path, "AttributeValue": value}
                    },
                },
                audit=False,
            )
        except AwsError as exc:
            if exc.code == "ResourceNotFoundException":
                return None
            raise
        return str(found[key])

    async def ensure_directory(self, users: dict[str, IdpUser]) -> dict[str, str]:
        """Users and groups of the users file in the Identity Store; the group ids by name."""
        user_ids: dict[str, str] = {}
        for name in users:
            found = await self.find("GetUserId", "userName", name, "UserId")
            if found is None:
                made = await self.demo.call(
                    "identitystore",
                    "CreateUser",
                    {
                        "IdentityStoreId": self.store_id,
                        "UserName": name,
                        "DisplayName": name.title(),
                        "Name": {"GivenName": name.title(), "FamilyName": "Demo"},
                    },
                )
                found = str(made["UserId"])
            user_ids[name] = found
        group_ids: dict[str, str] = {}
        for group in sorted({g for user in users.values() for g in user.groups}):
            found = await self.find("GetGroupId", "displayName", group, "GroupId")
            created = found is None
            if found is None:
                made = await self.demo.call(
                    "identitystore",
                    "CreateGroup",
                    {"IdentityStoreId": self.store_id, "DisplayName": group},
                )
                found = str(made["GroupId"])
            group_ids[group] = found
            if created:  # memberships only with a new group: later changes are the user's
                for name, user in users.items():
                    if group in user.groups:
                        await self.demo.call(
                            "identitystore",
                            "CreateGroupMembership",
                            {
                                "IdentityStoreId": self.store_id,
                                "GroupId": found,
                                "MemberId": {"UserId": user_ids[name]},
                            },
                        )
        return group_ids

    # --- IAM ------------------------------------------------------------------------------------

    async def ensure_user_role(self) -> bool:
        return await self.demo.ensure_role(USER_ROLE, self.demo.service_trust())

    async def ensure_session_policy(self) -> str:
        arn = f"arn:aws:iam::{self.demo.account}:policy/{SESSION_POLICY}"
        try:
            await self.demo.call("iam", "GetPolicy", {"PolicyArn": arn}, audit=False)
        except AwsError as exc:
            if exc.code != "NoSuchEntity":
                raise
            await self.demo.call(
                "iam",
                "CreatePolicy",
                {
                    "PolicyName": SESSION_POLICY,
                    "PolicyDocument": self.demo.basic_user_policy(),
                    "Description": "emustudio demo: what an analyst may do in a Studio",
                },
            )
        return arn

    # --- the Studio -----------------------------------------------------------------------------

    async def ensure_studio(
        self, network: tuple[str, list[str], str] | None
    ) -> tuple[str | None, bool]:
        key = _meta_key(self.demo.region)

        def read(session: Session) -> str | None:
            meta = session.get(Meta, key)
            if meta is None or session.get(Studio, meta.value) is None:
                return None
            return meta.value

        known = await self.demo.store.tx(read)
        if known is not None:
            return known, False
        if network is None:
            return None, False
        vpc_id, subnet_ids, group_id = network
        params: dict[str, Any] = {
            "Name": STUDIO_NAME,
            "Description": "emustudio's demo: sign in through IAM Identity Center",
            "AuthMode": "SSO",
            "UserRole": self.demo.role_arn(USER_ROLE),
            "VpcId": vpc_id,
            "SubnetIds": subnet_ids,
            "ServiceRole": self.demo.role_arn("EMRStudio_Service_Role"),
            "WorkspaceSecurityGroupId": group_id,
            "EngineSecurityGroupId": group_id,
            "DefaultS3Location": f"s3://{self.demo.settings.s3_default_bucket}/demo-sso",
            "Tags": [{"Key": "emustudio:demo", "Value": "true"}],
        }
        made = await self.demo.call("emr", "CreateStudio", params)
        studio_id = str(made["StudioId"])

        def remember(session: Session) -> None:
            session.merge(Meta(key=key, value=studio_id))

        await self.demo.store.tx(remember)
        log.info("demo: made Studio %s (%s)", STUDIO_NAME, studio_id)
        return studio_id, True
