"""What the ``emu_`` fixtures make, and how: IAM users, Studios and Workspaces, through the API.

Everything here goes through the gateway's public AWS API with boto3, as a user's own test code
would; the fixtures in :mod:`emustudio.testing.plugin` add the cleanup.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from emustudio.testing.service_role import ensure_studio_service_role, tag_for_emr

__all__ = [
    "Boto3Factory",
    "IamUser",
    "IamUserFactory",
    "Studio",
    "Workspace",
    "WorkspaceStartFailed",
    "create_iam_user",
    "create_studio",
    "delete_iam_user",
    "delete_studio",
    "delete_workspace",
    "start_workspace",
    "wait_for_status",
]

# How often a wait asks again: DescribeEditor is cheap, and a wait ends this long at worst after
# what it waits for happened.
_POLL_SECONDS = 0.1

# EC2 errors that mean "already gone" during cleanup.
_GONE = {
    "InvalidVpcID.NotFound",
    "InvalidSubnetID.NotFound",
    "InvalidGroup.NotFound",
    "InvalidGroupId.NotFound",
    "NoSuchEntity",
}


class Boto3Factory(Protocol):
    """``emu_boto3``: ``emu_boto3("emr")`` is a client signed as root; ``**kwargs`` go to
    ``boto3.client`` (``aws_access_key_id=``, ``config=``...). ``"emr-studio"`` (the Workspace
    operations) works too."""

    def __call__(self, service: str, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class IamUser:
    """An IAM user with an access key (and a console password when one was asked for)."""

    name: str
    arn: str
    access_key_id: str
    secret_access_key: str
    password: str | None
    boto3: Boto3Factory

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client signed with this user's access key."""
        return self.boto3(
            service,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            **kwargs,
        )


class IamUserFactory(Protocol):
    """``emu_iam_user``: ``emu_iam_user(policy, ...)`` makes a user whose inline policies are
    the given documents (dicts or JSON text); ``password=`` also gives it a console password
    (Studio sign-in); ``name=`` picks its name (default ``emu-<random>``)."""

    def __call__(
        self,
        *policy_documents: Mapping[str, Any] | str,
        name: str | None = None,
        password: str | None = None,
    ) -> IamUser: ...


@dataclass(frozen=True)
class Studio:
    """An IAM-mode EMR Studio and the VPC pieces made for it."""

    studio_id: str
    arn: str
    url: str
    name: str
    vpc_id: str
    subnet_ids: tuple[str, ...]
    availability_zones: tuple[str, ...]
    workspace_security_group_id: str
    engine_security_group_id: str
    default_s3_location: str


@dataclass(frozen=True)
class Workspace:
    """A Workspace (an EMR Studio "editor") and its ``DescribeEditor`` answer once Ready."""

    editor_id: str
    studio_id: str
    description: Mapping[str, Any]

    @property
    def status(self) -> str:
        return str(self.description["Status"])

    @property
    def url(self) -> str:
        return str(self.description["Url"])


class WorkspaceStartFailed(AssertionError):
    """A Workspace did not become Ready; the message has its last status and reason."""


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _client_error() -> type[Exception]:
    from botocore.exceptions import ClientError

    error: type[Exception] = ClientError
    return error


def create_iam_user(
    boto3: Boto3Factory,
    *policy_documents: Mapping[str, Any] | str,
    name: str | None = None,
    password: str | None = None,
) -> IamUser:
    iam = boto3("iam")
    name = name or "emu-" + secrets.token_hex(4)
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    for number, document in enumerate(policy_documents, start=1):
        text = document if isinstance(document, str) else json.dumps(document)
        iam.put_user_policy(UserName=name, PolicyName=f"policy-{number}", PolicyDocument=text)
    if password is not None:
        iam.create_login_profile(UserName=name, Password=password)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return IamUser(name, arn, key["AccessKeyId"], key["SecretAccessKey"], password, boto3)


def delete_iam_user(boto3: Boto3Factory, name: str) -> None:
    """Delete the user and what hangs on it (keys, inline policies, password); gone is fine."""
    iam = boto3("iam")
    client_error = _client_error()
    try:
        for key in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
            iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
        for policy in iam.list_user_policies(UserName=name)["PolicyNames"]:
            iam.delete_user_policy(UserName=name, PolicyName=policy)
        for attached in iam.list_attached_user_policies(UserName=name)["AttachedPolicies"]:
            iam.detach_user_policy(UserName=name, PolicyArn=attached["PolicyArn"])
        for group in iam.list_groups_for_user(UserName=name)["Groups"]:
            iam.remove_user_from_group(UserName=name, GroupName=group["GroupName"])
        with contextlib.suppress(client_error):
            iam.delete_login_profile(UserName=name)
        iam.delete_user(UserName=name)
    except client_error as exc:
        if _code(exc) != "NoSuchEntity":
            raise


