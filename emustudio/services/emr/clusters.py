"""EMR clusters: RunJobFlow, DescribeCluster, ListClusters, TerminateJobFlows, their nodes, tags,
and the release and instance-type catalogue.

The API state lives here and in ``cluster_life.py`` (which moves a cluster through its states in
the background); the nodes are the engine's (``emustudio/engines``). What ``RunJobFlow`` checks,
as EMR does: the release label, the applications, the instance profile (``JobFlowRole``) and
service role exist, the subnet and security groups exist and share a VPC, one master node. When
the EMR-managed security groups are not given, the VPC's ``ElasticMapReduce-master`` and
``ElasticMapReduce-slave`` groups are used, created as EMR creates them when missing.
"""

from __future__ import annotations

import math
import secrets
import string
import time
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from emustudio import ids
from emustudio.context import RequestContext
from emustudio.engines import releases
from emustudio.services.base import operation
from emustudio.services.emr import bootstrap
from emustudio.services.emr.cluster_life import TERMINAL, ClusterLife, concurrency_of
from emustudio.services.emr.common import (
    EmrBase,
    InvalidRequest,
    ValidationException,
    cluster_not_valid,
    with_marker,
)
from emustudio.services.emr.studios import check_tags
from emustudio.store.cluster_tables import Cluster, ClusterOptions
from emustudio.store.iam_tables import IamInstanceProfile, IamRole
from emustudio.store.tables import SecurityGroup, Subnet, Tag, Vpc

_ALNUM = string.ascii_uppercase + string.digits
# EMR's normalized instance hours: a large is 4 per hour, each size up doubles it.
_NORMALIZATION = {"medium": 2, "large": 4, "xlarge": 8, "2xlarge": 16, "4xlarge": 32,
                  "8xlarge": 64, "12xlarge": 96, "16xlarge": 128}  # fmt: skip


def _emr_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(13))


