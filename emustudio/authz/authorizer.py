"""Authorization of every API call by a non-root principal, with the IAM policy engine.

For each check of the operation's :class:`~emustudio.authz.catalog.Plan` the authorizer
gathers the principal's identity policies, session policies and boundary, builds the request
context (principal facts, tags, time, source), asks :func:`emustudio.iam.evaluate`, and on a
deny raises the service's own refusal with AWS's message. Roles passed to a service are
checked as ``iam:PassRole`` after the action itself, as AWS does.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol, TypeVar

from sqlmodel import Session, col, select

from emustudio.authz.catalog import Catalog, Denied, Plan
from emustudio.aws.errors import AwsError
from emustudio.context import Principal, RequestContext
from emustudio.iam import (
    AuthzRequest,
    Decision,
    Effect,
    Policy,
    PolicySet,
    deny_message,
    evaluate,
    parse_policy,
)
from emustudio.iam.keys import merge_contexts, tag_context
from emustudio.store import Store
from emustudio.store.tables import Tag

T = TypeVar("T")


def bucket_arn(resource: str) -> str:
    """An S3 object's ARN as its bucket's; any other ARN as it is."""
    if resource.startswith("arn:aws:s3:::"):
        return "arn:aws:s3:::" + resource[len("arn:aws:s3:::") :].split("/", 1)[0]
    return resource


_PRINCIPAL_TYPES = {"Root": "Account", "IAMUser": "User", "AssumedRole": "AssumedRole"}


@lru_cache(maxsize=512)
def _parsed_session_policies(documents: tuple[str, ...]) -> tuple[Policy, ...]:
    return tuple(parse_policy(doc, "session") for doc in documents)


def session_policies(documents: tuple[str, ...]) -> list[Policy] | None:
    """A session's policies, parsed (once per set: a session makes many calls); None when the
    session has none, which the engine reads as "no session policy in effect"."""
    return list(_parsed_session_policies(documents)) if documents else None


class PolicySource(Protocol):
    """Where a principal's policies and tags come from (the IAM service)."""

    async def identity_policy_set(self, principal: Principal) -> tuple[list[Policy], Policy | None]:
        """The identity-based policies and the permissions boundary of ``principal``."""
        ...

    async def principal_tags(self, principal: Principal) -> dict[str, str]:
        """``aws:PrincipalTag`` values: user tags, or role tags overridden by session tags."""
        ...


class ResourcePolicySource(Protocol):
    """The resource-based policies that bear on a resource ARN (S3 bucket policies)."""

    async def bearing_on(self, resource: str) -> tuple[list[Policy], str | None]:
        """The policies, and the account that owns the resource when the source knows it
        (a bucket's owner: S3 ARNs name no account)."""
        ...


class PerAccount:
    """Each principal's policies from its own account's IAM (setting ``other_accounts``)."""

    def __init__(self, own: PolicySource, others: Mapping[str, PolicySource]) -> None:
        self.own = own
        self.others = others

    def _of(self, principal: Principal) -> PolicySource:
        return self.others.get(principal.account_id, self.own)

    async def identity_policy_set(self, principal: Principal) -> tuple[list[Policy], Policy | None]:
        return await self._of(principal).identity_policy_set(principal)

    async def principal_tags(self, principal: Principal) -> dict[str, str]:
        return await self._of(principal).principal_tags(principal)


# Root may do anything in its own account; evaluated only where another account's resource
# policy must grant it too (S3 across accounts), this stands for that.
_ROOT = parse_policy(
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}',
    "identity",
    name="root",
)


class WriteCounter(Protocol):
    """How many writes have run (``services.base.WRITES``): a read kept from the store is good
    while the count has not moved."""

    @property
    def value(self) -> int: ...


class StoreReads:
    """What the authorizer reads from the store for a decision (a principal's policies and
    tags, a bucket's policy and owner), kept while no write has run and for ``max_age``
    seconds at most (writes outside this process: a shared store). Decisions are still made
    every call, from these reads: conditions on time, address or request hold as ever; what
    goes is the store's round trip on another thread, three per S3 call by a user or role."""

    def __init__(self, writes: WriteCounter | None, max_age: float = 10.0) -> None:
        self.writes = writes
        self.max_age = max_age
        self.entries: dict[tuple[object, ...], tuple[int, float, Any]] = {}

    async def get(self, key: tuple[object, ...], load: Callable[[], Awaitable[T]]) -> T:
        if self.writes is None:
            return await load()
        now = time.monotonic()
        hit = self.entries.get(key)
        if hit is not None and hit[0] == self.writes.value and now - hit[1] < self.max_age:
            value: T = hit[2]
            return value
        writes = self.writes.value  # before the read: a write during it makes it stale
        loaded = await load()
        if len(self.entries) >= 4096:
            self.entries.clear()
        self.entries[key] = (writes, now, loaded)
        return loaded


