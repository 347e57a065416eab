"""The Studio's Clusters view in Chromium, as AWS's Studio user tiers see it: a basic user lists
clusters but has no "Create cluster"; an advanced user (AWS's advanced policy, which allows
``RunJobFlow``) creates one from the form and watches it go STARTING → WAITING, opens its Spark
master UI and history server through the gateway, and attaches and detaches a Workspace from
the Workspace list. One real cluster (Spark in containers) is shared by the module: cluster
tests are heavy. axe-core checks each page.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import playwright.sync_api as playwright_api
import pytest

from emustudio.runtime.docker_executor import DockerExecutor
from emustudio.runtime.images import Images
from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.iam import PASSWORD, Users, allow, studio_arn
from emustudio.testing.resources import delete_workspace, wait_for_status
from emustudio.testing.service_role import ensure_emr_default_roles, ensure_studio_service_role
from emustudio.testing.vpc import StudioNetwork, make_studio_network, studio_args
from tests.services.emr.test_clusters import FAST, job_flow
from tests.web.test_browser_pages import axe_check

expect = playwright_api.expect
pytestmark = pytest.mark.spark_cluster

POLICIES = Path(__file__).parents[1] / "iam" / "policies"
CLUSTER_WAIT_MS = 1_200_000  # the first cluster of a machine waits for its image build
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
             "Action": "sts:AssumeRole"}
        ],
    }
)  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def workspace_image() -> str:
    executor = DockerExecutor()
    try:
        images = Images(executor, pull_base=False)
        return asyncio.run(images.build_workspace(asyncio.run(images.bootstrap())))
    finally:
        executor.close()


@pytest.fixture(scope="module")
def net(ec2: Any) -> StudioNetwork:
    return make_studio_network(ec2, subnets=2)


@pytest.fixture(scope="module")
def studio_id(gateway: GatewayProcess, emr: Any, net: StudioNetwork) -> str:
    # Attaching runs as the Studio's service role: the EMR Studio guide's.
    ensure_studio_service_role(gateway.client("iam"))
    return str(emr.create_studio(**studio_args(net, Name="clusters-studio"))["StudioId"])


@pytest.fixture(scope="module")
def emr_roles(gateway: GatewayProcess) -> None:
    """EMR's default service role and instance profile (other modules may have made them)."""
    ensure_emr_default_roles(gateway.client("iam"))


def tier_user(gateway: GatewayProcess, tier: str, studio_id: str) -> str:
    """An IAM user with AWS's example Studio user policy of ``tier`` (a managed policy: it is
    larger than an inline user policy may be), allowed into the Studio."""
    iam = gateway.client("iam")
    name = f"EMRStudio{tier.capitalize()}UserPolicy-{secrets.token_hex(3)}"
    document = (POLICIES / f"emr_studio_{tier}.json").read_text()
    arn = iam.create_policy(PolicyName=name, PolicyDocument=document)["Policy"]["Arn"]
    user = Users(gateway).create(
        allow("elasticmapreduce:CreateStudioPresignedUrl", studio_arn(studio_id))
    )
    iam.attach_user_policy(UserName=user, PolicyArn=arn)
    return user


@pytest.fixture(scope="module")
def shared() -> dict[str, str]:
    """What the module's tests hand on: the cluster the advanced user made."""
    return {}


@pytest.fixture(scope="module")
def workspace(gateway: GatewayProcess, studio_id: str) -> Iterator[str]:
    """A Workspace of the Studio, created (and so starting) at once; the attach test waits."""
    editors = gateway.client("emr-studio")
    editor_id = str(editors.create_editor(StudioId=studio_id, Name="attach-me")["EditorId"])
    yield editor_id
    delete_workspace(editors, editor_id)


@pytest.fixture
def cluster(
    gateway: GatewayProcess, net: StudioNetwork, emr_roles: None, shared: dict[str, str]
) -> str:
    """The cluster the create test made from the form; when that test did not run (``-k``) or
    did not get that far, one made the same way through the API, so that what follows is still
    tested rather than skipped."""
    if "cluster" not in shared:
        emr = gateway.client("emr")
        instances = job_flow()["Instances"] | {"Ec2SubnetId": net.subnet_ids[1]}
        shared["cluster"] = emr.run_job_flow(
            **job_flow(Name="notebooks-" + secrets.token_hex(3), Instances=instances)
        )["JobFlowId"]
        emr.get_waiter("cluster_running").wait(ClusterId=shared["cluster"], WaiterConfig=FAST)
    return shared["cluster"]


@pytest.fixture
def advanced_user(gateway: GatewayProcess, studio_id: str, shared: dict[str, str]) -> str:
    """The create test's user with AWS's advanced Studio policy, or a new one like it."""
    if "user" not in shared:
        shared["user"] = tier_user(gateway, "advanced", studio_id)
    return shared["user"]


