"""A PySpark notebook on an EMR cluster, in a real browser: the issue's "Done when".

Sign in at the Studio URL, create a Workspace on the page; a cluster of one master and two
core nodes is created with boto3 (the Studio page has no Clusters view yet) and waited for
``WAITING``; the signed-in user attaches the Workspace (boto3, with the user's own keys);
JupyterLab, through the gateway's kernel route, runs ``spark.range(10**7).count()`` on a
PySpark kernel of the cluster. The application shows in Spark's REST API with its executors on
the two core containers, its kernel runs as ``hadoop`` with the user's ``KERNEL_USERNAME``.
Detached, no kernel of the Workspace is left on the cluster, and the Workspace reports no
cluster. The route itself refuses a wrong secret and a detached Workspace, from inside the
Workspace's own container.

One cluster for the module (clusters are heavy on two cores). Needs Docker, the cluster and
Workspace images (built when missing) and /usr/bin/chromium.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import docker
import playwright.sync_api as playwright_api
import pytest
from botocore.exceptions import WaiterError

from emustudio.aws.spec import DATA_PATH
from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.iam import PASSWORD, Users, allow, studio_arn
from emustudio.testing.resources import wait_for_status
from emustudio.testing.service_role import ensure_emr_default_roles, ensure_studio_service_role
from emustudio.testing.vpc import StudioNetwork, make_studio_network, open_engine_port, studio_args
from tests.services.emr.test_clusters import FAST, job_flow
from tests.web.test_browser import row_of, workspace_image
from tests.web.test_browser import wait_for_status as wait_on_page

__all__ = ["workspace_image"]  # the module fixture that builds the Workspace image

COUNT = "spark.range(10**7).count()"
# A cluster start, a Workspace start and a first Spark session, one after the other.
pytestmark = [pytest.mark.spark_cluster, pytest.mark.timeout(1500)]


@pytest.fixture(scope="module")
def studio_net(ec2: Any) -> StudioNetwork:
    return open_engine_port(ec2, make_studio_network(ec2, subnets=2))


@pytest.fixture(scope="module")
def cluster(gateway: GatewayProcess, emr: Any, studio_net: StudioNetwork) -> Iterator[str]:
    """One master and two core nodes, started as the module begins (it boots while the
    Workspace does)."""
    # Other modules on the session's gateway may have made them already.
    ensure_emr_default_roles(gateway.client("iam"))
    instances = job_flow()["Instances"] | {"Ec2SubnetId": studio_net.subnet_ids[0]}
    instances["InstanceGroups"][1]["InstanceCount"] = 2
    cluster_id = emr.run_job_flow(
        **job_flow(
            Name="notebooks",
            Instances=instances,
            Configurations=[
                {"Classification": "spark-defaults",
                 "Properties": {"spark.executor.memory": "512m"}}
            ],
        )
    )["JobFlowId"]  # fmt: skip
    try:
        yield cluster_id
    finally:
        emr.terminate_job_flows(JobFlowIds=[cluster_id])
        with contextlib.suppress(WaiterError):  # TERMINATED_WITH_ERRORS ends it too
            emr.get_waiter("cluster_terminated").wait(ClusterId=cluster_id, WaiterConfig=FAST)


def editors_as(gateway: GatewayProcess, key: dict[str, str]) -> Any:
    session = botocore.session.get_session()
    session.get_component("data_loader").search_paths.insert(0, str(DATA_PATH))
    return session.create_client(
        "emr-studio",
        endpoint_url=gateway.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
    )


def nodes(docker_client: docker.DockerClient, cluster_id: str) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for c in docker_client.containers.list(
        filters={"label": [f"emustudio.cluster-id={cluster_id}"]}
    ):
        found.setdefault(c.labels["emustudio.instance-role"], []).append(c)
    return found


def ip_of(container: Any) -> str:
    container.reload()
    networks = container.attrs["NetworkSettings"]["Networks"]
    return str(next(iter(networks.values()))["IPAddress"])


KERNELS_OF = """
import json, os, pwd
found = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    if int(pid) == os.getpid():
        continue  # this script, whose own command line names ipykernel_launcher
    try:
        cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")
        uid = os.stat(f"/proc/{pid}").st_uid
    except OSError:
        continue
    try:
        env = open(f"/proc/{pid}/environ", "rb").read().split(b"\\0")
    except OSError:
        env = []
    if any(b"ipykernel_launcher" in part for part in cmd):
        user = [e.split(b"=", 1)[1].decode() for e in env if e.startswith(b"KERNEL_USERNAME=")]
        found.append({"os_user": pwd.getpwuid(uid).pw_name, "kernel_user": user[:1]})
