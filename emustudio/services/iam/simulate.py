"""The policy simulator: ``SimulatePrincipalPolicy`` and ``SimulateCustomPolicy``.

Both decide with :func:`emustudio.iam.evaluate`, the evaluation the gateway applies to real
calls, one result per action and resource (``ResourceArns`` defaults to ``*``). As in IAM, the
simulator supplies no context key of its own: conditions see only ``ContextEntries``, and the
keys that applicable statements ask for but were not given are listed in
``MissingContextValues``. ``MatchedStatements`` cite each statement's policy and its position
in the document (1-based line and column of the statement's braces).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlmodel import Session

from emustudio.context import RequestContext
from emustudio.iam import (
    AuthzRequest,
    Decision,
    Effect,
    Policy,
    PolicyError,
    PolicyKind,
    PolicySet,
    evaluate,
    parse_policy,
)
from emustudio.iam.patterns import action_matches
from emustudio.services.base import operation
from emustudio.services.iam.common import InvalidInput, NoSuchEntity, page
from emustudio.services.iam.identity import IdentityOperations, SourcedPolicy

_DECISIONS = {
    Effect.ALLOW: "allowed",
    Effect.EXPLICIT_DENY: "explicitDeny",
    Effect.IMPLICIT_DENY: "implicitDeny",
}


# --- statement positions --------------------------------------------------------------------


class _Scanner:
    """Offsets of values in a JSON text already known to be valid."""

    def __init__(self, text: str) -> None:
        self.text = text

    def ws(self, i: int) -> int:
        while i < len(self.text) and self.text[i] in " \t\r\n":
            i += 1
        return i

    def string(self, i: int) -> tuple[str, int]:
        j = i + 1
        while self.text[j] != '"':
            j += 2 if self.text[j] == "\\" else 1
        return str(json.loads(self.text[i : j + 1])), j + 1

    def value(self, i: int) -> int:
        char = self.text[i]
        if char == "{":
            return self.members(i)[1]
        if char == "[":
            return self.items(i)[1]
        if char == '"':
            return self.string(i)[1]
        while i < len(self.text) and self.text[i] not in ",]} \t\r\n":
            i += 1
        return i

    def members(self, i: int) -> tuple[dict[str, tuple[int, int]], int]:
        out: dict[str, tuple[int, int]] = {}
        i = self.ws(i + 1)
        if self.text[i] == "}":
            return out, i + 1
        while True:
            key, i = self.string(self.ws(i))
            start = self.ws(self.ws(i) + 1)
            end = self.value(start)
            out[key] = (start, end)
            i = self.ws(end)
            if self.text[i] == ",":
                i += 1
                continue
            return out, i + 1

    def items(self, i: int) -> tuple[list[tuple[int, int]], int]:
        out: list[tuple[int, int]] = []
        i = self.ws(i + 1)
        if self.text[i] == "]":
            return out, i + 1
        while True:
            start = self.ws(i)
            end = self.value(start)
            out.append((start, end))
            i = self.ws(end)
            if self.text[i] == ",":
                i += 1
                continue
            return out, i + 1


def _position(text: str, offset: int) -> dict[str, int]:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return {"Line": line, "Column": column}


def statement_positions(text: str) -> list[tuple[dict[str, int], dict[str, int]]]:
    """Start and end position of each statement of a policy document."""
    try:
        scanner = _Scanner(text)
        top, _ = scanner.members(scanner.ws(0))
        start, end = top["Statement"]
        spans = scanner.items(start)[0] if text[start] == "[" else [(start, end)]
        return [(_position(text, s), _position(text, e)) for s, e in spans]
    except (KeyError, IndexError, ValueError):
        return []


# --- the simulation -------------------------------------------------------------------------


def _context(entries: Sequence[dict[str, Any]]) -> dict[str, object]:
    context: dict[str, object] = {}
    for entry in entries:
        key = entry.get("ContextKeyName")
        if not key:
            continue
        values = list(entry.get("ContextKeyValues") or [])
        kind = entry.get("ContextKeyType") or "string"
        context[key] = values if kind.endswith("List") else (values[0] if values else None)
    return context


def _parse(document: str, kind: PolicyKind, name: str) -> Policy:
    try:
        return parse_policy(document, kind, name=name)
    except PolicyError as error:
        raise InvalidInput(error.message) from None


def _missing_keys(policies: Sequence[Policy], action: str, context: dict[str, object]) -> list[str]:
    given = {k.lower() for k, v in context.items() if v is not None}
    missing: dict[str, str] = {}
    for policy in policies:
        for statement in policy.statements:
            named = any(action_matches(p, action) for p in statement.actions)
            if named == statement.not_actions:
                continue
            for clause in statement.conditions:
                if clause.key and clause.key.lower() not in given:
                    missing.setdefault(clause.key.lower(), clause.key)
    return sorted(missing.values(), key=str.lower)


class SimulateOperations(IdentityOperations):
    def simulate(
        self,
        params: dict[str, Any],
        identity: list[SourcedPolicy],
        boundary: SourcedPolicy | None,
        caller_arn: str,
    ) -> dict[str, Any]:
        context = _context(params.get("ContextEntries") or [])
        resource: list[SourcedPolicy] = []
        if params.get("ResourcePolicy"):
            policy = _parse(params["ResourcePolicy"], "resource", "ResourcePolicy")
            resource.append(SourcedPolicy(policy, "ResourcePolicy", "resource"))
        sources = {s.policy.name: s for s in [*identity, *resource]}
        if boundary is not None:
            sources[boundary.policy.name] = boundary
        policy_set = PolicySet(
            identity=[s.policy for s in identity],
            boundary=boundary.policy if boundary else None,
            resource=[s.policy for s in resource],
            resource_account=params.get("ResourceOwner"),
        )
        everything = [s.policy for s in sources.values()]
        results: list[dict[str, Any]] = []
        for action in params["ActionNames"]:
            for resource_arn in params.get("ResourceArns") or ["*"]:
                request = AuthzRequest(action, resource_arn, caller_arn, context)
                decision = evaluate(request, policy_set)
                result: dict[str, Any] = {
                    "EvalActionName": action,
                    "EvalResourceName": resource_arn,
                    "EvalDecision": _DECISIONS[decision.effect],
                    "MatchedStatements": self._matched(decision, sources),
                    "MissingContextValues": _missing_keys(everything, action, context),
                }
                if boundary is not None:
                    allowed = evaluate(request, PolicySet(identity=[boundary.policy])).allowed
                    result["PermissionsBoundaryDecisionDetail"] = {
                        "AllowedByPermissionsBoundary": allowed
                    }
                results.append(result)
        items, out = page(results, params, "EvaluationResults")
        out["EvaluationResults"] = items
        return out

    @staticmethod
    def _matched(decision: Decision, sources: dict[str | None, SourcedPolicy]) -> list[Any]:
        if decision.effect is Effect.IMPLICIT_DENY:
            return []
        out = []
        for matched in decision.matched:
            source = sources.get(matched.policy)
            if source is None:
                continue
            entry: dict[str, Any] = {
                "SourcePolicyId": source.source_id,
                "SourcePolicyType": source.source_type,
            }
            positions = statement_positions(source.policy.text)
            if matched.index < len(positions):
                entry["StartPosition"], entry["EndPosition"] = positions[matched.index]
            out.append(entry)
        return out

    @staticmethod
    def _inputs(params: dict[str, Any]) -> tuple[list[SourcedPolicy], SourcedPolicy | None]:
        identity = [
            SourcedPolicy(_parse(doc, "identity", name), name, "none")
            for i, doc in enumerate(params.get("PolicyInputList") or [], start=1)
            for name in [f"PolicyInputList.{i}"]
        ]
        boundaries = params.get("PermissionsBoundaryPolicyInputList") or []
        if len(boundaries) > 1:
            raise InvalidInput("Only one permissions boundary policy can be simulated.")
        boundary = None
        if boundaries:
            name = "PermissionsBoundaryPolicyInputList.1"
            boundary = SourcedPolicy(_parse(boundaries[0], "identity", name), name, "none")
        return identity, boundary

    @operation("SimulateCustomPolicy")
    async def simulate_custom_policy(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        identity, boundary = self._inputs(params)
        caller = params.get("CallerArn") or self.root_arn
        return self.simulate(params, identity, boundary, caller)

    @operation("SimulatePrincipalPolicy")
    async def simulate_principal_policy(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        source_arn = params["PolicySourceArn"]
        extra, boundary_override = self._inputs(params)
        parts = source_arn.split(":", 5)
        if len(parts) < 6 or parts[0] != "arn" or parts[2] != "iam":
            raise InvalidInput(f"Invalid ARN: {source_arn}")
        kind, _, rest = parts[5].partition("/")
        name = rest.rsplit("/", 1)[-1]

        def read(session: Session) -> tuple[list[SourcedPolicy], SourcedPolicy | None, str]:
            if parts[4] != self.account_id or kind not in ("user", "group", "role"):
                raise NoSuchEntity(f"Entity {source_arn} does not exist.")
            if kind == "user":
                user = self.user_or_raise(session, name)
                policies, boundary = self.user_policies(session, user)
                return policies, boundary, self.user_arn(user)
            if kind == "role":
                role = self.role_or_raise(session, name)
                policies, boundary = self.role_policies(session, role)
                return policies, boundary, self.role_arn(role)
            group = self.group_or_raise(session, name)
            return (
                self._entity_policies(session, "group", group.id, group.name),
                None,
                self.group_arn(group),
            )

        policies, boundary, entity_arn = await self.store.tx(read)
        caller = params.get("CallerArn") or entity_arn
        return self.simulate(params, [*policies, *extra], boundary_override or boundary, caller)