def create_studio(
    boto3: Boto3Factory,
    *,
    name: str | None = None,
    cidr: str = "10.0.0.0/16",
    default_s3_location: str = "s3://emustudio/workspaces",
) -> Studio:
    """A VPC, a subnet in each of the region's first two Availability Zones, the Workspace and
    engine security groups, and an IAM-mode Studio on them (as the EMR Studio guide sets up)."""
    ec2, emr = boto3("ec2"), boto3("emr")
    name = name or "emu-studio-" + secrets.token_hex(3)
    zones = tuple(
        sorted(z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"])[:2]
    )
    vpc_id = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    prefix = cidr.split(".")[:2]
    subnet_ids = tuple(
        ec2.create_subnet(
            VpcId=vpc_id, CidrBlock=".".join([*prefix, str(i), "0/24"]), AvailabilityZone=zone
        )["Subnet"]["SubnetId"]
        for i, zone in enumerate(zones, start=1)
    )
    workspace_sg = ec2.create_security_group(
        GroupName=f"{name}-workspace", Description="EMR Studio Workspace", VpcId=vpc_id
    )["GroupId"]
    engine_sg = ec2.create_security_group(
        GroupName=f"{name}-engine", Description="EMR Studio engine", VpcId=vpc_id
    )["GroupId"]
    # As the guide sets up: the network tagged for EMR's managed policies, and the service role
    # EMR Studio acts as when it attaches a Workspace to a cluster.
    tag_for_emr(ec2, *subnet_ids, workspace_sg, engine_sg)
    service_role = ensure_studio_service_role(boto3("iam"))
    created = emr.create_studio(
        Name=name,
        AuthMode="IAM",
        VpcId=vpc_id,
        SubnetIds=list(subnet_ids),
        ServiceRole=service_role,
        WorkspaceSecurityGroupId=workspace_sg,
        EngineSecurityGroupId=engine_sg,
        DefaultS3Location=default_s3_location,
    )
    studio_id = created["StudioId"]
    arn = emr.describe_studio(StudioId=studio_id)["Studio"]["StudioArn"]
    return Studio(
        studio_id=studio_id,
        arn=arn,
        url=created["Url"],
        name=name,
        vpc_id=vpc_id,
        subnet_ids=subnet_ids,
        availability_zones=zones,
        workspace_security_group_id=workspace_sg,
        engine_security_group_id=engine_sg,
        default_s3_location=default_s3_location,
    )


def delete_studio(boto3: Boto3Factory, studio: Studio, *, timeout: float = 120.0) -> None:
    """Delete the Studio, then its security groups, subnets and VPC; gone is fine.

    A subnet still holding a Workspace container (one being deleted) is retried until
    ``timeout``.
    """
    ec2, emr = boto3("ec2"), boto3("emr")
    client_error = _client_error()
    with contextlib.suppress(client_error):  # InvalidRequestException: no such Studio
        emr.delete_studio(StudioId=studio.studio_id)
    calls: list[Callable[[], object]] = [
        lambda: ec2.delete_security_group(GroupId=studio.workspace_security_group_id),
        lambda: ec2.delete_security_group(GroupId=studio.engine_security_group_id),
        *(
            (lambda subnet=subnet: ec2.delete_subnet(SubnetId=subnet))
            for subnet in studio.subnet_ids
        ),
        lambda: ec2.delete_vpc(VpcId=studio.vpc_id),
    ]
    deadline = time.monotonic() + timeout
    for call in calls:
        while True:
            try:
                call()
                break
            except client_error as exc:
                if _code(exc) in _GONE:
                    break
                if _code(exc) != "DependencyViolation" or time.monotonic() > deadline:
                    raise
                time.sleep(_POLL_SECONDS)


def start_workspace(
    editors: Any,
    studio_id: str,
    *,
    name: str | None = None,
    timeout: float = 600.0,
    on_failure: Callable[[], str] | None = None,
) -> Workspace:
    """Create a Workspace in the Studio (creating starts it) and wait until it is Ready.

    ``editors`` is an ``emr-studio`` client. The first Workspace of a Docker host also builds
    the Workspace image (a few minutes, once). Raises :class:`WorkspaceStartFailed` when it
    settles elsewhere (Idle, with the reason) or ``timeout`` passes; ``on_failure()`` adds
    to the message (the plugin passes the gateway log's tail).
    """
    name = name or "emu-workspace-" + secrets.token_hex(3)
    editor_id = editors.create_editor(StudioId=studio_id, Name=name)["EditorId"]
    deadline = time.monotonic() + timeout
    while True:
        editor = editors.describe_editor(EditorId=editor_id)["Editor"]
        status = editor["Status"]
        if status == "Ready":
            return Workspace(editor_id, studio_id, editor)
        if status != "Starting" or time.monotonic() > deadline:
            reason = editor.get("StatusReason", "no reason given")
            waited = "" if status != "Starting" else f" after {timeout:.0f} s"
            extra = f"\n{on_failure()}" if on_failure is not None else ""
            raise WorkspaceStartFailed(
                f"Workspace {editor_id} is {status}{waited}, not Ready: {reason}{extra}"
            )
        time.sleep(_POLL_SECONDS)


def delete_workspace(editors: Any, editor_id: str, *, timeout: float = 120.0) -> None:
    """Delete the Workspace and wait until it is gone (its container removed); gone is fine."""
    client_error = _client_error()
    try:
        editors.delete_editor(EditorId=editor_id)
    except client_error as exc:
        if _code(exc) == "InvalidRequestException":
            return  # already gone
        raise
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            editors.describe_editor(EditorId=editor_id)
        except client_error as exc:
            if _code(exc) == "InvalidRequestException":
                return
            raise
        time.sleep(_POLL_SECONDS)
    raise TimeoutError(f"Workspace {editor_id} was not deleted within {timeout:.0f} s")


def wait_for_status(
    editors: Any, editor_id: str, status: str, timeout: float = 300
) -> dict[str, Any]:
    """Poll ``DescribeEditor`` until the Workspace is ``status``; its description. A Workspace
    that settles Idle on its way elsewhere fails at once, with its StatusReason."""
    deadline = time.monotonic() + timeout
    editor: dict[str, Any] = {}
    while time.monotonic() < deadline:
        editor = editors.describe_editor(EditorId=editor_id)["Editor"]
        if editor["Status"] == status:
            return editor
        assert editor["Status"] != "Idle" or status == "Idle", editor.get("StatusReason")
        time.sleep(_POLL_SECONDS)
    raise AssertionError(f"{editor_id} did not become {status}: {editor}")
