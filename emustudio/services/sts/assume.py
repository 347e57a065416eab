"""``GetCallerIdentity``, ``AssumeRole`` and ``GetSessionToken``.

``AssumeRole`` decides as AWS does. Within one account: the role's trust policy is always
required; a trust policy that names the caller's own ARN (the user, or the calling session) is
enough on its own; one that names only the account (or the calling session's role) delegates to
the caller's identity policies, which must then allow ``sts:AssumeRole`` on the role (within the
caller's permissions boundary and session policies). Passing session tags needs
``sts:TagSession`` and a source identity ``sts:SetSourceIdentity``, decided the same way. Root
cannot assume roles, and a role session assuming a role (role chaining) gets at most an hour.
Across accounts (setting ``other_accounts``) both sides must allow: the role's trust policy, in
its account, and the caller's identity policies, in the caller's; the session is the role's
account's.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from emustudio.context import Principal, RequestContext
from emustudio.iam import AuthzRequest, PolicySet, evaluate, tag_context
from emustudio.services.base import operation
from emustudio.services.sts.common import (
    CHAINED_MAX_SECONDS,
    AccessDenied,
    StsBase,
    ValidationError,
    check_tags,
    not_authorized,
    trust_policy,
)
from emustudio.store.iam_tables import IamRole

DEFAULT_DURATION = 3600
SESSION_TOKEN_DEFAULT = 43200
ROOT_SESSION_MAX = 3600

_PRINCIPAL_TYPES = {"IAMUser": "User", "AssumedRole": "AssumedRole", "Root": "Account"}


def caller_context(
    principal: Principal, principal_tags: Mapping[str, str], now: float
) -> dict[str, object]:
    """The global condition keys that describe the caller of an STS request."""
    context: dict[str, object] = {
        "aws:PrincipalArn": principal.issuer_arn or principal.arn,
        "aws:PrincipalAccount": principal.account_id,
        "aws:PrincipalType": _PRINCIPAL_TYPES.get(principal.kind, principal.kind),
        "aws:userid": principal.user_id,
        "aws:CurrentTime": datetime.fromtimestamp(now, tz=UTC),
        "aws:EpochTime": int(now),
        "aws:SecureTransport": False,
    }
    if principal.kind == "IAMUser":
        context["aws:username"] = principal.name
    if principal.source_identity:
        context["aws:SourceIdentity"] = principal.source_identity
    context.update(tag_context(principal_tags=principal_tags))
    return context


class AssumeRoleOperations(StsBase):
    @operation("GetCallerIdentity")
    async def get_caller_identity(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        principal = ctx.principal
        assert principal is not None
        return {"UserId": principal.user_id, "Account": principal.account_id, "Arn": principal.arn}

    async def check_assume(
        self,
        caller: Principal,
        role: IamRole | None,
        role_arn: str,
        context: dict[str, object],
        actions: list[str],
    ) -> None:
        """Raise AccessDenied unless the caller may do every one of ``actions`` on the role."""
        if role is None:
            raise not_authorized(caller.arn, "sts:AssumeRole", role_arn)
        identity, boundary = await self.iam.identity_policy_set(caller)
        policies = PolicySet(
            identity=identity,
            boundary=boundary,
            session=self.parsed_session_policies(caller),
            resource=[trust_policy(role)],
        )
        for action in actions:
            decision = evaluate(AuthzRequest(action, role_arn, caller.arn, context), policies)
            if not decision.allowed:
                raise not_authorized(caller.arn, action, role_arn)

    @operation("AssumeRole")
    async def assume_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        caller = ctx.principal
        assert caller is not None
        if caller.is_root:
            raise AccessDenied("Roles may not be assumed by root accounts.")
        role_arn = params["RoleArn"]
        session_name = params["RoleSessionName"]
        chained = caller.kind == "AssumedRole"
        inherited = (
            {k: v for k, v in caller.session_tags.items() if k in caller.transitive_tag_keys}
            if chained
            else {}
        )
        requested_tags = check_tags(
            params.get("Tags") or [], params.get("TransitiveTagKeys") or [], inherited
        )
        policies = await self.session_policies(params.get("Policy"), params.get("PolicyArns") or [])
        packed = self.packed_size(policies, requested_tags)
        source_identity = params.get("SourceIdentity")
        if caller.source_identity and source_identity and source_identity != caller.source_identity:
            raise ValidationError(
                "SourceIdentity cannot be changed: the calling session has source identity"
                f" {caller.source_identity}."
            )

        # The role's own account's STS finds the role and issues its session; the caller's
        # identity policies are this account's IAM's (across accounts both sides must allow).
        home = self.accounts.get(role_arn.split(":")[4] if role_arn.count(":") >= 5 else "", self)
        role = await home.iam.get_role(role_arn)
        context = caller_context(caller, await self.iam.principal_tags(caller), self.now())
        context.update(tag_context(request_tags=requested_tags) if requested_tags else {})
        context["sts:RoleSessionName"] = session_name
        if params.get("ExternalId") is not None:
            context["sts:ExternalId"] = params["ExternalId"]
        if source_identity:
            context["sts:SourceIdentity"] = source_identity
        if params.get("TransitiveTagKeys"):
            context["sts:TransitiveTagKeys"] = list(params["TransitiveTagKeys"])
        actions = ["sts:AssumeRole"]
        if requested_tags:
            actions.append("sts:TagSession")
        if source_identity and source_identity != caller.source_identity:
            actions.append("sts:SetSourceIdentity")
        await self.check_assume(caller, role, role_arn, context, actions)
        assert role is not None

        duration = params.get("DurationSeconds") or DEFAULT_DURATION
        if chained and duration > CHAINED_MAX_SECONDS:
            raise ValidationError(
                "The requested DurationSeconds exceeds the 1 hour session limit for roles"
                " assumed by role chaining."
            )
        issued = await home.issue_role_session(
            role,
            session_name,
            duration,
            policies=policies.documents,
            tags={**inherited, **requested_tags},
            transitive=tuple(dict.fromkeys([*inherited, *(params.get("TransitiveTagKeys") or [])])),
            source_identity=caller.source_identity or source_identity,
        )
        return issued.assumed_role(packed, caller.source_identity or source_identity)

    @operation("GetSessionToken")
    async def get_session_token(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        caller = ctx.principal
        assert caller is not None
        if caller.kind not in ("Root", "IAMUser") or caller.session_expires is not None:
            raise AccessDenied("Cannot call GetSessionToken with session credentials")
        duration = params.get("DurationSeconds") or SESSION_TOKEN_DEFAULT
        if caller.is_root:
            duration = min(duration, ROOT_SESSION_MAX)

        def make(key_id: str, expires: datetime) -> Principal:
            return Principal(
                kind=caller.kind,
                arn=caller.arn,
                account_id=caller.account_id,
                access_key_id=key_id,
                name=caller.name,
                user_id=caller.user_id,
                session_expires=expires,
            )

        issued = await self.issue(make, duration)
        return {"Credentials": issued.credentials_shape()}