def epoch(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _role_name(value: str) -> str:
    """A role or instance profile given by name or ARN: its name."""
    return value.rsplit("/", 1)[-1] if value.startswith("arn:") else value


class ClusterOperations(EmrBase):
    clusters: ClusterLife | None = None
    max_cluster_nodes: int = 5

    def life(self) -> ClusterLife:
        if self.clusters is None:
            raise ValidationException("Clusters need the gateway's cluster engine.")
        return self.clusters

    def cluster_arn(self, cluster_id: str) -> str:
        return ids.arn("elasticmapreduce", self.region, self.account_id, f"cluster/{cluster_id}")

    def get_cluster_or_raise(self, session: Session, cluster_id: str) -> Cluster:
        cluster = session.get(Cluster, cluster_id)
        if cluster is None or cluster.region != self.region:
            raise cluster_not_valid(cluster_id)
        return cluster

    # --- shapes ---------------------------------------------------------------------------------

    def cluster_status(self, cluster: Cluster) -> dict[str, Any]:
        reason = _drop_none({"Code": cluster.reason_code, "Message": cluster.reason_message})
        return {
            "State": cluster.state,
            "StateChangeReason": reason,
            "Timeline": _drop_none(
                {
                    "CreationDateTime": epoch(cluster.created_at),
                    "ReadyDateTime": epoch(cluster.ready_at),
                    "EndDateTime": epoch(cluster.ended_at),
                }
            ),
        }

    def normalized_hours(self, cluster: Cluster) -> int:
        if cluster.ready_at is None:
            return 0
        hours = math.ceil(((cluster.ended_at or time.time()) - cluster.ready_at) / 3600)
        total = 0
        for node in cluster.instances:
            size = node["InstanceType"].split(".", 1)[-1]
            total += hours * _NORMALIZATION.get(size, 8)
        return total

    def cluster_shape(self, session: Session, cluster: Cluster) -> dict[str, Any]:
        tags = session.exec(select(Tag).where(Tag.resource_id == cluster.id).order_by(Tag.key))
        attributes = _drop_none(
            {
                "Ec2KeyName": cluster.ec2_key_name,
                "Ec2SubnetId": cluster.subnet_id,
                "RequestedEc2SubnetIds": list(cluster.requested_subnet_ids),
                "Ec2AvailabilityZone": cluster.availability_zone,
                "RequestedEc2AvailabilityZones": [],
                "IamInstanceProfile": cluster.job_flow_role,
                "EmrManagedMasterSecurityGroup": cluster.master_security_group,
                "EmrManagedSlaveSecurityGroup": cluster.slave_security_group,
                "AdditionalMasterSecurityGroups": list(cluster.additional_master_security_groups),
                "AdditionalSlaveSecurityGroups": list(cluster.additional_slave_security_groups),
            }
        )
        out: dict[str, Any] = {
            "Id": cluster.id,
            "Name": cluster.name,
            "Status": self.cluster_status(cluster),
            "Ec2InstanceAttributes": attributes,
            "InstanceCollectionType": cluster.collection_type,
            "LogUri": cluster.log_uri,
            "ReleaseLabel": cluster.release_label,
            "AutoTerminate": not cluster.keep_alive,
            "TerminationProtected": cluster.termination_protected,
            "UnhealthyNodeReplacement": False,
            "VisibleToAllUsers": cluster.visible_to_all_users,
            "Applications": list(cluster.applications),
            "Tags": [{"Key": t.key, "Value": t.value} for t in tags],
            "ServiceRole": cluster.service_role,
            "NormalizedInstanceHours": self.normalized_hours(cluster),
            "MasterPublicDnsName": cluster.master_dns,
            "Configurations": list(cluster.configurations),
            "ScaleDownBehavior": "TERMINATE_AT_TASK_COMPLETION",
            "ClusterArn": self.cluster_arn(cluster.id),
            "StepConcurrencyLevel": concurrency_of(cluster.id, session),
            "PlacementGroups": [],
        }
        return _drop_none(out)

    def cluster_summary(self, cluster: Cluster) -> dict[str, Any]:
        return {
            "Id": cluster.id,
            "Name": cluster.name,
            "Status": self.cluster_status(cluster),
            "NormalizedInstanceHours": self.normalized_hours(cluster),
            "ClusterArn": self.cluster_arn(cluster.id),
        }

    @staticmethod
    def node_state(cluster: Cluster) -> str:
        """An instance group's (or instance's) state, from the cluster's."""
        return {
            "STARTING": "PROVISIONING",
            "BOOTSTRAPPING": "BOOTSTRAPPING",
            "TERMINATING": "TERMINATING",
            "TERMINATED": "ENDED",
            "TERMINATED_WITH_ERRORS": "ENDED",
        }.get(cluster.state, "RUNNING")

    # --- RunJobFlow -----------------------------------------------------------------------------

    def _release(self, params: dict[str, Any]) -> releases.Release:
        label = params.get("ReleaseLabel")
        if not label:
            raise ValidationException(
                "ReleaseLabel is required: emustudio runs EMR 7 releases (AmiVersion is for"
                " EMR 3.x and earlier)."
            )
        release = releases.release(label)
        if release is None:
            known = ", ".join(r.label for r in releases.releases())
            raise ValidationException(
                f"The requested release label '{label}' is invalid. emustudio runs: {known}."
            )
        return release

    @staticmethod
    def _applications(params: dict[str, Any], release: releases.Release) -> list[dict[str, str]]:
        by_lower = {name.lower(): name for name in release.applications}
        chosen: dict[str, str] = {}
        for app in params.get("Applications") or []:
            name = by_lower.get(str(app.get("Name", "")).lower())
            if name is None:
                raise ValidationException(
                    f"Specified application: {app.get('Name')} is invalid. emustudio runs"
                    f" {', '.join(sorted(release.applications))} on {release.label}."
                )
            chosen[name] = release.applications[name]
        if not chosen:  # EMR's default when none are named
            chosen["Hadoop"] = release.applications["Hadoop"]
        return [{"Name": n, "Version": v} for n, v in sorted(chosen.items())]

    def _roles(self, session: Session, params: dict[str, Any]) -> tuple[str, str]:
        profile = params.get("JobFlowRole")
        if not profile:
            raise ValidationException("Instance profile is not specified.")
        name = _role_name(profile)
        found = session.exec(
            select(IamInstanceProfile).where(IamInstanceProfile.name_key == name.lower())
        ).first()
        if found is None:
            raise ValidationException(f"Invalid InstanceProfile: {profile}.")
        if found.role_id is None or session.get(IamRole, found.role_id) is None:
            raise ValidationException(f"Instance profile {profile} has no role.")
        service_role = params.get("ServiceRole")
        if not service_role:
            raise ValidationException("ServiceRole is required.")
        if (
            session.exec(
                select(IamRole).where(IamRole.name_key == _role_name(service_role).lower())
            ).first()
            is None
        ):
            raise ValidationException(f"Invalid ServiceRole: {service_role}.")
        return profile, service_role

    def _subnet(self, session: Session, instances: dict[str, Any]) -> tuple[Subnet, list[str]]:
        requested = list(instances.get("Ec2SubnetIds") or [])
        if instances.get("Ec2SubnetId"):
            requested = [instances["Ec2SubnetId"]]
        for subnet_id in requested:
            subnet = session.get(Subnet, subnet_id)
            if subnet is None or subnet.region != self.region:
                raise ValidationException(
                    f"The subnet configuration was invalid: The subnet ID '{subnet_id}' does not"
                    " exist"
                )
        if requested:
            subnet = session.get(Subnet, requested[0])
            assert subnet is not None
            return subnet, requested if "Ec2SubnetIds" in instances else []
        vpc = session.exec(
            select(Vpc).where(Vpc.region == self.region, Vpc.is_default == True)  # noqa: E712
        ).first()
        zone = (instances.get("Placement") or {}).get("AvailabilityZone")
        query = select(Subnet).where(Subnet.vpc_id == (vpc.id if vpc else ""))
        candidates = [s for s in session.exec(query.order_by(col(Subnet.availability_zone)))]
        if zone:
            candidates = [s for s in candidates if s.availability_zone == zone]
        if not candidates:
            raise ValidationException(
                "The subnet configuration was invalid: no Ec2SubnetId is given and the default"
                " VPC has no subnet" + (f" in {zone}" if zone else "") + "."
            )
        return candidates[0], []

    def _group(self, session: Session, vpc_id: str, group_id: str) -> str:
        return self._group_row(session, vpc_id, group_id).id

    def _group_row(self, session: Session, vpc_id: str, group_id: str) -> SecurityGroup:
        group = session.get(SecurityGroup, group_id)
        if group is None or group.region != self.region:
            raise ValidationException(f"The security group '{group_id}' does not exist")
        if group.vpc_id != vpc_id:
            raise ValidationException(
                f"The security group '{group_id}' does not belong to the subnet's VPC '{vpc_id}'."
            )
        return group

    def _managed_groups(self, session: Session, vpc_id: str) -> tuple[str, str]:
        """The VPC's ElasticMapReduce-master/-slave groups, made as EMR makes them if missing:
        each admits all traffic from both (the cluster's nodes talk freely to each other)."""
        found: dict[str, SecurityGroup] = {}
        for name in ("ElasticMapReduce-master", "ElasticMapReduce-slave"):
            group = session.exec(
                select(SecurityGroup).where(
                    SecurityGroup.vpc_id == vpc_id, SecurityGroup.name == name
                )
            ).first()
            if group is None:
                group = SecurityGroup(
                    id=ids.ec2_id("sg"), region=self.region, vpc_id=vpc_id, name=name,
                    description=f"{'Master' if name.endswith('master') else 'Slave'} group for"
                    " Elastic MapReduce created on " + datetime.now(UTC).isoformat(),
                    rules=[], created_at=time.time(),
                )  # fmt: skip
                session.add(group)
            found[name] = group
        master, slave = found["ElasticMapReduce-master"], found["ElasticMapReduce-slave"]
        for group in (master, slave):
            if not group.rules:
                group.rules = [
                    {"id": ids.ec2_id("sgr"), "egress": True, "protocol": "-1", "from_port": None,
                     "to_port": None, "cidr_ipv4": "0.0.0.0/0", "description": None},
                ]  # fmt: skip
        self._node_rules(session, master, slave)
        return master.id, slave.id

    @staticmethod
    def _node_rules(session: Session, master: SecurityGroup, slave: SecurityGroup) -> None:
        """EMR adds to its managed groups, made or given, the rules that let the cluster's
        nodes talk: each admits all traffic from both. They are enforced on the subnet's
        network (services/ec2/enforcement.py), so a cluster without them could not start."""
        for group in (master, slave):
            have = {
                r.get("group_id") for r in group.rules if not r["egress"] and r["protocol"] == "-1"
            }
            missing = [peer for peer in (master, slave) if peer.id not in have]
            if missing:
                group.rules = [*group.rules, *[
                    {"id": ids.ec2_id("sgr"), "egress": False, "protocol": "-1", "from_port": None,
                     "to_port": None, "group_id": peer.id, "description": None}
                    for peer in missing
                ]]  # fmt: skip
                session.add(group)

    def _nodes(
        self, instances: dict[str, Any], external: str | None = None
    ) -> tuple[str, list[dict[str, Any]]]:
        """The collection type and the groups (or fleets), each with ``_type`` and ``_count``;
        with ``external`` (the engine's ``external_workers``), the core and task groups are
        ``_external``: their executors come from there and no instance of theirs is made."""
        groups: list[dict[str, Any]] = []
        if instances.get("InstanceGroups"):
            kind = "INSTANCE_GROUP"
            for g in instances["InstanceGroups"]:
                groups.append({"Id": _emr_id("ig-"), "Name": g.get("Name"),
                               "Market": g.get("Market", "ON_DEMAND"),
                               "InstanceGroupType": g["InstanceRole"],
                               "InstanceType": g["InstanceType"],
                               "RequestedInstanceCount": g["InstanceCount"],
                               "Configurations": list(g.get("Configurations") or []),
                               "_role": g["InstanceRole"], "_type": g["InstanceType"],
                               "_count": g["InstanceCount"]})  # fmt: skip
        elif instances.get("InstanceFleets"):
            kind = "INSTANCE_FLEET"
            for f in instances["InstanceFleets"]:
                configs = f.get("InstanceTypeConfigs") or []
                if not configs:
                    raise ValidationException("An instance fleet needs InstanceTypeConfigs.")
                first = configs[0]
                weight = first.get("WeightedCapacity") or 1
                target = (f.get("TargetOnDemandCapacity") or 0) + (f.get("TargetSpotCapacity") or 0)
                count = max(1, math.ceil(target / weight)) if target else 0
                specs = [_drop_none({"InstanceType": c["InstanceType"],
                                     "WeightedCapacity": c.get("WeightedCapacity") or 1,
                                     "BidPriceAsPercentageOfOnDemandPrice":
                                         c.get("BidPriceAsPercentageOfOnDemandPrice")})
                         for c in configs]  # fmt: skip
                groups.append({"Id": _emr_id("if-"), "Name": f.get("Name"),
                               "InstanceFleetType": f["InstanceFleetType"],
                               "TargetOnDemandCapacity": f.get("TargetOnDemandCapacity") or 0,
                               "TargetSpotCapacity": f.get("TargetSpotCapacity") or 0,
                               "InstanceTypeSpecifications": specs,
                               "_role": f["InstanceFleetType"], "_type": first["InstanceType"],
                               "_count": count, "_weight": weight})  # fmt: skip
        elif instances.get("MasterInstanceType"):
            kind = "INSTANCE_GROUP"
            count = int(instances.get("InstanceCount") or 1)
            slave = instances.get("SlaveInstanceType") or instances["MasterInstanceType"]
            for role, itype, n in (("MASTER", instances["MasterInstanceType"], 1),
                                   ("CORE", slave, count - 1)):  # fmt: skip
                if n > 0:
                    groups.append({"Id": _emr_id("ig-"), "Name": f"{role.title()} Instance Group",
                                   "Market": "ON_DEMAND", "InstanceGroupType": role,
                                   "InstanceType": itype, "RequestedInstanceCount": n,
                                   "Configurations": [],
                                   "_role": role, "_type": itype, "_count": n})  # fmt: skip
        else:
            raise ValidationException(
                "Instances must give InstanceGroups, InstanceFleets or MasterInstanceType."
            )
        masters = sum(g["_count"] for g in groups if g["_role"] == "MASTER")
        if masters != 1:
            raise ValidationException(
                "A cluster needs exactly one master node here (EMR Studio does not support"
                f" clusters with several master nodes); {masters} requested."
            )
        for g in groups:
            if releases.instance_type(g["_type"]) is None:
                raise ValidationException(
                    f"The requested instance type {g['_type']} is not supported in the requested"
                    " availability zone."
                )
        if external:
            for g in groups:
                if g["_role"] != "MASTER":
                    g["_external"] = True
                    g["_reason"] = (
                        f"Its executors come from the Spark standalone master {external}; no EC2"
                        " instance of this cluster runs them."
                    )
        total = sum(g["_count"] for g in groups if not g.get("_external"))
        if total > self.max_cluster_nodes:
            raise ValidationException(
                f"A cluster may have at most {self.max_cluster_nodes} instances here"
                f" (setting cluster_max_nodes); {total} requested."
            )
        return kind, groups

    @staticmethod
    def _spark_defaults(configurations: list[dict[str, Any]]) -> dict[str, str]:
        out: dict[str, str] = {}
        for conf in configurations:
            if conf.get("Classification") == "spark-defaults":
                out.update({str(k): str(v) for k, v in (conf.get("Properties") or {}).items()})
        return out

    @operation("RunJobFlow")
    async def run_job_flow(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        life = self.life()
        assert ctx.principal is not None
        principal = ctx.principal
        release = self._release(params)
        applications = self._applications(params, release)
        instances = params["Instances"]
        kind, groups = self._nodes(instances, life.engine.external_workers)
        tags = list(params.get("Tags") or [])
        check_tags(tags)
        steps = list(params.get("Steps") or [])
        for step in steps:
            life.check_step(step)
        actions = bootstrap.check_actions(list(params.get("BootstrapActions") or []))
        level = params.get("StepConcurrencyLevel", 1)
        if not 1 <= level <= 256:
            raise ValidationException(
                f"StepConcurrencyLevel must be between 1 and 256; {level} given."
            )
        if actions and life.s3 is None:
            raise ValidationException("Bootstrap actions need the gateway's S3.")
        idle = (params.get("AutoTerminationPolicy") or {}).get("IdleTimeout")
        if idle is not None and not 60 <= idle <= 604800:
            raise ValidationException(
                f"IdleTimeout must be between 60 and 604800 seconds; {idle} given."
            )

        def create(session: Session) -> str:
            profile, service_role = self._roles(session, params)
            subnet, requested = self._subnet(session, instances)
            master_sg = instances.get("EmrManagedMasterSecurityGroup")
            slave_sg = instances.get("EmrManagedSlaveSecurityGroup")
            if master_sg and slave_sg:
                self._node_rules(
                    session,
                    self._group_row(session, subnet.vpc_id, master_sg),
                    self._group_row(session, subnet.vpc_id, slave_sg),
                )
            elif master_sg or slave_sg:
                raise ValidationException(
                    "EmrManagedMasterSecurityGroup and EmrManagedSlaveSecurityGroup go together."
                )
            else:
                master_sg, slave_sg = self._managed_groups(session, subnet.vpc_id)
            extra_master = [
                self._group(session, subnet.vpc_id, g)
                for g in instances.get("AdditionalMasterSecurityGroups") or []
            ]
            extra_slave = [
                self._group(session, subnet.vpc_id, g)
                for g in instances.get("AdditionalSlaveSecurityGroups") or []
            ]
            now = time.time()
            nodes: list[dict[str, Any]] = []
            for g in groups:
                for _ in range(0 if g.get("_external") else g["_count"]):
                    member = "InstanceFleetId" if kind == "INSTANCE_FLEET" else "InstanceGroupId"
                    nodes.append({"Id": _emr_id("ci-"), "Ec2InstanceId": ids.ec2_id("i"),
                                  member: g["Id"], "InstanceType": g["_type"],
                                  "Market": g.get("Market", "ON_DEMAND"), "Role": g["_role"],
                                  "CreatedAt": now})  # fmt: skip
            cluster = Cluster(
                id=ids.cluster_id(), region=self.region, name=params["Name"], state="STARTING",
                created_at=now, release_label=release.label, spark_version=release.spark,
                applications=applications, configurations=list(params.get("Configurations") or []),
                collection_type=kind,
                groups=groups,
                instances=nodes, vpc_id=subnet.vpc_id, subnet_id=subnet.id,
                requested_subnet_ids=requested, availability_zone=subnet.availability_zone,
                master_security_group=master_sg, slave_security_group=slave_sg,
                additional_master_security_groups=extra_master,
                additional_slave_security_groups=extra_slave,
                ec2_key_name=instances.get("Ec2KeyName"),
                keep_alive=bool(instances.get("KeepJobFlowAliveWhenNoSteps", False)),
                termination_protected=bool(instances.get("TerminationProtected", False)),
                visible_to_all_users=params.get("VisibleToAllUsers", True),
                service_role=service_role, job_flow_role=profile, log_uri=params.get("LogUri"),
                auto_termination_idle_seconds=idle, gateway_token=secrets.token_urlsafe(32),
                created_by=principal.arn,
            )  # fmt: skip
            session.add(cluster)
            for tag in tags:
                session.merge(Tag(resource_id=cluster.id, key=tag["Key"],
                                  value=tag.get("Value", ""), resource_type="cluster"))  # fmt: skip
            life.add_steps(session, cluster.id, steps, now)
            bootstrap.add_actions(session, cluster.id, actions)
            if level != 1:
                session.add(ClusterOptions(cluster_id=cluster.id, step_concurrency_level=level))
            return cluster.id

        cluster_id = await self.store.tx(create)
        life.launch(cluster_id)
        return {"JobFlowId": cluster_id, "ClusterArn": self.cluster_arn(cluster_id)}

    # --- read -----------------------------------------------------------------------------------

    @operation("DescribeCluster")
    async def describe_cluster(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        def describe(session: Session) -> dict[str, Any]:
            cluster = self.get_cluster_or_raise(session, params["ClusterId"])
            return {"Cluster": self.cluster_shape(session, cluster)}

        return await self.store.tx(describe)

    @operation("ListClusters")
    async def list_clusters(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        states = set(params.get("ClusterStates") or [])
        after, before = params.get("CreatedAfter"), params.get("CreatedBefore")

        def list_(session: Session) -> dict[str, Any]:
            query = select(Cluster).where(Cluster.region == self.region)
            rows = session.exec(query.order_by(col(Cluster.created_at).desc(), col(Cluster.id)))
            chosen = [
                c
                for c in rows
                if (not states or c.state in states)
                and (after is None or c.created_at >= after.timestamp())
                and (before is None or c.created_at <= before.timestamp())
            ]
            page, marker = self.page(chosen, params.get("Marker"))
            return with_marker({"Clusters": [self.cluster_summary(c) for c in page]}, marker)

        return await self.store.tx(list_)

    @operation("ListInstanceGroups")
    async def list_instance_groups(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def list_(session: Session) -> dict[str, Any]:
            cluster = self.get_cluster_or_raise(session, params["ClusterId"])
            if cluster.collection_type != "INSTANCE_GROUP":
                raise InvalidRequest(
                    "Instance groups are not available for a cluster with instance fleets."
                )
            state = self.node_state(cluster)
            up = state not in ("PROVISIONING", "ENDED")
            out = []
            for g in cluster.groups:
                shape = {k: v for k, v in g.items() if not k.startswith("_")}
                shape["RunningInstanceCount"] = (
                    sum(1 for n in cluster.instances if n.get("InstanceGroupId") == g["Id"]
                        and not n.get("EndedAt") and not n.get("Pending"))
                    if up else 0
                )  # fmt: skip
                reason = {"Message": g["_reason"]} if g.get("_reason") else {}
                shape["Status"] = {"State": "RESIZING" if g.get("_resizing") and up else state,
                                   "StateChangeReason": reason,
                                   "Timeline": self._timeline(cluster)}  # fmt: skip
                shape["EbsBlockDevices"] = []
                out.append(shape)
            page, marker = self.page(out, params.get("Marker"))
            return with_marker({"InstanceGroups": page}, marker)

        return await self.store.tx(list_)

    @operation("ListInstanceFleets")
    async def list_instance_fleets(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def list_(session: Session) -> dict[str, Any]:
            cluster = self.get_cluster_or_raise(session, params["ClusterId"])
            if cluster.collection_type != "INSTANCE_FLEET":
                raise InvalidRequest(
                    "Instance fleets are not available for a cluster with instance groups."
                )
            state = self.node_state(cluster)
            up = state not in ("PROVISIONING", "ENDED")
            out = []
            for f in cluster.groups:
                shape = {k: v for k, v in f.items() if not k.startswith("_")}
                provisioned = (
                    f["_count"] * f.get("_weight", 1) if up and not f.get("_external") else 0
                )
                shape["ProvisionedOnDemandCapacity"] = provisioned
                shape["ProvisionedSpotCapacity"] = 0
                shape["Status"] = {"State": "RESIZING" if f.get("_resizing") and up else state,
                                   "StateChangeReason": {},
                                   "Timeline": self._timeline(cluster)}  # fmt: skip
                out.append(shape)
            page, marker = self.page(out, params.get("Marker"))
            return with_marker({"InstanceFleets": page}, marker)

        return await self.store.tx(list_)

    def _timeline(self, cluster: Cluster) -> dict[str, Any]:
        return _drop_none(
            {
                "CreationDateTime": epoch(cluster.created_at),
                "ReadyDateTime": epoch(cluster.ready_at),
                "EndDateTime": epoch(cluster.ended_at),
            }
        )

    @operation("ListInstances")
    async def list_instances(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        group_id = params.get("InstanceGroupId") or params.get("InstanceFleetId")
        types = set(params.get("InstanceGroupTypes") or [])
        if params.get("InstanceFleetType"):
            types.add(params["InstanceFleetType"])
        states = set(params.get("InstanceStates") or [])

        def list_(session: Session) -> dict[str, Any]:
            cluster = self.get_cluster_or_raise(session, params["ClusterId"])
            state = {
                "STARTING": "PROVISIONING",
                "BOOTSTRAPPING": "BOOTSTRAPPING",
                "TERMINATING": "RUNNING",
                "TERMINATED": "TERMINATED",
                "TERMINATED_WITH_ERRORS": "TERMINATED",
            }.get(cluster.state, "RUNNING")
            out = []
            for node in cluster.instances:
                if group_id and group_id not in (
                    node.get("InstanceGroupId"),
                    node.get("InstanceFleetId"),
                ):
                    continue
                node_state = (
                    "TERMINATED" if node.get("EndedAt")
                    else "PROVISIONING" if node.get("Pending") and state == "RUNNING"
                    else state
                )  # fmt: skip
                if (types and node["Role"] not in types) or (states and node_state not in states):
                    continue
                ip = node.get("PrivateIpAddress")
                shape = {k: v for k, v in node.items()
                         if k not in ("Role", "CreatedAt", "EndedAt", "Pending",
                                      "Decommissioning")}  # fmt: skip
                if ip:
                    shape["PrivateDnsName"] = "ip-" + ip.replace(".", "-") + ".ec2.internal"
                shape["Status"] = {
                    "State": node_state,
                    "StateChangeReason": {},
                    "Timeline": _drop_none(
                        {
                            "CreationDateTime": epoch(node["CreatedAt"]),
                            "ReadyDateTime": None
                            if node.get("Pending") or cluster.ready_at is None
                            else epoch(max(cluster.ready_at, node["CreatedAt"])),
                            "EndDateTime": epoch(node.get("EndedAt") or cluster.ended_at),
                        }
                    ),
                }
                shape["EbsVolumes"] = []
                out.append(shape)
            page, marker = self.page(out, params.get("Marker"))
            return with_marker({"Instances": page}, marker)

        return await self.store.tx(list_)

    @operation("ListBootstrapActions")
    async def list_bootstrap_actions(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def list_(session: Session) -> dict[str, Any]:
            self.get_cluster_or_raise(session, params["ClusterId"])
            actions = bootstrap.actions_of(session, params["ClusterId"])
            page, marker = self.page(actions, params.get("Marker"))
            return with_marker(
                {"BootstrapActions": [bootstrap.command_shape(a) for a in page]}, marker
            )

        return await self.store.tx(list_)

    # --- changes --------------------------------------------------------------------------------

    @operation("TerminateJobFlows")
    async def terminate_job_flows(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        life = self.life()

        def terminate(session: Session) -> list[str]:
            chosen = [self.get_cluster_or_raise(session, cid) for cid in params["JobFlowIds"]]
            for cluster in chosen:
                if cluster.termination_protected and cluster.state not in TERMINAL:
                    raise ValidationException(
                        f"Could not shut down one or more job flows since they are termination"
                        f" protected. ({cluster.id})"
                    )
            started = []
            for cluster in chosen:
                if cluster.state in TERMINAL or cluster.state == "TERMINATING":
                    continue
                cluster.state = "TERMINATING"
                cluster.reason_code = "USER_REQUEST"
                cluster.reason_message = "Terminated by user request"
                session.add(cluster)
                started.append(cluster.id)
            return started

        for cluster_id in await self.store.tx(terminate):
            life.terminate(cluster_id)
        return {}

    @operation("SetTerminationProtection")
    async def set_termination_protection(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def update(session: Session) -> dict[str, Any]:
            for cid in params["JobFlowIds"]:
                cluster = self.get_cluster_or_raise(session, cid)
                cluster.termination_protected = params["TerminationProtected"]
                session.add(cluster)
            return {}

        return await self.store.tx(update)

    @operation("SetVisibleToAllUsers")
    async def set_visible_to_all_users(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        def update(session: Session) -> dict[str, Any]:
            for cid in params["JobFlowIds"]:
                cluster = self.get_cluster_or_raise(session, cid)
                cluster.visible_to_all_users = params["VisibleToAllUsers"]
                session.add(cluster)
            return {}

        return await self.store.tx(update)

    # --- the catalogue --------------------------------------------------------------------------

    @operation("ListReleaseLabels")
    async def list_release_labels(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        prefix = (params.get("Filters") or {}).get("Prefix") or ""
        labels = [r.label for r in releases.releases() if r.label.startswith(prefix)]
        size = int(params.get("MaxResults") or len(labels) or 1)
        start = int(params["NextToken"]) if str(params.get("NextToken") or "").isdigit() else 0
        out: dict[str, Any] = {"ReleaseLabels": labels[start : start + size]}
        if start + size < len(labels):
            out["NextToken"] = str(start + size)
        return out

    @operation("DescribeReleaseLabel")
    async def describe_release_label(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        label = params.get("ReleaseLabel") or releases.releases()[0].label
        release = releases.release(label)
        if release is None:
            raise ValidationException(f"The requested release label '{label}' is invalid.")
        return {
            "ReleaseLabel": release.label,
            "Applications": [
                {"Name": n, "Version": v} for n, v in sorted(release.applications.items())
            ],
            "AvailableOSReleases": [],
        }

    @operation("ListSupportedInstanceTypes")
    async def list_supported_instance_types(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        if releases.release(params["ReleaseLabel"]) is None:
            raise ValidationException(
                f"The requested release label '{params['ReleaseLabel']}' is invalid."
            )
        types = [
            {"Type": t.name, "VCPU": t.vcpu, "MemoryGB": t.memory_mib / 1024,
             "InstanceFamilyId": t.name.split(".", 1)[0],
             "Architecture": "arm64" if "g." in t.name else "x86_64",
             "Is64BitsOnly": True, "EbsOptimizedAvailable": True,
             "EbsOptimizedByDefault": True, "NumberOfDisks": 0, "StorageGB": 0,
             "EbsStorageOnly": True}
            for t in releases.instance_types()
        ]  # fmt: skip
        page, marker = self.page(types, params.get("Marker"))
        return with_marker({"SupportedInstanceTypes": page}, marker)
