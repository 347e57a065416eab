"""Create a Workspace in a Studio and wait until it is Ready; print its JupyterLab URL.

    python examples/boto3/start_workspace.py STUDIO_ID [NAME]

AWS has the Workspace operations (CreateEditor, DescribeEditor, StartEditor...) only as IAM
actions; emustudio describes them in a supplemental botocore model, service ``emr-studio``.
Pointing ``AWS_DATA_PATH`` at it (``emustudio.aws.spec.DATA_PATH``, shipped in the package)
lets boto3 and the AWS CLI call them like any other operation.
"""

from __future__ import annotations

import json
import os
import sys
import time

import boto3

from emustudio.aws.spec import DATA_PATH

# Before the first client: botocore reads AWS_DATA_PATH when it loads the models.
os.environ["AWS_DATA_PATH"] = os.pathsep.join(
    p for p in (str(DATA_PATH), os.environ.get("AWS_DATA_PATH", "")) if p
)

ENDPOINT = os.environ.get("EMUSTUDIO_ENDPOINT", "http://localhost:8080")
editors = boto3.Session(
    aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
    aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
    region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
).client("emr-studio", endpoint_url=ENDPOINT)

studio_id = sys.argv[1]
name = sys.argv[2] if len(sys.argv) > 2 else "notebooks"
editor_id = editors.create_editor(StudioId=studio_id, Name=name)["EditorId"]
started = time.monotonic()
while (editor := editors.describe_editor(EditorId=editor_id)["Editor"])["Status"] == "Starting":
    # The first Workspace on a Docker host builds the Workspace image: minutes, once.
    if time.monotonic() - started > 900:
        sys.exit(f"{editor_id} is still starting after 15 minutes")
    time.sleep(1)
if editor["Status"] != "Ready":
    sys.exit(f"{editor_id} is {editor['Status']}: {editor.get('StatusReason')}")
print(
    json.dumps(
        {
            "EditorId": editor_id,
            "Status": editor["Status"],
            "AvailabilityZone": editor["AvailabilityZone"],
            "Url": editor["Url"],
            "Seconds": round(time.monotonic() - started, 1),
        },
        indent=2,
    )
)
