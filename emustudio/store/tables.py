"""Every table of the store.

Lists and nested values the API returns whole (a Studio's subnet ids, a security group's rules)
are JSON columns; anything queried on its own (tags, session mappings) has a table.
Timestamps are epoch seconds (float), as the JSON wire sends them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel


class Vpc(SQLModel, table=True):
    id: str = Field(primary_key=True)
    region: str = Field(index=True)
    cidr: str
    is_default: bool = False
    cidr_association_id: str
    created_at: float


class Subnet(SQLModel, table=True):
    id: str = Field(primary_key=True)
    region: str = Field(index=True)
    vpc_id: str = Field(foreign_key="vpc.id", index=True)
    cidr: str
    availability_zone: str
    default_for_az: bool = False
    map_public_ip_on_launch: bool = False
    docker_cidr: str | None = None
    created_at: float


class SecurityGroup(SQLModel, table=True):
    id: str = Field(primary_key=True)
    region: str = Field(index=True)
    vpc_id: str = Field(foreign_key="vpc.id", index=True)
    name: str
    description: str
    # Each rule: {"id", "egress", "protocol", "from_port", "to_port", "cidr_ipv4" | "cidr_ipv6" |
    # "group_id" | "prefix_list_id", "description"} — one peer per rule, as AWS's rule ids are.
    rules: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    created_at: float


class Tag(SQLModel, table=True):
    """Tags of EC2 resources and of Studios (resource ids are unique across types)."""

    resource_id: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    value: str = ""
    resource_type: str = Field(index=True)


class Studio(SQLModel, table=True):
    id: str = Field(primary_key=True)
    region: str = Field(index=True)
    name: str
    description: str | None = None
    auth_mode: str
    vpc_id: str
    subnet_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    service_role: str
    user_role: str | None = None
    workspace_security_group_id: str
    engine_security_group_id: str
    default_s3_location: str
    idp_auth_url: str | None = None
    idp_relay_state_parameter_name: str | None = None
    trusted_identity_propagation_enabled: bool | None = None
    idc_user_assignment: str | None = None
    idc_instance_arn: str | None = None
    encryption_key_arn: str | None = None
    created_at: float = Field(index=True)


class StudioSessionMapping(SQLModel, table=True):
    studio_id: str = Field(primary_key=True, foreign_key="studio.id")
    identity_type: str = Field(primary_key=True)
    identity_id: str = Field(primary_key=True)
    identity_name: str
    session_policy_arn: str
    created_at: float
    last_modified_at: float


class Meta(SQLModel, table=True):
    """Facts about the store itself (for instance, that a region's default VPC was made)."""

    key: str = Field(primary_key=True)
    value: str


@dataclass(frozen=True)
class Endpoint:
    """Where a Workspace's JupyterLab listens. It crosses rooms as this value (runtime to the
    Workspace manager, to its hooks, to the gate); the Editor row keeps its ``netloc``."""

    host: str
    port: int

    @property
    def netloc(self) -> str:
        """``host:port`` (``[v6]:port``), as an URL and the Editor row write it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @classmethod
    def parse(cls, netloc: str) -> Endpoint:
        host, _, port = netloc.rpartition(":")
        return cls(host.strip("[]"), int(port))


# The Editor (Workspace) statuses in which its container runs; EMR's others are Starting,
# Stopping, Idle, Deleting. The Workspace manager, the gate, the backup and the pages read these.
EDITOR_RUNNING = ("Ready", "Attaching", "Attached", "Detaching")


class Editor(SQLModel, table=True):
    """A Workspace (an EMR "editor"). ``token`` is its JupyterLab token: only the gateway has it.

    ``endpoint`` is the `Endpoint.netloc` of its JupyterLab while a container runs (read it
    back with :meth:`upstream`); ``previous_zones`` the Availability Zones it ran in, newest
    last (a restart moves it elsewhere).
    """

    id: str = Field(primary_key=True)
    region: str = Field(index=True)
    studio_id: str = Field(index=True)
    name: str
    description: str | None = None
    status: str
    status_reason: str | None = None
    s3_location: str
    subnet_id: str | None = None
    availability_zone: str | None = None
    attached_cluster_id: str | None = None
    created_by: str
    token: str
    endpoint: str | None = None
    previous_zones: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    client_token: str | None = Field(default=None, index=True)
    created_at: float = Field(index=True)
    last_modified_at: float
    last_backup_at: float | None = None

    def upstream(self) -> Endpoint | None:
        """Its JupyterLab's endpoint while a container runs."""
        return Endpoint.parse(self.endpoint) if self.endpoint else None


class ZoneState(SQLModel, table=True):
    """An Availability Zone an operator marked failed (absent: healthy)."""

    name: str = Field(primary_key=True)
    region: str
    failed_at: float