print(json.dumps(found))
"""


def kernels_on(master: Any) -> list[dict[str, Any]]:
    """The kernel processes on the master: OS user and KERNEL_USERNAME of each."""
    # As hadoop: a container's root lacks CAP_SYS_PTRACE, which reading another user's
    # /proc/<pid>/environ needs; a kernel running as anyone else is still listed (uid, cmdline).
    result = master.exec_run(["python3", "-c", KERNELS_OF], user="hadoop")
    assert result.exit_code == 0, result.output
    return list(json.loads(result.output.decode().strip().splitlines()[-1]))


ROUTE_CALL = """
import os, sys, urllib.request, urllib.error
url, secret = sys.argv[1], sys.argv[2]
request = urllib.request.Request(url + "api/kernels", headers={"Authorization": "token " + secret})
try:
    print(urllib.request.urlopen(request, timeout=10).status)
except urllib.error.HTTPError as e:
    print(e.read()[:300], file=sys.stderr)
    print(e.code)
"""


def route_status(workspace: Any, secret: str) -> int:
    """``GET /api/kernels`` on the kernel route, from inside the Workspace's container, as
    user code there would call it, with ``secret``: the real one lives only in the Workspace's
    server (handed over at the attach), so user code has none to present."""
    env = dict(e.split("=", 1) for e in workspace.attrs["Config"]["Env"])
    assert not any("ENGINE_TOKEN" in name for name in env)
    url = env["EMUSTUDIO_ENGINE_URL"]
    result = workspace.exec_run(["python3", "-c", ROUTE_CALL, url, secret], demux=True)
    out, err = result.output
    assert result.exit_code == 0, (out, err)
    print("route:", url, out, err)
    return int(out.decode().strip())


def test_a_pyspark_cell_runs_on_the_attached_cluster(
    gateway: GatewayProcess,
    emr: Any,
    studio_net: StudioNetwork,
    cluster: str,
    chromium: Any,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    ensure_studio_service_role(gateway.client("iam"))  # the attach runs as it, as on AWS
    studio_id = emr.create_studio(**studio_args(studio_net, Name="spark-studio"))["StudioId"]
    user = Users(gateway).create(
        allow("elasticmapreduce:CreateStudioPresignedUrl", studio_arn(studio_id)),
        allow(
            [
                "elasticmapreduce:CreateEditor",
                "elasticmapreduce:DescribeEditor",
                "elasticmapreduce:ListEditors",
                "elasticmapreduce:StartEditor",
                "elasticmapreduce:OpenEditorInConsole",
                "elasticmapreduce:AttachEditor",
                "elasticmapreduce:DetachEditor",
                "elasticmapreduce:DescribeCluster",
            ]
        ),
    )
    key = gateway.client("iam").create_access_key(UserName=user)["AccessKey"]
    editors = editors_as(gateway, key)
    studio_url = f"http://{studio_id.lower()}.emrstudio.localhost:{gateway.port}/"
    page = chromium.new_page()

    # Sign in, create a Workspace on the page.
    page.goto(studio_url)
    page.fill('input[name="username"]', user)
    page.fill('input[name="password"]', PASSWORD)
    page.click('#signin button[type="submit"]')
    page.wait_for_url(studio_url)
    page.fill('#create input[name="name"]', "spark-notebooks")
    page.click('#create button[type="submit"]')
    page.wait_for_url(studio_url)
    editor_id = (
        page.locator("tr[data-editor]")
        .filter(has_text="spark-notebooks")
        .get_attribute("data-editor")
    )
    assert editor_id
    wait_on_page(page, editor_id, "Ready")

    # The cluster: WAITING, one master and two core containers.
    with contextlib.suppress(WaiterError):  # the status below says why
        emr.get_waiter("cluster_running").wait(
            ClusterId=cluster, WaiterConfig={"Delay": 2, "MaxAttempts": 600}
        )
    status = emr.describe_cluster(ClusterId=cluster)["Cluster"]["Status"]
    assert status["State"] == "WAITING", status.get("StateChangeReason", {}).get("Message")
    roles = nodes(docker_client, cluster)
    assert (len(roles["MASTER"]), len(roles["CORE"])) == (1, 2)
    master = roles["MASTER"][0]
    # Spark names an executor's host by the node's hostname: its EC2 instance id.
    core_hosts = {c.attrs["Config"]["Hostname"] for c in roles["CORE"]}
    workspace = docker_client.containers.get(
        next(
            c.name
            for c in docker_client.containers.list(
                filters={"label": [f"emustudio.workspace-id={editor_id}"]}
            )
        )
    )
    # Not attached: the route refuses the Workspace, whatever it presents.
    assert route_status(workspace, secret="any") == 409

    # The signed-in user attaches the Workspace.
    editors.attach_editor(EditorId=editor_id, ExecutionEngine={"Id": cluster, "Type": "EMR"})
    attached = wait_for_status(editors, editor_id, "Attached")
    assert attached["ExecutionEngine"] == {"Id": cluster, "Type": "EMR"}
    # Attached: only the server's secret opens the route (the PySpark cell below proves it
    # does); anything user code could guess is refused.
    assert route_status(workspace, secret="not-the-secret") == 403

    # JupyterLab offers the cluster's kernels; a PySpark notebook counts on the cluster.
    page.reload()
    with chromium.expect_page() as opened:
        row_of(page, editor_id).locator('[data-action="open"]').click()
    lab = opened.value
    lab.wait_for_url(re.compile(rf"/workspaces/{editor_id}/lab"), timeout=60_000)
    engine = engine_of(chromium, f"{studio_url}workspaces/{editor_id}/emustudio/engine")
    assert engine["attached"]["cluster_id"] == cluster
    open_pyspark_notebook(lab)
    notebook = lab.locator(".jp-NotebookPanel").first
    try:
        run_cell_long(lab, notebook, COUNT, expect="10000000", shots=tmp_path)
    except BaseException:
        for name, container in (("workspace", workspace), ("master", master)):
            print(f"--- {name} log ---\n" + container.logs(tail=60).decode(errors="replace"))
        raise

    # The kernel runs on the master as hadoop, for the signed-in user; never root.
    kernels = kernels_on(master)
    assert kernels == [{"os_user": "hadoop", "kernel_user": [user]}]
    # The application, in the driver's Spark REST API: executors on the two core nodes.
    apps = http_json(f"http://{ip_of(master)}:4040/api/v1/applications")
    assert [a["name"] for a in apps] == [f"{user}-pyspark"]
    executors = http_json(
        f"http://{ip_of(master)}:4040/api/v1/applications/{apps[0]['id']}/executors"
    )
    hosts = {e["hostPort"].rsplit(":", 1)[0] for e in executors if e["id"] != "driver"}
    assert hosts == core_hosts
    assert sum(e["completedTasks"] for e in executors) > 0

    # Detached: no kernel of the Workspace is left, and the Workspace shows no cluster.
    assert editors.detach_editor(EditorId=editor_id)["Status"] == "Ready"
    detached = editors.describe_editor(EditorId=editor_id)["Editor"]
    assert "ExecutionEngine" not in detached and "AttachedClusterId" not in detached
    poll_until(lambda: kernels_on(master) == [], "no kernel left on the master")
    assert route_status(workspace, secret="any") == 409
    engine = engine_of(chromium, f"{studio_url}workspaces/{editor_id}/emustudio/engine")
    assert engine == {"attached": None}
    lab.close()


def open_pyspark_notebook(lab: Any) -> None:
    """Click the launcher's PySpark card. Chromium aborts loads when the host's interfaces
    change (Docker making other gateways' networks on this machine); JupyterLab then shows an
    error dialog over the page, and a reload brings the page back whole."""
    card = lab.locator('.jp-LauncherCard[data-category="Notebook"]').filter(has_text="PySpark")
    for attempt in range(4):
        try:
            card.first.click(timeout=60_000)
            return
        except playwright_api.Error:
            if attempt == 3 or lab.locator(".jp-Dialog").count() == 0:
                raise
            lab.reload()


def poll_until(check: Any, what: str, timeout: float = 20) -> None:
    """A process that was told to end may take a moment to go."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


def engine_of(chromium: Any, url: str) -> Any:
    """What the Workspace's server says about its kernels, asked by the browser (its session,
    through the gateway's proxy)."""
    page = chromium.new_page()
    try:
        for attempt in range(5):
            try:
                answer = page.goto(url)
                break
            except playwright_api.Error as e:
                # Chromium aborts a load when the host's interfaces change, which they do as
                # Docker makes and removes the networks of other gateways on this machine.
                if "ERR_NETWORK_CHANGED" not in str(e) or attempt == 4:
                    raise
                time.sleep(1)
        assert answer is not None and answer.ok, answer and answer.status
        return answer.json()
    finally:
        page.close()


def http_json(url: str) -> Any:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                return json.load(answer)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def run_cell_long(lab: Any, notebook: Any, code: str, *, expect: str, shots: Path) -> None:
    """Run ``code`` in the notebook's first cell once its kernel is idle and wait for
    ``expect`` (the first PySpark cell waits for the Spark session: tens of seconds here)."""
    playwright_api.expect(lab.get_by_text(re.compile(r"\| Idle$"))).to_be_visible(timeout=180_000)
    cell = notebook.locator(".jp-Cell").first
    editor = cell.locator(".cm-content")
    editor.click()
    editor.fill(code)
    playwright_api.expect(editor).to_have_text(code)
    output = notebook.locator(".jp-OutputArea-output")
    cell.locator(".cm-content").press("Control+Enter")
    try:
        playwright_api.expect(output.first).to_be_visible(timeout=300_000)
        playwright_api.expect(output.first).to_have_text(
            re.compile(rf"^\s*{re.escape(expect)}\s*$"), timeout=5_000
        )
    except AssertionError:
        lab.screenshot(path=str(shots / "notebook.png"))
        raise AssertionError(
            f"{code!r} gave no {expect!r}: {output.all_inner_texts()}; see {shots}"
        ) from None
