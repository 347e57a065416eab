"""Which field of the create-cluster form a refusal of ``RunJobFlow`` is shown beside."""

from __future__ import annotations

import pytest

from emustudio.aws.errors import AwsError
from emustudio.web.clusters import field_of

DRAFT = {"service_role": "EMR_DefaultRole", "job_flow_role": "Mine", "master_type": "x9.huge"}


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ("Invalid InstanceProfile: Mine.", "job_flow_role"),
        ("Invalid ServiceRole: EMR_DefaultRole.", "service_role"),
        ("The requested release label 'emr-9' is invalid.", "release_label"),
        ("The subnet ID 'subnet-0' does not exist.", "subnet_id"),
        ("The requested instance type x9.huge is not supported.", "master_type"),
        ("The requested instance type y1.big is not supported.", "core_type"),
        (
            "User: arn:aws:iam::000000000000:user/u is not authorized to perform: iam:PassRole"
            " on resource: arn:aws:iam::000000000000:role/Mine",
            "job_flow_role",
        ),
        ("1 validation error detected: Value '' at 'name' failed to satisfy constraint", "name"),
        ("Something about the whole request.", None),
    ],
)
def test_a_refusal_goes_beside_its_field(message: str, field: str | None) -> None:
    error = AwsError(message, code="ValidationException", status=400)
    assert field_of(error, DRAFT) == field
