"""The Studio's Clusters view: the EMR clusters the user may list, and a form to create one.

The list is ``ListClusters`` as the signed-in user (every state; the table filters by state).
A cluster in one of the Studio's subnets that the user may ``DescribeCluster`` links to its
Spark master UI and history server, reached through the gateway (`web/spark_ui.py`). While a
cluster is changing, ``static/clusters.js`` polls ``<prefix>/clusters/<j-id>/state``
(``DescribeCluster``, not recorded in CloudTrail: it is the page's own polling).

"Create cluster" shows only when the user's policies allow ``elasticmapreduce:RunJobFlow`` (AWS's
advanced Studio user policy does, the basic and intermediate ones do not). The form picks the
release label and instance types from lists and the subnet from the Studio's subnets; the
cluster gets Spark, Livy and Jupyter Enterprise Gateway, which attaching a Workspace needs. A
refusal of ``RunJobFlow`` about one field is shown beside that field, the form kept.
"""

from __future__ import annotations

import json
import re
from typing import Any

from emustudio import ids
from emustudio.aws.errors import AwsError
from emustudio.services.emr import catalogue
from emustudio.web.base import StudioHandler, page_status

CLUSTER_ID = r"(?P<cluster_id>j-[A-Z0-9]{13})"
# A cluster in these states answers on its UIs; a Workspace can attach to it.
UP = ("RUNNING", "WAITING")
APPLICATIONS = ("Spark", "Livy", "JupyterEnterpriseGateway")
MAX_CORE_NODES = 10
FIELDS = (
    "name",
    "release_label",
    "master_type",
    "core_type",
    "core_count",
    "subnet_id",
    "service_role",
    "job_flow_role",
)
DEFAULTS = {
    "core_count": "2",
    "service_role": "EMR_DefaultRole",
    "job_flow_role": "EMR_EC2_DefaultRole",
    "master_type": "m5.xlarge",
    "core_type": "m5.xlarge",
}
# The form field a RunJobFlow refusal is about, from the start of the service's message.
FIELD_OF_MESSAGE = (
    ("Invalid InstanceProfile", "job_flow_role"),
    ("Invalid ServiceRole", "service_role"),
    ("The requested release label", "release_label"),
    ("The subnet ID", "subnet_id"),
)


def field_of(exc: AwsError, draft: dict[str, str]) -> str | None:
    """The form field a refusal of ``RunJobFlow`` is about; None: not one field's."""
    if match := re.search(r" at '([\w.]+)' failed", exc.message):
        return "name" if match.group(1) == "name" else None
    if "iam:PassRole" in exc.message:
        for field in ("service_role", "job_flow_role"):
            if draft.get(field) and f"role/{draft[field]}" in exc.message:
                return field
        return None
    if exc.message.startswith("The requested instance type"):
        return "master_type" if draft.get("master_type", "") in exc.message else "core_type"
    for start, name in FIELD_OF_MESSAGE:
        if exc.message.startswith(start):
            return name
    return None


