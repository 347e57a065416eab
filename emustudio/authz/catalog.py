"""The authorization catalogue: for an operation and its request, which checks to make.

The data is ``catalog.json`` beside this module (see its ``_doc``); this module only reads it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

CATALOG_PATH = Path(__file__).with_name("catalog.json")


@dataclass(frozen=True)
class Denied:
    """How a service words a refusal."""

    code: str
    status: int
    message_prefix: str = ""


@dataclass(frozen=True)
class Plan:
    """What one request must be allowed: ``action`` on each of ``resources``.

    ``resource_ids`` are the ids whose tags become ``aws:ResourceTag/*`` for the matching
    resource; ``request_tags`` is ``None`` when the request carries no tags (then
    ``aws:RequestTag`` and ``aws:TagKeys`` are absent, not empty).
    """

    action: str
    service_prefix: str
    resources: tuple[str, ...]
    resource_ids: tuple[str | None, ...]
    denied: Denied
    exempt: bool = False
    request_tags: dict[str, str] | None = None
    pass_roles: tuple[str, ...] = ()
    passed_to: str | None = None
    extra_context: dict[str, object] = field(default_factory=dict)


def _fill(template: str, values: dict[str, Any]) -> str | None:
    try:
        return template.format_map(_Strict(values))
    except KeyError:
        return None


class _Strict(dict[str, Any]):
    def __missing__(self, key: str) -> Any:
        raise KeyError(key)


def _tags_of(value: Any) -> dict[str, str]:
    """Tags as the request carries them: a ``Tags`` list or EC2 ``TagSpecifications``."""
    tags: dict[str, str] = {}
    for item in value or []:
        if "Tags" in item:  # EC2 TagSpecification
            tags.update(_tags_of(item["Tags"]))
        elif "Key" in item:
            tags[item["Key"]] = item.get("Value", "")
    return tags


class Catalog:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    @classmethod
    @cache
    def load(cls) -> Catalog:
        return cls(json.loads(CATALOG_PATH.read_text()))

    def plan(
        self,
        service: str,
        operation: str,
        params: dict[str, Any],
        *,
        region: str,
        account: str,
        caller_user: str | None = None,
    ) -> Plan:
        entry = self.data.get(service, {})
        prefix = entry.get("prefix", service)
        denied = Denied(**entry.get("denied", {"code": "AccessDenied", "status": 403}))
        spec: dict[str, Any] = entry.get("operations", {}).get(operation, {})
        action = f"{prefix}:{spec.get('action', operation)}"
        if spec.get("exempt"):
            return Plan(action, prefix, (), (), denied, exempt=True)
        base = entry.get("arn", "").format(region=region, account=account)
        values = dict(params)
        if spec.get("self_when_absent") and "UserName" not in values and caller_user:
            values["UserName"] = caller_user
        values.update(region=region, account=account)

        pairs: list[tuple[str, str | None]] = []
        templates: list[str] | None = spec.get("resources")
        if templates is None and "by_prefix" not in spec and "each" not in spec:
            templates = [
                t for member, t in entry.get("default_by_member", {}).items() if member in params
            ]
        for template in templates or []:
            resolved = _fill(template, values)
            if resolved is not None:
                rid = None if resolved.endswith("*") else resolved.rsplit("/", 1)[-1]
                pairs.append((resolved if resolved.startswith("arn:") else base + resolved, rid))
        for key in ("by_prefix", "each"):
            if key in spec:
                member = params.get(spec[key]["member"])
                ids = member if isinstance(member, list) else [member] if member else []
                for rid in ids:
                    kind = next(
                        (t for p, t in spec[key]["types"].items() if str(rid).startswith(p)), None
                    )
                    if kind is not None:
                        pairs.append((f"{base}{kind}/{rid}", str(rid)))
        if not pairs:
            pairs = [("*", None)]

        request_tags = None
        if "request_tags" in spec and params.get(spec["request_tags"]) is not None:
            request_tags = _tags_of(params[spec["request_tags"]])
        extra: dict[str, object] = {
            key: params[member]
            for key, member in spec.get("context", {}).items()
            if params.get(member) is not None
        }
        if "tag_keys" in spec and params.get(spec["tag_keys"]) is not None:
            extra["aws:TagKeys"] = list(params[spec["tag_keys"]])
        roles = tuple(
            self.role_arn(str(params[m]), account)
            for m in spec.get("pass_roles", [])
            if params.get(m)
        )
        return Plan(
            action=action,
            service_prefix=prefix,
            resources=tuple(r for r, _ in pairs),
            resource_ids=tuple(i for _, i in pairs),
            denied=denied,
            request_tags=request_tags,
            pass_roles=roles,
            passed_to=spec.get("passed_to"),
            extra_context=extra,
        )

    @staticmethod
    def role_arn(name_or_arn: str, account: str) -> str:
        if name_or_arn.startswith("arn:"):
            return name_or_arn
        return f"arn:aws:iam::{account}:role/{name_or_arn}"
