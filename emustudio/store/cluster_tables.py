"""The tables of EMR clusters and their steps.

A cluster's instance groups (or fleets) and instances are JSON lists on its row: the API returns
them whole and nothing queries them alone. Steps have a table: they are listed, filtered and
paged on their own, and a cluster runs them in ``seq`` order.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel


class Cluster(SQLModel, table=True):
    """An EMR cluster. ``groups`` holds each instance group or fleet as the API shows it (with
    its ``Id``); ``instances`` each node (``Id``, ``Ec2InstanceId``, ``InstanceGroupId``,
    ``InstanceType``, ``Role``, ``PrivateIpAddress``, ``State``...). ``gateway_token`` is the
    master's Jupyter Enterprise Gateway token: only the gateway has it."""

    id: str = Field(primary_key=True)
    region: str = Field(index=True)
    name: str
    state: str = Field(index=True)
    reason_code: str | None = None
    reason_message: str | None = None
    created_at: float = Field(index=True)
    ready_at: float | None = None
    ended_at: float | None = None
    release_label: str
    spark_version: str
    applications: list[dict[str, str]] = Field(default_factory=list, sa_column=Column(JSON))
    configurations: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    collection_type: str
    groups: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    instances: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    vpc_id: str
    subnet_id: str
    requested_subnet_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    availability_zone: str
    master_security_group: str
    slave_security_group: str
    additional_master_security_groups: list[str] = Field(
        default_factory=list, sa_column=Column(JSON)
    )
    additional_slave_security_groups: list[str] = Field(
        default_factory=list, sa_column=Column(JSON)
    )
    ec2_key_name: str | None = None
    keep_alive: bool
    termination_protected: bool = False
    visible_to_all_users: bool = True
    service_role: str
    job_flow_role: str
    log_uri: str | None = None
    auto_termination_idle_seconds: int | None = None
    master_dns: str | None = None
    gateway_token: str
    created_by: str


class ClusterStep(SQLModel, table=True):
    id: str = Field(primary_key=True)
    cluster_id: str = Field(index=True)
    seq: int
    name: str
    action_on_failure: str
    jar: str
    main_class: str | None = None
    args: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    properties: list[dict[str, str]] = Field(default_factory=list, sa_column=Column(JSON))
    state: str = Field(index=True)
    reason_message: str | None = None
    failure: dict[str, str] | None = Field(default=None, sa_column=Column(JSON))
    created_at: float
    started_at: float | None = None
    ended_at: float | None = None


class ClusterBootstrapAction(SQLModel, table=True):
    """A cluster's bootstrap action ``seq`` (1, 2...: the order they run in on each node). A
    table of its own, so a store made before bootstrap actions existed gains it unchanged."""

    cluster_id: str = Field(primary_key=True)
    seq: int = Field(primary_key=True)
    name: str
    path: str
    args: list[str] = Field(default_factory=list, sa_column=Column(JSON))


class ClusterOptions(SQLModel, table=True):
    """What a cluster's row did not hold when it was first made: ``StepConcurrencyLevel``
    (``RunJobFlow``, ``ModifyCluster``). A table of its own keeps older stores readable."""

    cluster_id: str = Field(primary_key=True)
    step_concurrency_level: int = 1


class KernelAttachment(SQLModel, table=True):
    """A Workspace's kernel route while it is attached (``services/emr/kernel_route.py``), kept
    so that a gateway restart re-opens it: the Workspace's server still holds its engine secret
    and its kernels still run on the cluster. The secret is kept only as its SHA-256 (the
    gateway need only recognise it; a copy of the store opens no route)."""

    editor_id: str = Field(primary_key=True)
    cluster_id: str = Field(index=True)
    secret_sha256: str
    kernel_username: str
    kernels: list[str] = Field(default_factory=list, sa_column=Column(JSON))
