"""Every refusal the authorization tests provoke must leave a CloudTrail record.

A botocore hook on the default session notes each refused call (its request id, error code and
operation); when the module's tests are done, each is looked up with ``LookupEvents`` and must
be there with the same ``requestID``, ``errorCode`` and a named ``userIdentity``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from emustudio.testing.gateway import GatewayProcess

REFUSALS = {"AccessDeniedException", "UnauthorizedOperation", "AccessDenied"}


@pytest.fixture(scope="module")
def denied_calls_are_audited(gateway: GatewayProcess) -> Iterator[list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []

    def note(http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        code = parsed.get("Error", {}).get("Code")
        if code in REFUSALS:
            seen.append(
                {
                    "request_id": parsed["ResponseMetadata"]["RequestId"],
                    "code": code,
                    "operation": model.name,
                }
            )

    events = boto3._get_default_session().events
    events.register("after-call", note, unique_id="emustudio-audit-check")
    try:
        yield seen
    finally:
        events.unregister("after-call", unique_id="emustudio-audit-check")
    trail = gateway.client("cloudtrail")
    assert seen, "the module provoked no refusal to check"
    for refusal in seen:
        records = [
            json.loads(event["CloudTrailEvent"])
            for page in trail.get_paginator("lookup_events").paginate(
                LookupAttributes=[
                    {"AttributeKey": "EventName", "AttributeValue": refusal["operation"]}
                ]
            )
            for event in page["Events"]
        ]
        match = [r for r in records if r["requestID"] == refusal["request_id"]]
        assert match, f"no CloudTrail record of refused {refusal}"
        record = match[0]
        assert record["errorCode"] == refusal["code"]
        assert record["userIdentity"]["type"] in ("IAMUser", "AssumedRole")
        assert record["userIdentity"]["arn"].startswith("arn:aws:")
        assert record["errorMessage"].startswith(("User: ", "You are not authorized"))
