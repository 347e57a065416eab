"""AttachEditor's checks on the cluster (state, VPC, subnet, applications, release), each with
its own message, on store rows (the API test in test_clusters.py attaches a real cluster)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from emustudio.services.emr.attach import check_attach
from emustudio.services.emr.common import InvalidRequest
from emustudio.store import Store
from emustudio.store.cluster_tables import Cluster
from emustudio.store.tables import SecurityGroup, Studio, Vpc

APPS = [{"Name": n, "Version": "1"} for n in ("JupyterEnterpriseGateway", "Livy", "Spark")]


def studio() -> Studio:
    return Studio(
        id="es-1", region="us-east-1", name="s", auth_mode="IAM", vpc_id="vpc-1",
        subnet_ids=["subnet-a"], service_role="r", workspace_security_group_id="sg-w",
        engine_security_group_id="sg-e", default_s3_location="s3://b/p", created_at=0.0,
    )  # fmt: skip


def cluster(**changes: Any) -> Cluster:
    values: dict[str, Any] = dict(
        id="j-1", region="us-east-1", name="c", state="WAITING", created_at=0.0,
        release_label="emr-7.12.0", spark_version="3.5.9", applications=APPS,
        collection_type="INSTANCE_GROUP", vpc_id="vpc-1", subnet_id="subnet-a",
        availability_zone="us-east-1a", master_security_group="sg-m",
        slave_security_group="sg-s", keep_alive=True, service_role="r", job_flow_role="p",
        gateway_token="t", created_by="arn",
    )  # fmt: skip
    values.update(changes)
    return Cluster(**values)


@pytest.fixture
def session(tmp_path: Path) -> Session:
    store = Store(f"sqlite:///{tmp_path}/t.db")
    store.create_all()
    db = Session(store.engine)
    db.add(Vpc(id="vpc-1", region="us-east-1", cidr="10.0.0.0/16", cidr_association_id="a",
               created_at=0.0))  # fmt: skip
    db.flush()
    tcp = {"protocol": "tcp", "from_port": 18888, "to_port": 18888, "description": None}
    db.add(
        SecurityGroup(
            id="sg-w",
            region="us-east-1",
            vpc_id="vpc-1",
            name="w",
            description="w",
            created_at=0.0,
            rules=[{"id": "r1", "egress": True, "group_id": "sg-e", **tcp}],
        )
    )
    db.add(SecurityGroup(id="sg-e", region="us-east-1", vpc_id="vpc-1", name="e",
                         description="e", created_at=0.0,
                         rules=[{"id": "r2", "egress": False, "group_id": "sg-w", **tcp}]))  # fmt: skip
    db.commit()
    return db


def test_a_ready_cluster_in_the_studio_network_passes(session: Session) -> None:
    check_attach(session, studio(), cluster(), "j-1")
    check_attach(session, studio(), cluster(state="RUNNING"), "j-1")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"state": "STARTING"}, "Cluster j-1 is STARTING. A Workspace can be attached only"),
        ({"vpc_id": "vpc-2"}, "Cluster j-1 is in VPC vpc-2, not in the Studio's VPC vpc-1."),
        ({"subnet_id": "subnet-b"}, "Cluster j-1 is in subnet subnet-b, which is not one of"),
        ({"applications": APPS[2:]}, "missing: Livy, JupyterEnterpriseGateway."),
        ({"release_label": "emr-5.0.0"}, "Release emr-5.0.0 does not support EMR Studio."),
    ],
)
def test_each_misfit_has_its_error(session: Session, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        check_attach(session, studio(), cluster(**changes), "j-1")
    assert message in exc.value.message


def test_an_unknown_cluster(session: Session) -> None:
    with pytest.raises(InvalidRequest, match=r"Cluster id 'j-9' is not valid\."):
        check_attach(session, studio(), None, "j-9")