class AccessDenied(AwsError):
    pass


def refusal(denied: Denied, message: str) -> AccessDenied:
    return AccessDenied(denied.message_prefix + message, code=denied.code, status=denied.status)


def s3_request_keys(ctx: RequestContext, account_id: str) -> dict[str, object]:
    """S3's condition keys that come from the request itself rather than its parameters."""
    http = ctx.http
    presigned = "X-Amz-Credential" in http.query or "AWSAccessKeyId" in http.query
    keys: dict[str, object] = {
        "s3:authType": "REST-QUERY-STRING" if presigned else "REST-HEADER",
        "s3:signatureversion": "AWS" if "AWSAccessKeyId" in http.query else "AWS4-HMAC-SHA256",
        "s3:ResourceAccount": account_id,
    }
    for header in (
        "x-amz-content-sha256",
        "x-amz-acl",
        "x-amz-server-side-encryption",
        "x-amz-copy-source",
        "x-amz-metadata-directive",
        "x-amz-storage-class",
    ):
        value = http.headers.get(header)
        if value is not None:
            keys[f"s3:{header}"] = value
    return keys


class PolicyAuthorizer:
    def __init__(
        self,
        store: Store,
        policies: PolicySource,
        *,
        region: str,
        account_id: str,
        catalog: Catalog | None = None,
        resource_policies: ResourcePolicySource | None = None,
        multi_account: bool = False,
        writes: WriteCounter | None = None,
    ) -> None:
        self.reads = StoreReads(writes)
        # ``multi_account``: other accounts exist, so root's S3 calls are decided too.
        self.multi_account = multi_account
        self.store = store
        self.policies = policies
        self.resource_policies = resource_policies
        self.region = region
        self.account_id = account_id
        self.catalog = catalog or Catalog.load()

    async def authorize(self, ctx: RequestContext) -> None:
        principal = ctx.principal
        assert principal is not None and ctx.service is not None
        plan = self.catalog.plan(
            ctx.service.service_name,
            ctx.operation_name,
            ctx.params,
            region=self.region,
            account=self.account_id,
            caller_user=principal.name if principal.kind == "IAMUser" else None,
        )
        if plan.exempt:
            return
        identity, boundary = await self.identity_of(principal)
        session = session_policies(principal.session_policies)
        policies = PolicySet(identity=identity, session=session, boundary=boundary)
        base = merge_contexts(
            await self.principal_context_of(principal),
            self.request_context(ctx),
            plan.extra_context,
        )
        resource_tags = await self.resource_tags(plan)
        for resource, rid in zip(plan.resources, plan.resource_ids, strict=True):
            context = merge_contexts(
                base,
                tag_context(
                    service=plan.service_prefix,
                    resource_tags=resource_tags.get(rid or ""),
                    request_tags=plan.request_tags,
                ),
            )
            with_resource = await self.with_resource_policies(policies, resource)
            if plan.action == "s3:CreateBucket":  # the new bucket will be the caller's
                with_resource = replace(with_resource, resource_account=principal.account_id)
            if "s3:ResourceAccount" in context and with_resource.resource_account:
                context["s3:ResourceAccount"] = with_resource.resource_account  # the owner's
            self.check(plan.action, resource, principal, context, with_resource, plan.denied)
        for role_arn in plan.pass_roles:
            context = merge_contexts(base, {"iam:PassedToService": plan.passed_to})
            self.check("iam:PassRole", role_arn, principal, context, policies, plan.denied)

    async def allowed(
        self,
        principal: Principal,
        action: str,
        resource: str,
        extra_context: Mapping[str, object] | None = None,
        *,
        source_ip: str = "127.0.0.1",
    ) -> Decision:
        """Whether ``principal`` may ``action`` on ``resource`` (an ARN, or ``*``), decided as
        :meth:`authorize` decides an API call: the same policies, principal and request keys,
        and the resource's tags (``aws:ResourceTag/*``, ``<service>:ResourceTag/*``).

        For what is no API call of its own: opening a Studio (``CreateStudioPresignedUrl``),
        a Workspace (``OpenEditorInConsole``), and the Studio pages' checks. Root is allowed.
        """
        if principal.is_root and not self.multi_account:
            return Decision(Effect.ALLOW, (), "root")
        identity, boundary = await self.identity_of(principal)
        session = session_policies(principal.session_policies)
        now = datetime.now(UTC)
        # A resource's id, whose tags are aws:ResourceTag; S3's ARNs end in keys, not ids.
        s3 = resource.startswith("arn:aws:s3:::")
        rid = None if resource.endswith("*") or s3 else resource.rsplit("/", 1)[-1]
        tags = (await self.resource_tags_of([rid])).get(rid, {}) if rid else {}
        context = merge_contexts(
            await self.principal_context_of(principal),
            {
                "aws:CurrentTime": now,
                "aws:EpochTime": int(now.timestamp()),
                "aws:SecureTransport": False,
                "aws:SourceIp": source_ip,
                "aws:RequestedRegion": self.region,
            },
            tag_context(service=action.split(":", 1)[0], resource_tags=tags),
            dict(extra_context or {}),
        )
        policies = PolicySet(identity=identity, session=session, boundary=boundary)
        return evaluate(
            AuthzRequest(action, resource, principal.arn, context),
            await self.with_resource_policies(policies, resource),
        )

    async def identity_of(self, principal: Principal) -> tuple[list[Policy], Policy | None]:
        """The principal's identity policies and boundary; an anonymous caller has none."""
        if principal.is_anonymous:
            return [], None
        if principal.is_root:
            return [_ROOT], None
        key = ("identity", principal.kind, principal.arn, principal.user_id, principal.issuer_id)
        return await self.reads.get(key, lambda: self.policies.identity_policy_set(principal))

    async def principal_context_of(self, principal: Principal) -> dict[str, object]:
        if principal.is_anonymous:
            return {}  # no aws:Principal* key is present for an unsigned request
        key = (
            "tags", principal.kind, principal.user_id, principal.issuer_id,
            tuple(sorted(principal.session_tags.items())),
        )  # fmt: skip
        tags = await self.reads.get(key, lambda: self.policies.principal_tags(principal))
        return self.principal_context(principal, tags)

    async def with_resource_policies(self, policies: PolicySet, resource: str) -> PolicySet:
        if self.resource_policies is None or resource == "*":
            return policies
        source = self.resource_policies
        # One bucket's policy and owner bear on all its objects: read once for all of them.
        bucket = resource.split(":::", 1)[1].split("/", 1)[0] if ":::" in resource else resource
        found, owner = await self.reads.get(
            ("resource", bucket), lambda: source.bearing_on(bucket_arn(resource))
        )
        if not found and owner is None:
            return policies
        # The owner decides whether the call crosses accounts: then both sides must allow.
        return replace(policies, resource=found, resource_account=owner or self.account_id)

    @staticmethod
    def check(
        action: str,
        resource: str,
        principal: Principal,
        context: dict[str, object],
        policies: PolicySet,
        denied: Denied,
    ) -> None:
        decision = evaluate(AuthzRequest(action, resource, principal.arn, context), policies)
        if not decision.allowed:
            if principal.is_anonymous:
                raise refusal(denied, "Access Denied")  # S3 names no caller to anonymous
            shown = "" if resource == "*" else resource
            raise refusal(denied, deny_message(principal.arn, action, shown, decision))

    def principal_context(self, p: Principal, tags: dict[str, str]) -> dict[str, object]:
        context: dict[str, object] = {
            "aws:userid": p.user_id,
            "aws:PrincipalArn": p.issuer_arn or p.arn,
            "aws:PrincipalAccount": p.account_id,
            "aws:PrincipalType": _PRINCIPAL_TYPES.get(p.kind, p.kind),
            "aws:SourceIdentity": p.source_identity,
        }
        if p.kind == "IAMUser":
            context["aws:username"] = p.name
        return merge_contexts(context, tag_context(principal_tags=tags))

    def request_context(self, ctx: RequestContext) -> dict[str, object]:
        now = datetime.now(UTC)
        context: dict[str, object] = {
            "aws:CurrentTime": now,
            "aws:EpochTime": int(now.timestamp()),
            "aws:SecureTransport": False,
            "aws:SourceIp": getattr(ctx.http, "remote_ip", "127.0.0.1"),
            "aws:RequestedRegion": ctx.region,
        }
        if ctx.service is not None and ctx.service.service_name == "s3":
            context.update(s3_request_keys(ctx, self.account_id))
        return context

    async def resource_tags(self, plan: Plan) -> dict[str, dict[str, str]]:
        if plan.service_prefix == "s3":
            return {}  # S3's ARNs end in keys, not ids of the tags table (one store trip less)
        return await self.resource_tags_of(plan.resource_ids)

    async def resource_tags_of(
        self, resource_ids: Iterable[str | None]
    ) -> dict[str, dict[str, str]]:
        ids = [rid for rid in resource_ids if rid]
        if not ids:
            return {}

        def read(session: Session) -> dict[str, dict[str, str]]:
            out: dict[str, dict[str, str]] = {rid: {} for rid in ids}
            rows = session.exec(select(Tag).where(col(Tag.resource_id).in_(ids)))
            for tag in rows:
                out[tag.resource_id][tag.key] = tag.value
            return out

        return await self.store.tx(read)