class ClustersPage(StudioHandler):
    async def get(self, **_: str) -> None:
        self.require_user()
        await self.show()

    async def show(
        self,
        error: str | None = None,
        draft: dict[str, str] | None = None,
        field_errors: dict[str, str] | None = None,
    ) -> None:
        rows: list[dict[str, Any]] = []
        try:
            rows = await self.visible_clusters()
        except AwsError as exc:
            error = error or f"{exc.code}: {exc.message}"
        may_create = await self.may("RunJobFlow", self.cluster_arn("*"))
        lists = await self.form_lists() if may_create else {}
        self.render(
            "clusters.html",
            **self.page_args(
                rows=rows,
                error=error,
                may_create=may_create,
                lists=lists,
                draft={**DEFAULTS, **(draft or {})},
                field_errors=field_errors or {},
                up=UP,
                max_core_nodes=MAX_CORE_NODES,
            ),
        )

    def cluster_arn(self, cluster_id: str) -> str:
        emr = self.site.emr
        return ids.arn("elasticmapreduce", emr.region, emr.account_id, f"cluster/{cluster_id}")

    async def may(self, action: str, resource: str) -> bool:
        decision = await self.site.console.allowed(
            self.require_user(), f"elasticmapreduce:{action}", resource, source_ip=self.source_ip
        )
        return decision.allowed

    async def visible_clusters(self) -> list[dict[str, Any]]:
        assert self.studio is not None
        summaries: list[dict[str, Any]] = []
        marker: str | None = None
        while True:
            params: dict[str, Any] = {"Marker": marker} if marker else {}
            page = await self.call("ListClusters", params, record=marker is None)
            summaries.extend(page.get("Clusters", []))
            marker = page.get("Marker")
            if not marker:
                break
        rows = []
        for summary in summaries:
            status = summary.get("Status", {})
            place = await self.site.cluster_place(summary["Id"])
            in_studio = place is not None and place.subnet_id in self.studio.subnet_ids
            rows.append(
                {
                    "Id": summary["Id"],
                    "Name": summary.get("Name", ""),
                    "State": status.get("State", ""),
                    "Reason": (status.get("StateChangeReason") or {}).get("Message", ""),
                    "Created": (status.get("Timeline") or {}).get("CreationDateTime"),
                    "Subnet": place.subnet_id if place is not None else "",
                    "InStudio": in_studio,
                    "MayDescribe": await self.may(
                        "DescribeCluster", self.cluster_arn(summary["Id"])
                    ),
                }
            )
        return rows

    async def form_lists(self) -> dict[str, list[str]]:
        """Release labels and instance types: the user's own calls, else the public catalogue
        (AWS's Studio user policies do not grant these two reads)."""
        assert self.studio is not None
        try:
            labels = (await self.call("ListReleaseLabels", {}, record=False))["ReleaseLabels"]
            studio_labels = set(catalogue.studio_release_labels())
            labels = [label for label in labels if label in studio_labels]
        except AwsError:
            labels = catalogue.studio_release_labels()
        types: list[str] = []
        try:
            answer = await self.call(
                "ListSupportedInstanceTypes", {"ReleaseLabel": labels[0]}, record=False
            )
            types = [t["Type"] for t in answer["SupportedInstanceTypes"]]
        except (AwsError, IndexError):
            types = catalogue.instance_type_names()
        return {
            "release_label": labels,
            "instance_type": types,
            "subnet_id": list(self.studio.subnet_ids),
        }


class CreateCluster(ClustersPage):
    """``POST <prefix>/clusters``: ``RunJobFlow`` as the user, from the form."""

    async def post(self, **_: str) -> None:
        self.require_user()
        draft = {name: self.get_body_argument(name, "").strip() for name in FIELDS}
        count = draft["core_count"]
        if not count.isdigit() or not 1 <= int(count) <= MAX_CORE_NODES:
            self.set_status(400)
            message = f"Enter a whole number of core nodes from 1 to {MAX_CORE_NODES}."
            await self.show(draft=draft, field_errors={"core_count": message})
            return
        instances: dict[str, Any] = {
            "InstanceGroups": [
                {"Name": "Primary", "InstanceRole": "MASTER", "InstanceCount": 1,
                 "InstanceType": draft["master_type"]},
                {"Name": "Core", "InstanceRole": "CORE", "InstanceCount": int(count),
                 "InstanceType": draft["core_type"]},
            ],
            "KeepJobFlowAliveWhenNoSteps": True,
        }  # fmt: skip
        if draft["subnet_id"]:
            instances["Ec2SubnetId"] = draft["subnet_id"]
        params: dict[str, Any] = {
            # As typed: a blank name gets the service's own answer.
            "Name": self.get_body_argument("name", "", strip=False),
            "ReleaseLabel": draft["release_label"],
            "Applications": [{"Name": a} for a in APPLICATIONS],
            "Instances": instances,
            "ServiceRole": draft["service_role"],
            "JobFlowRole": draft["job_flow_role"],
            "VisibleToAllUsers": True,
        }
        try:
            await self.call("RunJobFlow", params)
        except AwsError as exc:
            self.set_status(page_status(exc))
            field = field_of(exc, draft)
            if field is None:
                await self.show(error=f"{exc.code}: {exc.message}", draft=draft)
            else:
                await self.show(draft=draft, field_errors={field: exc.message})
            return
        self.redirect(f"{self.prefix}/clusters", status=303)


class ClusterState(StudioHandler):
    """``GET <prefix>/clusters/<j-id>/state``: the cluster's state for its row, as JSON."""

    async def get(self, cluster_id: str, **_: str) -> None:
        self.require_user()
        described = await self.call("DescribeCluster", {"ClusterId": cluster_id}, record=False)
        status = described["Cluster"]["Status"]
        self.set_header("Content-Type", "application/json")
        self.finish(
            json.dumps(
                {
                    "state": status["State"],
                    "reason": (status.get("StateChangeReason") or {}).get("Message", ""),
                }
            )
        )


default_handlers = [
    # GET: the list and the form (ClustersPage); POST: the form's RunJobFlow.
    (r"/clusters", CreateCluster),
    (rf"/clusters/{CLUSTER_ID}/state", ClusterState),
]