@pytest.fixture(scope="module", autouse=True)
def terminate_clusters(gateway: GatewayProcess, shared: dict[str, str]) -> Iterator[None]:
    yield
    if "cluster" in shared:
        gateway.client("emr").terminate_job_flows(JobFlowIds=[shared["cluster"]])


def studio_url(gateway: GatewayProcess, studio_id: str) -> str:
    return f"http://{studio_id.lower()}.emrstudio.localhost:{gateway.port}"


def sign_in(page: Any, gateway: GatewayProcess, studio_id: str, user: str) -> str:
    home = studio_url(gateway, studio_id) + "/"
    page.goto(home)
    page.fill('input[name="username"]', user)
    page.fill('input[name="password"]', PASSWORD)
    page.click('#signin button[type="submit"]')
    page.wait_for_url(home)
    return home


def test_a_basic_user_lists_clusters_but_has_no_create(
    gateway: GatewayProcess, studio_id: str, chromium: Any, workspace: str
) -> None:
    user = tier_user(gateway, "basic", studio_id)
    page = chromium.new_page()
    home = sign_in(page, gateway, studio_id, user)
    page.locator("nav.sidenav").get_by_role("link", name="Clusters", exact=True).click()
    page.wait_for_url(home + "clusters")
    expect(page.get_by_role("heading", name=re.compile("EMR clusters"))).to_be_visible()
    expect(page.locator('nav.sidenav a[aria-current="page"]')).to_have_text("Clusters")
    expect(page.get_by_text("Create cluster")).to_have_count(0)
    expect(page.locator("#create")).to_have_count(0)
    axe_check(page)


def test_an_advanced_user_creates_a_cluster_and_watches_it_start(
    gateway: GatewayProcess,
    studio_id: str,
    net: StudioNetwork,
    emr_roles: None,
    chromium: Any,
    shared: dict[str, str],
) -> None:
    user = tier_user(gateway, "advanced", studio_id)
    shared["user"] = user
    page = chromium.new_page()
    home = sign_in(page, gateway, studio_id, user)
    page.goto(home + "clusters")
    expect(page.locator("#create-link")).to_be_visible()
    form = page.locator("#create")
    # Lists, not typed ids: releases that support Studio, instance types, the Studio's subnets.
    releases = form.locator('select[name="release_label"] option').all_inner_texts()
    assert releases and all(r.startswith("emr-7.") for r in releases)
    assert "m5.xlarge" in form.locator('select[name="master_type"] option').all_inner_texts()
    subnets = form.locator('select[name="subnet_id"] option').all_inner_texts()
    assert subnets == net.subnet_ids[:2]
    axe_check(page)

    # An instance profile the user may not pass: the API's refusal beside its field, the form
    # kept.
    name = "notebooks-" + secrets.token_hex(3)  # the session's gateway has other modules' too
    form.locator('input[name="name"]').fill(name)
    form.locator('input[name="core_count"]').fill("1")  # 2 nodes: the machine is shared
    form.locator('input[name="job_flow_role"]').fill("NoSuchProfile")
    form.locator('button[type="submit"]').click()
    problem = page.locator("#cl-job_flow_role-error")
    expect(problem).to_contain_text(
        "is not authorized to perform: iam:PassRole on resource:"
        " arn:aws:iam::000000000000:role/NoSuchProfile"
    )
    expect(page.locator('#create input[name="name"]')).to_have_value(name)
    expect(page.locator('#create input[name="job_flow_role"]')).to_have_attribute(
        "aria-invalid", "true"
    )
    axe_check(page)

    page.locator('#create input[name="job_flow_role"]').fill("EMR_EC2_DefaultRole")
    page.locator('#create select[name="subnet_id"]').select_option(net.subnet_ids[1])
    page.locator('#create button[type="submit"]').click()
    page.wait_for_url(home + "clusters")
    row = page.locator("tr[data-cluster]").filter(has_text=name)
    cluster_id = row.get_attribute("data-cluster")
    assert cluster_id and re.fullmatch(r"j-[A-Z0-9]{13}", cluster_id)
    shared["cluster"] = cluster_id
    state = page.locator(f"#row-{cluster_id} [data-field='state']")
    expect(state).to_have_text(re.compile("STARTING|BOOTSTRAPPING"))
    # The page follows the cluster by itself (no reload by the test) until it waits for work.
    expect(state).to_have_text(re.compile("WAITING|TERMINATED.*"), timeout=CLUSTER_WAIT_MS)
    reason = page.locator(f"#row-{cluster_id} [data-field='reason']").inner_text()
    assert state.inner_text() == "WAITING", reason
    described = gateway.client("emr").describe_cluster(ClusterId=cluster_id)["Cluster"]
    assert described["Ec2InstanceAttributes"]["Ec2SubnetId"] == net.subnet_ids[1]
    instances = gateway.client("emr").list_instances(ClusterId=cluster_id)["Instances"]
    assert len(instances) == 2  # 1 primary, 1 core, as the form asked
    axe_check(page)

    # The Spark master UI and the history server, through the gateway, in new tabs.
    with chromium.expect_page() as opened:
        page.locator(f"#row-{cluster_id} [data-action='spark-ui']").click()
    spark = opened.value
    spark.wait_for_load_state()
    assert spark.url.startswith(home + f"clusters/{cluster_id}/spark/")
    expect(spark.locator("body")).to_contain_text("Spark Master at spark://")
    expect(spark.locator("body")).to_contain_text("Alive Workers: 1")
    # Its own assets came through the same route (Spark wrote them under the prefix).
    css = spark.locator('link[rel="stylesheet"]').first.get_attribute("href")
    assert css and css.startswith(f"/clusters/{cluster_id}/spark/static/")
    with chromium.expect_page() as opened:
        page.locator(f"#row-{cluster_id} [data-action='history']").click()
    history = opened.value
    history.wait_for_load_state()
    expect(history.locator("body")).to_contain_text("History Server", timeout=30_000)


def test_the_spark_ui_is_only_for_users_who_may_describe_the_cluster(
    gateway: GatewayProcess, studio_id: str, chromium: Any, cluster: str
) -> None:
    cluster_id = cluster
    user = Users(gateway).create(
        allow("elasticmapreduce:CreateStudioPresignedUrl", studio_arn(studio_id)),
        allow(["elasticmapreduce:ListClusters", "elasticmapreduce:ListEditors"]),
    )
    page = chromium.new_page()
    home = sign_in(page, gateway, studio_id, user)
    page.goto(home + "clusters")
    expect(page.locator(f"#row-{cluster_id}")).to_be_visible()
    expect(page.locator(f"#row-{cluster_id} [data-action='spark-ui']")).to_have_count(0)
    response = page.goto(home + f"clusters/{cluster_id}/spark/")
    assert response is not None and response.status == 403
    expect(page.locator("main")).to_contain_text(
        "not authorized to perform: elasticmapreduce:DescribeCluster"
    )
    assert "Spark Master" not in page.content()
    # Signed out: the sign-in page, not the UI.
    chromium.clear_cookies()
    page.goto(home + f"clusters/{cluster_id}/spark/")
    assert "/signin" in page.url


def test_attach_and_detach_change_the_workspace_row(
    gateway: GatewayProcess,
    studio_id: str,
    net: StudioNetwork,
    ec2: Any,
    workspace: str,
    chromium: Any,
    cluster: str,
    advanced_user: str,
) -> None:
    cluster_id = cluster
    wait_for_status(gateway.client("emr-studio"), workspace, "Ready", timeout=600)
    page = chromium.new_page()
    home = sign_in(page, gateway, studio_id, advanced_user)
    row = page.locator(f"#row-{workspace}")
    expect(row.locator('[data-field="status"]')).to_have_text("Ready")
    row.locator('select[name="cluster_id"]').select_option(cluster_id)

    # The engine security group does not admit 18888 from Workspaces yet: AWS's message, in
    # the row.
    row.locator('[data-action="attach"]').click()
    error = page.locator(f"#row-{workspace} [data-field='attach-error']")
    expect(error).to_contain_text(
        f"The engine security group {net.engine_sg} must allow inbound TCP traffic on port 18888"
        f" from the Workspace security group {net.workspace_sg}."
    )
    expect(page.locator(f"#row-{workspace} [data-field='status']")).to_have_text("Ready")
    axe_check(page)

    ec2.authorize_security_group_ingress(
        GroupId=net.engine_sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 18888, "ToPort": 18888,
             "UserIdGroupPairs": [{"GroupId": net.workspace_sg}]}
        ],
    )  # fmt: skip
    page.goto(home)
    row = page.locator(f"#row-{workspace}")
    row.locator('select[name="cluster_id"]').select_option(cluster_id)
    row.locator('[data-action="attach"]').click()
    page.wait_for_url(home)
    row = page.locator(f"#row-{workspace}")
    expect(row.locator('[data-field="status"]')).to_have_text("Attached", timeout=60_000)
    expect(row.locator('[data-field="cluster"]')).to_contain_text(cluster_id)
    expect(row.locator('[data-action="attach"]')).to_have_count(0)
    axe_check(page)

    row.locator('[data-action="detach"]').click()
    page.wait_for_url(home)
    row = page.locator(f"#row-{workspace}")
    expect(row.locator('[data-field="status"]')).to_have_text("Ready", timeout=60_000)
    expect(row.locator('[data-field="cluster"]')).to_have_count(0)
    expect(row.locator('[data-action="attach"]')).to_be_visible()
    editor = gateway.client("emr-studio").describe_editor(EditorId=workspace)["Editor"]
    assert "ExecutionEngine" not in editor
