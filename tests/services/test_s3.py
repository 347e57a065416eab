"""S3 on the gateway's endpoint, as the AWS CLI and boto3 use it, with the embedded store behind."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import http.client
import json
import os
import secrets
import socket
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Any

import boto3
import psutil
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from emustudio.testing.gateway import GatewayProcess, aws_cli

MB = 1024 * 1024


@pytest.fixture(scope="module")
def s3(gateway: GatewayProcess) -> Any:
    return gateway.client("s3", config=Config(signature_version="s3v4"))


def bucket_name() -> str:
    return "test-" + secrets.token_hex(4)


def keys(s3: Any, bucket: str, **kwargs: Any) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, **kwargs).get("Contents", [])]


def code_of(info: pytest.ExceptionInfo[ClientError]) -> str:
    return str(info.value.response["Error"]["Code"])


# --- the AWS CLI ---------------------------------------------------------------------------------


def test_cli_mb_cp_sync_ls_rb(gateway: GatewayProcess, tmp_path: Path) -> None:
    bucket = bucket_name()
    assert "make_bucket: " + bucket in aws_cli(gateway, "s3", "mb", f"s3://{bucket}").stdout
    src = tmp_path / "src"
    (src / "nested").mkdir(parents=True)
    (src / "a.txt").write_text("alpha")
    (src / "nested" / "b.txt").write_text("beta")
    aws_cli(gateway, "s3", "cp", str(src / "a.txt"), f"s3://{bucket}/copied.txt")
    aws_cli(gateway, "s3", "sync", str(src), f"s3://{bucket}/synced")
    listing = aws_cli(gateway, "s3", "ls", "--recursive", f"s3://{bucket}").stdout
    assert "copied.txt" in listing
    assert "synced/a.txt" in listing and "synced/nested/b.txt" in listing
    assert bucket in aws_cli(gateway, "s3", "ls").stdout
    back = tmp_path / "back"
    aws_cli(gateway, "s3", "sync", f"s3://{bucket}/synced", str(back))
    assert (back / "nested" / "b.txt").read_text() == "beta"
    refused = aws_cli(gateway, "s3", "rb", f"s3://{bucket}", check=False)
    assert refused.returncode != 0 and "BucketNotEmpty" in refused.stderr
    aws_cli(gateway, "s3", "rb", "--force", f"s3://{bucket}")
    assert bucket not in aws_cli(gateway, "s3", "ls").stdout


def test_the_backup_bucket_is_in_the_same_namespace(gateway: GatewayProcess) -> None:
    """The Workspace backups' store is the S3 API's: its objects show in ``aws s3 ls``."""
    state = json.loads((gateway.data_dir / "s3.json").read_text())
    direct = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{state['port']}",
        aws_access_key_id=state["access_key_id"],
        aws_secret_access_key=state["secret_access_key"],
        region_name="us-east-1",
    )
    direct.put_object(Bucket="emustudio", Key="e-BACKUPPROBE/notebook.ipynb", Body=b"{}")
    listing = aws_cli(gateway, "s3", "ls", "--recursive", "s3://emustudio/").stdout
    assert "e-BACKUPPROBE/notebook.ipynb" in listing


# --- boto3 ---------------------------------------------------------------------------------------


def test_objects_round_trip_with_s3s_errors(s3: Any) -> None:
    bucket = bucket_name()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="a b/c.txt", Body=b"hello world", Metadata={"k": "v"})
    got = s3.get_object(Bucket=bucket, Key="a b/c.txt", Range="bytes=6-10")
    assert got["Body"].read() == b"world" and got["ContentRange"] == "bytes 6-10/11"
    assert s3.head_object(Bucket=bucket, Key="a b/c.txt")["Metadata"] == {"k": "v"}
    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "a b/c.txt"})
    assert s3.get_object(Bucket=bucket, Key="copy")["Body"].read() == b"hello world"
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=bucket, Key="missing")
    assert code_of(info) == "NoSuchKey"
    assert info.value.response["Error"]["Message"] == "The specified key does not exist."
    with pytest.raises(ClientError) as info:
        s3.list_objects_v2(Bucket=bucket_name())
    assert code_of(info) == "NoSuchBucket"
    with pytest.raises(ClientError) as info:
        s3.delete_bucket(Bucket=bucket)
    assert code_of(info) == "BucketNotEmpty"
    # us-east-1's legacy rule: the owner's second CreateBucket succeeds.
    s3.create_bucket(Bucket=bucket)
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] is None
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
    with pytest.raises(ClientError) as info:
        s3.create_bucket(Bucket="Not_Valid")
    assert code_of(info) == "InvalidBucketName"


def test_bucket_tagging_and_policy(s3: Any) -> None:
    bucket = bucket_name()
    s3.create_bucket(Bucket=bucket)
    with pytest.raises(ClientError) as info:
        s3.get_bucket_tagging(Bucket=bucket)
    assert code_of(info) == "NoSuchTagSet"
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "team", "Value": "data"}]})
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "team", "Value": "data"}]
    s3.delete_bucket_tagging(Bucket=bucket)
    with pytest.raises(ClientError) as info:
        s3.get_bucket_policy(Bucket=bucket)
    assert code_of(info) == "NoSuchBucketPolicy"
    with pytest.raises(ClientError) as info:
        s3.put_bucket_policy(Bucket=bucket, Policy="{not json")
    assert code_of(info) == "MalformedPolicy"
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::000000000000:root"},
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{bucket}/*",
                }
            ],
        }
    )
    s3.put_bucket_policy(Bucket=bucket, Policy=policy)
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == json.loads(policy)
    s3.delete_bucket_policy(Bucket=bucket)
    with pytest.raises(ClientError):
        s3.get_bucket_policy(Bucket=bucket)


def test_directory_markers_have_s3s_semantics(s3: Any) -> None:
    """What Spark's S3A does: a marker, files under it, then DeleteObjects of the marker."""
    bucket = bucket_name()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="out/_temporary/", Body=b"")
    s3.put_object(Bucket=bucket, Key="out/_temporary/0/part-0000", Body=b"row")
    assert s3.head_object(Bucket=bucket, Key="out/_temporary/")["ContentLength"] == 0
    assert keys(s3, bucket) == ["out/_temporary/", "out/_temporary/0/part-0000"]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="out/_temporary/", Delimiter="/")
    assert [o["Key"] for o in listed["Contents"]] == ["out/_temporary/"]
    assert listed["CommonPrefixes"] == [{"Prefix": "out/_temporary/0/"}]
    answer = s3.delete_objects(
        Bucket=bucket,
        Delete={"Objects": [{"Key": "out/_temporary/"}, {"Key": "out/_temporary/0/part-0000"}]},
    )
    assert sorted(d["Key"] for d in answer["Deleted"]) == [
        "out/_temporary/",
        "out/_temporary/0/part-0000",
    ]
    assert "Errors" not in answer
    assert keys(s3, bucket) == []


def test_presigned_get(s3: Any) -> None:
    bucket = bucket_name()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="report.csv", Body=b"a,b\n1,2\n")
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "report.csv"}, ExpiresIn=60
    )
    with urllib.request.urlopen(url) as answer:
        assert answer.read() == b"a,b\n1,2\n"
    forged = url.replace("report.csv", "other.csv")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(forged)
    assert info.value.code == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in info.value.read()


def test_presigned_get_in_the_form_boto3_and_the_cli_make_by_default(
    gateway: GatewayProcess, s3: Any
) -> None:
    """Without ``signature_version='s3v4'`` they sign S3 URLs with ``AWSAccessKeyId``,
    ``Expires`` and an HMAC-SHA1 ``Signature``."""
    bucket = bucket_name()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="dir/a b.txt", Body=b"shared")
    plain = gateway.client("s3")
    url = plain.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "dir/a b.txt"}, ExpiresIn=60
    )
    assert "AWSAccessKeyId=" in url
    with urllib.request.urlopen(url) as answer:
        assert answer.read() == b"shared"
    cli_url = aws_cli(gateway, "s3", "presign", f"s3://{bucket}/dir/a b.txt").stdout.strip()
    with urllib.request.urlopen(cli_url) as answer:
        assert answer.read() == b"shared"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(url.replace("Signature=", "Signature=X"))
    assert info.value.code == 403


def _rss(gateway: GatewayProcess) -> int:
    assert gateway.proc is not None
    return int(psutil.Process(gateway.proc.pid).memory_info().rss)


def test_200_mb_multipart_upload_and_download_stream(
    gateway: GatewayProcess, s3: Any, tmp_path: Path
) -> None:
    bucket = bucket_name()
    s3.create_bucket(Bucket=bucket)
    source = tmp_path / "big.bin"
    with source.open("wb") as out:
        for _ in range(200):
            out.write(os.urandom(MB))
    before = _rss(gateway)
    aws_cli(gateway, "s3", "cp", str(source), f"s3://{bucket}/big.bin")
    after_upload = _rss(gateway)
    target = tmp_path / "back.bin"
    aws_cli(gateway, "s3", "cp", f"s3://{bucket}/big.bin", str(target))
    after_download = _rss(gateway)
    assert target.stat().st_size == 200 * MB
    assert (
        hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(source.read_bytes()).digest()
    )
    # The gateway never holds a body whole: it grows by far less than the 200 MB it moved.
    assert after_upload - before < 50 * MB, (before, after_upload)
    assert after_download - before < 50 * MB, (before, after_download)


# --- authorization -------------------------------------------------------------------------------


def _user_client(gateway: GatewayProcess, name: str, policy: dict[str, Any]) -> Any:
    iam = gateway.client("iam")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="s3", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return boto3.client(
        "s3",
        endpoint_url=gateway.endpoint_url,
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        region_name="us-east-1",
    )


def test_a_user_whose_policy_denies_the_bucket_gets_access_denied(
    gateway: GatewayProcess, s3: Any
) -> None:
    bucket, other = bucket_name(), bucket_name()
    for name in (bucket, other):
        s3.create_bucket(Bucket=name)
        s3.put_object(Bucket=name, Key="k", Body=b"v")
    user = _user_client(
        gateway,
        "analyst-" + secrets.token_hex(3),
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
                {
                    "Effect": "Deny",
                    "Action": "s3:*",
                    "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                },
            ],
        },
    )
    assert user.get_object(Bucket=other, Key="k")["Body"].read() == b"v"
    for call in (
        lambda: user.get_object(Bucket=bucket, Key="k"),
        lambda: user.put_object(Bucket=bucket, Key="new", Body=b"x"),
        lambda: user.list_objects_v2(Bucket=bucket),
    ):
        with pytest.raises(ClientError) as info:
            call()
        assert code_of(info) == "AccessDenied"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert keys(s3, bucket) == ["k"]  # nothing written
    answer = user.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k"}]})
    assert answer["Errors"][0]["Code"] == "AccessDenied"
    assert keys(s3, bucket) == ["k"]


def test_a_bucket_policy_grants_a_role_without_s3_permissions(
    gateway: GatewayProcess, s3: Any
) -> None:
    bucket = bucket_name()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="shared/data.csv", Body=b"1,2")
    iam = gateway.client("iam")
    role_name = "reader-" + secrets.token_hex(3)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::000000000000:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    user = "assumer-" + secrets.token_hex(3)
    iam.create_user(UserName=user)
    iam.put_user_policy(
        UserName=user,
        PolicyName="assume",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName=user)["AccessKey"]
    sts = boto3.client(
        "sts",
        endpoint_url=gateway.endpoint_url,
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        region_name="us-east-1",
    )
    creds = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="job")["Credentials"]
    as_role = boto3.client(
        "s3",
        endpoint_url=gateway.endpoint_url,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name="us-east-1",
    )
    with pytest.raises(ClientError) as info:
        as_role.get_object(Bucket=bucket, Key="shared/data.csv")
    assert code_of(info) == "AccessDenied"
    s3.put_bucket_policy(
        Bucket=bucket,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": role["Arn"]},
                        "Action": ["s3:GetObject", "s3:ListBucket"],
                        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/shared/*"],
                    }
                ],
            }
        ),
    )
    assert as_role.get_object(Bucket=bucket, Key="shared/data.csv")["Body"].read() == b"1,2"
    assert keys(as_role, bucket) == ["shared/data.csv"]
    with pytest.raises(ClientError) as info:
        as_role.put_object(Bucket=bucket, Key="shared/new.csv", Body=b"x")
    assert code_of(info) == "AccessDenied"


# --- malformed requests --------------------------------------------------------------------------


def test_a_bad_signature_writes_nothing(gateway: GatewayProcess, s3: Any) -> None:
    bucket = bucket_name()
    s3.create_bucket(Bucket=bucket)
    forger = boto3.client(
        "s3",
        endpoint_url=gateway.endpoint_url,
        aws_access_key_id="test",
        aws_secret_access_key="wrong",
        region_name="us-east-1",
    )
    with pytest.raises(ClientError) as info:
        forger.put_object(Bucket=bucket, Key="forged", Body=b"x" * 100_000)
    assert code_of(info) == "SignatureDoesNotMatch"
    assert keys(s3, bucket) == []


def _sign(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _chunked_put(
    gateway: GatewayProcess,
    bucket: str,
    key: str,
    chunks: list[bytes],
    *,
    tamper: int | None = None,
    truncate: bool = False,
) -> tuple[int, bytes]:
    """A PUT as the Java SDK (Spark's S3A) sends it: aws-chunked, every chunk signed."""
    now = dt.datetime.now(dt.UTC)
    stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    scope = f"{day}/us-east-1/s3/aws4_request"
    host = f"localhost:{gateway.port}"
    total = sum(len(c) for c in chunks)
    headers = {
        "content-encoding": "aws-chunked",
        "host": host,
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "x-amz-date": stamp,
        "x-amz-decoded-content-length": str(total),
    }
    signed = ";".join(sorted(headers))
    canonical = "\n".join(
        [
            "PUT",
            f"/{bucket}/{key}",
            "",
            "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)),
            signed,
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        ]
    )
    signing_key = _sign(f"AWS4{'test'}".encode(), day)
    for part in ("us-east-1", "s3", "aws4_request"):
        signing_key = _sign(signing_key, part)
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    previous = hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential=test/{scope}, SignedHeaders={signed}, Signature={previous}"
    )
    body = b""
    empty = hashlib.sha256(b"").hexdigest()
    for index, chunk in enumerate([*chunks, b""]):
        text = "\n".join(
            [
                "AWS4-HMAC-SHA256-PAYLOAD",
                stamp,
                scope,
                previous,
                empty,
                hashlib.sha256(chunk).hexdigest(),
            ]
        )
        previous = hmac.new(signing_key, text.encode(), hashlib.sha256).hexdigest()
        signature = "0" * 64 if index == tamper else previous
        body += f"{len(chunk):x};chunk-signature={signature}\r\n".encode() + chunk + b"\r\n"
    headers["content-length"] = str(len(body))
    if truncate:
        with socket.create_connection(("127.0.0.1", gateway.port)) as sock:
            head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            sock.sendall(f"PUT /{bucket}/{key} HTTP/1.1\r\n{head}\r\n".encode())
            sock.sendall(body[: len(body) // 2])
            time.sleep(0.5)
        return 0, b""
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    connection.request("PUT", f"/{bucket}/{key}", body=body, headers=headers)
    answer = connection.getresponse()
    return answer.status, answer.read()


def test_signed_chunks_are_checked_as_they_stream(gateway: GatewayProcess, s3: Any) -> None:
    bucket = bucket_name()
    s3.create_bucket(Bucket=bucket)
    chunks = [os.urandom(64 * 1024) for _ in range(4)] + [b"tail"]
    status, _ = _chunked_put(gateway, bucket, "good", chunks)
    assert status == 200
    assert s3.get_object(Bucket=bucket, Key="good")["Body"].read() == b"".join(chunks)
    assert "ContentEncoding" not in s3.head_object(Bucket=bucket, Key="good")
    status, body = _chunked_put(gateway, bucket, "tampered", chunks, tamper=2)
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body
    status, body = _chunked_put(gateway, bucket, "last-tampered", chunks, tamper=len(chunks))
    assert status == 403
    _chunked_put(gateway, bucket, "truncated", chunks, truncate=True)
    time.sleep(0.5)
    assert keys(s3, bucket) == ["good"]


def test_a_truncated_plain_body_writes_nothing(gateway: GatewayProcess, s3: Any) -> None:
    bucket = bucket_name()
    s3.create_bucket(Bucket=bucket)
    url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "cut"}, ExpiresIn=60
    )
    target = url.split(f":{gateway.port}", 1)[1]
    with socket.create_connection(("127.0.0.1", gateway.port)) as sock:
        sock.sendall(
            f"PUT {target} HTTP/1.1\r\nHost: localhost:{gateway.port}\r\n"
            "Content-Length: 1000000\r\n\r\n".encode()
            + b"x" * 300_000
        )
        time.sleep(0.5)
    time.sleep(0.5)
    assert keys(s3, bucket) == []


def _signing(gateway: GatewayProcess, stamp: str, headers: dict[str, str], path: str) -> str:
    day = stamp[:8]
    scope = f"{day}/us-east-1/s3/aws4_request"
    signed = ";".join(sorted(headers))
    canonical = "\n".join(
        [
            "PUT",
            path,
            "",
            "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)),
            signed,
            headers["x-amz-content-sha256"],
        ]
    )
    key = _sign(b"AWS4test", day)
    for part in ("us-east-1", "s3", "aws4_request"):
        key = _sign(key, part)
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"AWS4-HMAC-SHA256 Credential=test/{scope}, SignedHeaders={signed}, Signature={signature}"
    )


def test_a_wrong_content_sha256_writes_nothing(gateway: GatewayProcess, s3: Any) -> None:
    """Signed correctly, but over a payload hash the body does not have."""
    bucket = bucket_name()
    s3.create_bucket(Bucket=bucket)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    body = os.urandom(300_000)
    headers = {
        "host": f"localhost:{gateway.port}",
        "x-amz-content-sha256": hashlib.sha256(b"something else").hexdigest(),
        "x-amz-date": stamp,
    }
    headers["authorization"] = _signing(gateway, stamp, headers, f"/{bucket}/lie")
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    connection.request("PUT", f"/{bucket}/lie", body=body, headers=headers)
    answer = connection.getresponse()
    assert answer.status == 400
    assert b"<Code>XAmzContentSHA256Mismatch</Code>" in answer.read()
    assert keys(s3, bucket) == []


def test_s3_condition_keys_reach_the_policy_engine(gateway: GatewayProcess, s3: Any) -> None:
    """``s3:prefix``: a user may list only under their own prefix (the IAM guide's example)."""
    bucket = bucket_name()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="home/ana/notes.txt", Body=b"mine")
    s3.put_object(Bucket=bucket, Key="home/bo/notes.txt", Body=b"theirs")
    user = _user_client(
        gateway,
        "ana-" + secrets.token_hex(3),
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": f"arn:aws:s3:::{bucket}",
                    "Condition": {"StringLike": {"s3:prefix": ["home/ana/*"]}},
                },
                {
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:PutObject"],
                    "Resource": f"arn:aws:s3:::{bucket}/home/ana/*",
                },
            ],
        },
    )
    assert keys(user, bucket, Prefix="home/ana/") == ["home/ana/notes.txt"]
    for call in (
        lambda: user.list_objects_v2(Bucket=bucket),
        lambda: user.list_objects_v2(Bucket=bucket, Prefix="home/bo/"),
        lambda: user.get_object(Bucket=bucket, Key="home/bo/notes.txt"),
    ):
        with pytest.raises(ClientError) as info:
            call()
        assert code_of(info) == "AccessDenied"


def test_an_object_named_like_a_tagged_resource_has_none_of_its_tags(
    gateway: GatewayProcess, s3: Any
) -> None:
    """aws:ResourceTag never reaches S3 from the gateway's tags table: an object whose key ends
    like an EC2 resource's id is not that resource."""
    ec2 = gateway.client("ec2")
    vpc = ec2.create_vpc(
        CidrBlock="10.77.0.0/16",
        TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "team", "Value": "a"}]}],
    )["Vpc"]["VpcId"]
    try:
        bucket = bucket_name()
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key=f"ids/{vpc}", Body=b"v")
        user = _user_client(
            gateway,
            "tagged-" + secrets.token_hex(3),
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "s3:GetObject",
                        "Resource": "*",
                        "Condition": {"StringEquals": {"aws:ResourceTag/team": "a"}},
                    }
                ],
            },
        )
        with pytest.raises(ClientError) as info:
            user.get_object(Bucket=bucket, Key=f"ids/{vpc}")
        assert code_of(info) == "AccessDenied"
    finally:
        ec2.delete_vpc(VpcId=vpc)


def test_bucket_calls_are_in_cloudtrail_and_object_calls_are_not(
    gateway: GatewayProcess, s3: Any
) -> None:
    """Bucket-level calls are management events; object-level ones are data events, which the
    event history (LookupEvents) does not hold, as on AWS."""
    bucket = bucket_name()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    trail = gateway.client("cloudtrail")

    def events(name: str) -> list[dict[str, Any]]:
        found = trail.lookup_events(
            LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": name}]
        )["Events"]
        return [json.loads(e["CloudTrailEvent"]) for e in found]

    created = [e for e in events("CreateBucket") if e["requestParameters"]["bucket"] == bucket]
    assert len(created) == 1
    assert created[0]["eventSource"] == "s3.amazonaws.com"
    assert events("PutObject") == []


def test_virtual_hosted_requests_and_studio_hosts_are_told_apart(
    gateway: GatewayProcess, s3: Any
) -> None:
    """``http://<bucket>.localhost:<port>/<key>``, as boto3 builds virtual-hosted URLs from the
    endpoint (sent here to 127.0.0.1 with that Host: the name need not resolve); a Studio
    host under ``emrstudio.localhost`` is never taken for a bucket."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    bucket = bucket_name()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="notes/today.txt", Body=b"virtual")
    host = f"{bucket}.localhost:{gateway.port}"
    request = AWSRequest(method="GET", url=f"http://{host}/notes/today.txt")
    S3SigV4Auth(Credentials("test", "test"), "s3", "us-east-1").add_auth(request)
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    connection.request("GET", "/notes/today.txt", headers={**request.headers, "Host": host})
    answer = connection.getresponse()
    body = answer.read()
    assert (answer.status, body) == (200, b"virtual"), body
    studio = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    studio.request(
        "GET", "/", headers={"Host": f"es-NOSUCHSTUDIO.emrstudio.localhost:{gateway.port}"}
    )
    page = studio.getresponse()
    assert b"<Error><Code>" not in page.read()


def _unsigned_trailer_put(
    gateway: GatewayProcess, bucket: str, key: str, data: bytes, trailer: str
) -> tuple[int, bytes]:
    """A PUT as boto3 sends one over HTTPS: aws-chunked, unsigned, a checksum in the trailer."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    name = trailer.split(":", 1)[0]
    headers = {
        "content-encoding": "aws-chunked",
        "host": f"localhost:{gateway.port}",
        "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "x-amz-date": stamp,
        "x-amz-decoded-content-length": str(len(data)),
        "x-amz-trailer": name,
    }
    headers["authorization"] = _signing(gateway, stamp, headers, f"/{bucket}/{key}")
    body = f"{len(data):x}\r\n".encode() + data + f"\r\n0\r\n{trailer}\r\n\r\n".encode()
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    connection.request("PUT", f"/{bucket}/{key}", body=body, headers=headers)
    answer = connection.getresponse()
    return answer.status, answer.read()


def _digest(algorithm: str, data: bytes) -> bytes:
    """The checksum's bytes, computed here as botocore computes it (hashlib, awscrt)."""
    from awscrt import checksums

    if algorithm == "CRC32C":
        return checksums.crc32c(data).to_bytes(4, "big")
    if algorithm == "CRC64NVME":
        return checksums.crc64nvme(data).to_bytes(8, "big")
    if algorithm.startswith("XXHASH"):
        make = {
            "XXHASH64": checksums.XXHash.new_xxhash64,
            "XXHASH3": checksums.XXHash.new_xxhash3_64,
            "XXHASH128": checksums.XXHash.new_xxhash3_128,
        }[algorithm]()
        make.update(data)
        return bytes(make.finalize())
    return hashlib.new(algorithm.lower(), data).digest()


@pytest.mark.parametrize(
    "algorithm", ["CRC32C", "CRC64NVME", "SHA512", "MD5", "XXHASH64", "XXHASH3", "XXHASH128"]
)
def test_every_checksum_algorithm_is_checked_and_a_mismatch_writes_nothing(
    gateway: GatewayProcess, s3: Any, algorithm: str
) -> None:
    """Each of S3's ChecksumAlgorithm values, in a header or a trailer: boto3 computes them
    (MD5 it does not, so its value is given, as a caller of the API gives it)."""
    bucket = bucket_name()
    s3.create_bucket(Bucket=bucket)
    data = os.urandom(200_000)
    right = _digest(algorithm, data)
    member = "Checksum" + algorithm
    if algorithm == "MD5":
        good = {member: base64.b64encode(right).decode()}
    else:
        good = {"ChecksumAlgorithm": algorithm}
    put = s3.put_object(Bucket=bucket, Key="good", Body=data, **good)
    expected = base64.b64encode(right).decode()
    assert (put[member], put["ChecksumType"]) == (expected, "FULL_OBJECT")
    # Kept with the object: answered when asked for (boto3 checks the bytes it gets against
    # the CRCs, SHAs and XXHASHes), never as the user's metadata, never for a range.
    got = s3.get_object(Bucket=bucket, Key="good", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert (got[member], got["ChecksumType"], got["Metadata"]) == (expected, "FULL_OBJECT", {})
    head = s3.head_object(Bucket=bucket, Key="good", ChecksumMode="ENABLED")
    assert (head[member], head["ChecksumType"]) == (expected, "FULL_OBJECT")
    ranged = s3.get_object(Bucket=bucket, Key="good", Range="bytes=0-9", ChecksumMode="ENABLED")
    assert member not in ranged and ranged["Body"].read() == data[:10]
    wrong = base64.b64encode(bytes(len(right))).decode()
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket=bucket, Key="wrong", Body=data, **{member: wrong})
    assert code_of(info) == "BadDigest"
    assert algorithm in info.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket=bucket, Key="malformed", Body=data, **{member: "not-base64!"})
    assert code_of(info) == "InvalidRequest"
    with pytest.raises(ClientError) as info:  # a digest of another algorithm's length
        s3.put_object(Bucket=bucket, Key="short", Body=data, **{member: "AAA="})
    assert code_of(info) == "InvalidRequest"
    header = f"x-amz-checksum-{algorithm.lower()}"
    status, _ = _unsigned_trailer_put(
        gateway, bucket, "trailed", data, f"{header}:{base64.b64encode(right).decode()}"
    )
    assert status == 200
    status, body = _unsigned_trailer_put(
        gateway, bucket, "trailed-wrong", data, f"{header}:{wrong}"
    )
    assert status == 400 and b"<Code>BadDigest</Code>" in body
    assert keys(s3, bucket) == ["good", "trailed"]
    head = s3.head_object(Bucket=bucket, Key="trailed", ChecksumMode="ENABLED")
    assert head[member] == expected  # a trailer's checksum is kept too (a body read whole)


def test_a_stored_checksum_cannot_be_forged_through_metadata(
    gateway: GatewayProcess, s3: Any
) -> None:
    bucket = bucket_name()
    s3.create_bucket(Bucket=bucket)
    forged = {"x-emustudio-checksum": "sha256:" + base64.b64encode(bytes(32)).decode()}
    s3.put_object(
        Bucket=bucket, Key="k", Body=b"data", Metadata={**forged, "owner": "me"},
        ChecksumAlgorithm="SHA256",
    )  # fmt: skip
    head = s3.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    real = base64.b64encode(hashlib.sha256(b"data").digest()).decode()
    assert (head["ChecksumSHA256"], head["Metadata"]) == (real, {"owner": "me"})
    plain = gateway.client("s3", config=Config(response_checksum_validation="when_required"))
    assert "ChecksumSHA256" not in plain.head_object(Bucket=bucket, Key="k")  # not asked for


def test_multipart_checksums_are_composite_or_full_object_as_s3_makes_them(s3: Any) -> None:
    bucket = bucket_name()
    s3.create_bucket(Bucket=bucket)
    parts = [os.urandom(5 * MB), os.urandom(1000)]

    def upload(key: str, **kind: str) -> tuple[str, list[dict[str, Any]]]:
        upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **kind)["UploadId"]
        done = []
        for number, data in enumerate(parts, 1):
            part = s3.upload_part(
                Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data,
                ChecksumAlgorithm=kind["ChecksumAlgorithm"],
            )  # fmt: skip
            member = "Checksum" + kind["ChecksumAlgorithm"]
            done.append({"PartNumber": number, "ETag": part["ETag"], member: part[member]})
        return upload_id, done

    # COMPOSITE: the checksum of the parts' checksums, with the number of parts after it.
    upload_id, done = upload("composite", ChecksumAlgorithm="SHA256")
    assert done[0]["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(parts[0]).digest()).decode()
    wrong = [{**done[0], "ChecksumSHA256": base64.b64encode(bytes(32)).decode()}, done[1]]
    with pytest.raises(ClientError) as info:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="composite", UploadId=upload_id, MultipartUpload={"Parts": wrong}
        )
    assert code_of(info) == "InvalidPart"
    finished = s3.complete_multipart_upload(
        Bucket=bucket, Key="composite", UploadId=upload_id, MultipartUpload={"Parts": done}
    )
    inner = hashlib.sha256(b"".join(hashlib.sha256(p).digest() for p in parts)).digest()
    composite = base64.b64encode(inner).decode() + "-2"
    assert (finished["ChecksumSHA256"], finished["ChecksumType"]) == (composite, "COMPOSITE")
    head = s3.head_object(Bucket=bucket, Key="composite", ChecksumMode="ENABLED")
    assert (head["ChecksumSHA256"], head["ChecksumType"]) == (composite, "COMPOSITE")
    attributes = s3.get_object_attributes(
        Bucket=bucket, Key="composite",
        ObjectAttributes=["ETag", "Checksum", "ObjectParts", "ObjectSize", "StorageClass"],
    )  # fmt: skip
    assert attributes["Checksum"] == {"ChecksumSHA256": composite, "ChecksumType": "COMPOSITE"}
    assert attributes["ObjectParts"]["TotalPartsCount"] == 2
    assert attributes["ObjectSize"] == sum(len(p) for p in parts)
    assert attributes["ETag"] == head["ETag"].strip('"')
    assert attributes["StorageClass"] == "STANDARD"
    # FULL_OBJECT: the CRC of the whole object, which boto3 checks the download against.
    upload_id, done = upload("full", ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT")
    finished = s3.complete_multipart_upload(
        Bucket=bucket, Key="full", UploadId=upload_id, MultipartUpload={"Parts": done}
    )
    whole = base64.b64encode(zlib.crc32(b"".join(parts)).to_bytes(4, "big")).decode()
    assert (finished["ChecksumCRC32"], finished["ChecksumType"]) == (whole, "FULL_OBJECT")
    got = s3.get_object(Bucket=bucket, Key="full", ChecksumMode="ENABLED")
    assert (got["ChecksumCRC32"], got["ChecksumType"]) == (whole, "FULL_OBJECT")
    assert got["Body"].read() == b"".join(parts)
    # A full-object checksum is a CRC's only.
    with pytest.raises(ClientError) as info:
        s3.create_multipart_upload(
            Bucket=bucket, Key="no", ChecksumAlgorithm="SHA256", ChecksumType="FULL_OBJECT"
        )
    assert code_of(info) == "InvalidRequest"


def _crc64(data: bytes) -> str:
    return base64.b64encode(_digest("CRC64NVME", data)).decode()


def test_an_objects_bytes_are_kept_whatever_its_content_type_says(s3: Any) -> None:
    """A small body is read whole by the server before S3 sees it: never as a form."""
    bucket = bucket_name()
    s3.create_bucket(Bucket=bucket)
    for content_type, data in (
        ("application/x-www-form-urlencoded", b"a=1&b=%zz&&="),
        ("multipart/form-data; boundary=x", b"--x\r\nnot really a form"),
    ):
        s3.put_object(Bucket=bucket, Key="k", Body=data, ContentType=content_type)
        got = s3.get_object(Bucket=bucket, Key="k")
        assert (got["Body"].read(), got["ContentType"]) == (data, content_type)


def test_a_streamed_bodys_trailer_checksum_is_kept_and_a_wrong_one_writes_nothing(
    gateway: GatewayProcess, s3: Any
) -> None:
    """Over 256 KB the body streams to the store before its trailer arrives: the checksum is
    still kept, and answered as the small body's is."""
    bucket = bucket_name()
    s3.create_bucket(Bucket=bucket)
    data = os.urandom(3 * MB)
    right = base64.b64encode(_digest("CRC32C", data)).decode()
    status, _ = _unsigned_trailer_put(
        gateway, bucket, "big", data, f"x-amz-checksum-crc32c:{right}"
    )
    assert status == 200
    wrong = base64.b64encode(_digest("CRC32C", data[1:])).decode()
    status, body = _unsigned_trailer_put(
        gateway, bucket, "big-wrong", data, f"x-amz-checksum-crc32c:{wrong}"
    )
    assert status == 400 and b"<Code>BadDigest</Code>" in body
    assert keys(s3, bucket) == ["big"]
    head = s3.head_object(Bucket=bucket, Key="big", ChecksumMode="ENABLED")
    assert (head["ChecksumCRC32C"], head["ChecksumType"]) == (right, "FULL_OBJECT")
    got = s3.get_object(Bucket=bucket, Key="big", ChecksumMode="ENABLED")  # boto3 checks it
    assert got["ChecksumCRC32C"] == right and got["Body"].read() == data
    cli = aws_cli(
        gateway, "s3api", "get-object-attributes", "--bucket", bucket, "--key", "big",
        "--object-attributes", "Checksum", "ObjectParts",
    )  # fmt: skip
    answer = json.loads(cli.stdout)
    assert answer["Checksum"] == {"ChecksumCRC32C": right, "ChecksumType": "FULL_OBJECT"}
    assert "ObjectParts" not in answer  # one PUT: no parts
    # A wrong trailer over a key that exists leaves the object and its checksum as they were.
    status, _ = _unsigned_trailer_put(
        gateway, bucket, "big", data[1:], f"x-amz-checksum-crc32c:{right}"
    )
    assert status == 400
    head = s3.head_object(Bucket=bucket, Key="big", ChecksumMode="ENABLED")
    assert (head["ContentLength"], head["ChecksumCRC32C"]) == (len(data), right)


def test_objects_uploaded_without_a_checksum_get_s3s_default_crc64nvme(
    gateway: GatewayProcess, s3: Any, tmp_path: Path
) -> None:
    """S3 adds a full-object CRC64NVME to what comes without a checksum: a small body, a
    streamed one, a presigned PUT, a multipart upload (the CLI's, with its parts)."""
    bucket = bucket_name()
    s3.create_bucket(Bucket=bucket)
    bare = gateway.client("s3", config=Config(request_checksum_calculation="when_required"))
    for key, data in (("small", os.urandom(1024)), ("streamed", os.urandom(2 * MB))):
        put = bare.put_object(Bucket=bucket, Key=key, Body=data)
        assert (put["ChecksumCRC64NVME"], put["ChecksumType"]) == (_crc64(data), "FULL_OBJECT")
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        assert (head["ChecksumCRC64NVME"], head["ChecksumType"]) == (_crc64(data), "FULL_OBJECT")
        got = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        assert got["ChecksumCRC64NVME"] == _crc64(data) and got["Body"].read() == data
    url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "presigned"}, ExpiresIn=60
    )
    urllib.request.urlopen(urllib.request.Request(url, data=b"hello", method="PUT")).read()
    head = s3.head_object(Bucket=bucket, Key="presigned", ChecksumMode="ENABLED")
    assert head["ChecksumCRC64NVME"] == _crc64(b"hello")
    # A checksum asked for is the object's, not the default.
    s3.put_object(Bucket=bucket, Key="sha", Body=b"x", ChecksumAlgorithm="SHA256")
    head = s3.head_object(Bucket=bucket, Key="sha", ChecksumMode="ENABLED")
    assert "ChecksumSHA256" in head and "ChecksumCRC64NVME" not in head
    # The CLI's multipart upload (12 MB: two 8 MB parts), sent without checksums.
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(12 * MB))
    off = {"AWS_REQUEST_CHECKSUM_CALCULATION": "when_required"}
    aws_cli(gateway, "s3", "cp", str(source), f"s3://{bucket}/multi", env=off)
    whole = source.read_bytes()
    head = s3.head_object(Bucket=bucket, Key="multi", ChecksumMode="ENABLED")
    assert (head["ChecksumCRC64NVME"], head["ChecksumType"]) == (_crc64(whole), "FULL_OBJECT")
    cli = aws_cli(
        gateway, "s3api", "get-object-attributes", "--bucket", bucket, "--key", "multi",
        "--object-attributes", "Checksum", "ObjectParts", "ObjectSize",
    )  # fmt: skip
    answer = json.loads(cli.stdout)
    assert answer["Checksum"] == {"ChecksumCRC64NVME": _crc64(whole), "ChecksumType": "FULL_OBJECT"}
    parts = answer["ObjectParts"]
    assert parts["TotalPartsCount"] == 2 and parts["IsTruncated"] is False
    assert [(p["PartNumber"], p["Size"], p["ChecksumCRC64NVME"]) for p in parts["Parts"]] == [
        (1, 8 * MB, _crc64(whole[: 8 * MB])), (2, 4 * MB, _crc64(whole[8 * MB :]))
    ]  # fmt: skip
    back = tmp_path / "back.bin"
    aws_cli(gateway, "s3", "cp", f"s3://{bucket}/multi", str(back))
    assert back.read_bytes() == whole


def test_get_object_attributes_pages_a_multipart_objects_parts(
    gateway: GatewayProcess, s3: Any
) -> None:
    bucket = bucket_name()
    s3.create_bucket(Bucket=bucket)
    datas = [os.urandom(5 * MB), os.urandom(5 * MB), os.urandom(1000)]
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="m", ChecksumAlgorithm="SHA256")[
        "UploadId"
    ]
    done = []
    for number, data in enumerate(datas, 1):
        part = s3.upload_part(
            Bucket=bucket, Key="m", UploadId=upload_id, PartNumber=number, Body=data,
            ChecksumAlgorithm="SHA256",
        )  # fmt: skip
        done.append(
            {"PartNumber": number, "ETag": part["ETag"], "ChecksumSHA256": part["ChecksumSHA256"]}
        )
    s3.complete_multipart_upload(
        Bucket=bucket, Key="m", UploadId=upload_id, MultipartUpload={"Parts": done}
    )
    sha = [base64.b64encode(hashlib.sha256(d).digest()).decode() for d in datas]
    first = s3.get_object_attributes(
        Bucket=bucket, Key="m", ObjectAttributes=["ObjectParts"], MaxParts=2
    )["ObjectParts"]
    assert {k: v for k, v in first.items() if k != "Parts"} == {
        "TotalPartsCount": 3, "PartNumberMarker": 0, "NextPartNumberMarker": 2,
        "MaxParts": 2, "IsTruncated": True,
    }  # fmt: skip
    assert first["Parts"] == [
        {"PartNumber": 1, "Size": 5 * MB, "ChecksumSHA256": sha[0]},
        {"PartNumber": 2, "Size": 5 * MB, "ChecksumSHA256": sha[1]},
    ]
    rest = s3.get_object_attributes(
        Bucket=bucket, Key="m", ObjectAttributes=["ObjectParts"], PartNumberMarker=2
    )["ObjectParts"]
    assert rest["IsTruncated"] is False and rest["MaxParts"] == 1000
    assert rest["Parts"] == [{"PartNumber": 3, "Size": 1000, "ChecksumSHA256": sha[2]}]
    # The key written again in one PUT: no parts any more, and the new object's checksum.
    s3.put_object(Bucket=bucket, Key="m", Body=b"one piece")
    again = s3.get_object_attributes(
        Bucket=bucket, Key="m", ObjectAttributes=["ObjectParts", "Checksum"]
    )
    assert "ObjectParts" not in again
    assert again["Checksum"]["ChecksumType"] == "FULL_OBJECT"


def test_the_cli_sends_sha512_and_xxhash_checksums_and_a_wrong_one_is_bad_digest(
    gateway: GatewayProcess, s3: Any, tmp_path: Path
) -> None:
    bucket = bucket_name()
    s3.create_bucket(Bucket=bucket)
    source = tmp_path / "data.bin"
    source.write_bytes(os.urandom(100_000))
    for algorithm in ("SHA512", "XXHASH128"):
        put = ["s3api", "put-object", "--bucket", bucket, "--key", algorithm, "--body", str(source)]
        aws_cli(gateway, *put, "--checksum-algorithm", algorithm)
    wrong = base64.b64encode(bytes(64)).decode()
    put = ["s3api", "put-object", "--bucket", bucket, "--key", "wrong", "--body", str(source)]
    refused = aws_cli(gateway, *put, "--checksum-sha512", wrong, check=False)
    assert refused.returncode != 0 and "BadDigest" in refused.stderr, refused.stderr
    assert keys(s3, bucket) == ["SHA512", "XXHASH128"]
    head = aws_cli(
        gateway, "s3api", "head-object", "--bucket", bucket, "--key", "SHA512",
        "--checksum-mode", "ENABLED",
    )  # fmt: skip
    digest = base64.b64encode(hashlib.sha512(source.read_bytes()).digest()).decode()
    assert json.loads(head.stdout)["ChecksumSHA512"] == digest
    attributes = aws_cli(
        gateway, "s3api", "get-object-attributes", "--bucket", bucket, "--key", "SHA512",
        "--object-attributes", "Checksum", "ObjectSize",
    )  # fmt: skip
    answer = json.loads(attributes.stdout)
    assert answer["Checksum"] == {"ChecksumSHA512": digest, "ChecksumType": "FULL_OBJECT"}
    assert answer["ObjectSize"] == 100_000 and "ETag" not in answer


def _unsigned(
    gateway: GatewayProcess, method: str, path: str, host: str | None = None, body: bytes = b""
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    headers = {"Host": host or f"localhost:{gateway.port}"}
    connection.request(method, path, body=body or None, headers=headers)
    answer = connection.getresponse()
    return answer.status, answer.read()


def test_anonymous_requests_get_what_a_public_bucket_policy_grants(
    gateway: GatewayProcess, s3: Any, tmp_path: Path
) -> None:
    """Unsigned requests, path-style and virtual-hosted, are S3's and judged as anonymous."""
    public, private = bucket_name(), bucket_name()
    for bucket in (public, private):
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="docs/readme.txt", Body=b"hello")
    s3.put_bucket_policy(
        Bucket=public,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "s3:GetObject",
                        "Resource": f"arn:aws:s3:::{public}/*",
                    }
                ],
            }
        ),
    )
    assert _unsigned(gateway, "GET", f"/{public}/docs/readme.txt") == (200, b"hello")
    # The AWS CLI's --no-sign-request sends exactly such requests.
    out = tmp_path / "readme.txt"
    aws_cli(gateway, "s3", "cp", "--no-sign-request", f"s3://{public}/docs/readme.txt", str(out))
    assert out.read_bytes() == b"hello"
    denied = aws_cli(
        gateway, "s3", "cp", "--no-sign-request", f"s3://{private}/docs/readme.txt", str(out),
        check=False,
    )  # fmt: skip
    assert denied.returncode != 0 and "403" in denied.stderr, denied.stderr
    virtual = f"{public}.localhost:{gateway.port}"
    assert _unsigned(gateway, "GET", "/docs/readme.txt", host=virtual) == (200, b"hello")
    refused = [
        _unsigned(gateway, "GET", f"/{private}/docs/readme.txt"),
        _unsigned(gateway, "GET", f"/{public}"),  # listing is not granted
        _unsigned(gateway, "PUT", f"/{public}/docs/new.txt", body=b"anonymous write"),
        _unsigned(gateway, "DELETE", f"/{public}/docs/readme.txt"),
    ]
    for status, body in refused:
        assert status == 403, body
        assert b"<Code>AccessDenied</Code><Message>Access Denied</Message>" in body
    assert keys(s3, public) == ["docs/readme.txt"]
    # An unsigned request to the API's / is still refused in that API's own words.
    status, body = _unsigned(gateway, "GET", "/?Action=ListUsers&Version=2010-05-08")
    assert status in (400, 403) and b"MissingAuthenticationToken" in body, body


def test_anonymous_calls_to_a_missing_bucket_are_no_such_bucket(
    gateway: GatewayProcess, s3: Any
) -> None:
    """S3 tells anyone whether a bucket exists: an unsigned call to a missing bucket is
    NoSuchBucket (404), to an existing private one AccessDenied (403), as boto3 reads them."""
    from botocore import UNSIGNED

    anonymous = boto3.client(
        "s3",
        endpoint_url=gateway.endpoint_url,
        region_name="us-east-1",
        config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1}),
    )
    private, missing = bucket_name(), bucket_name()
    s3.create_bucket(Bucket=private)
    s3.put_object(Bucket=private, Key="k", Body=b"secret")
    calls = {
        "get_object": {"Key": "k"},
        "put_object": {"Key": "k", "Body": b"anonymous"},
        "list_objects_v2": {},
        "delete_object": {"Key": "k"},
        "get_bucket_policy": {},
    }
    for name, params in calls.items():
        for bucket, expected in ((missing, "NoSuchBucket"), (private, "AccessDenied")):
            with pytest.raises(ClientError) as info:
                getattr(anonymous, name)(Bucket=bucket, **params)
            assert code_of(info) == expected, (name, bucket)
            status = 404 if expected == "NoSuchBucket" else 403
            assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
            if expected == "NoSuchBucket":
                assert info.value.response["Error"]["BucketName"] == missing
    # HEAD has no body: the status alone tells, as S3's does.
    for name, params in (("head_bucket", {}), ("head_object", {"Key": "k"})):
        for bucket, status in ((missing, "404"), (private, "403")):
            with pytest.raises(ClientError) as info:
                getattr(anonymous, name)(Bucket=bucket, **params)
            assert code_of(info) == status, (name, bucket)
    # Making a bucket is refused, not answered with the bucket's absence.
    with pytest.raises(ClientError) as info:
        anonymous.create_bucket(Bucket=missing)
    assert code_of(info) == "AccessDenied"
    assert s3.get_object(Bucket=private, Key="k")["Body"].read() == b"secret"
    assert missing not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


# --- another account -----------------------------------------------------------------------------

OTHER_ACCOUNT, OTHER_KEY, OTHER_SECRET = "222222222222", "AKIAOTHERACCOUNTROOT", "other-secret"


@pytest.fixture(scope="module")
def two_accounts() -> Any:
    """A gateway that plays a second account (setting other_accounts) beside its own."""
    gw = GatewayProcess(
        env={"EMUSTUDIO_OTHER_ACCOUNTS": f"{OTHER_ACCOUNT}:{OTHER_KEY}:{OTHER_SECRET}"}
    )
    try:
        yield gw.start()
    finally:
        gw.close()


def _as(gateway: GatewayProcess, service: str, key: str, secret: str, token: str = "") -> Any:
    return boto3.client(
        service,
        endpoint_url=gateway.endpoint_url,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token or None,
        region_name="us-east-1",
    )


def test_a_bucket_policy_grants_another_accounts_role(two_accounts: GatewayProcess) -> None:
    """Account B's role reads account A's bucket only when both sides allow, as AWS decides
    across accounts: A's bucket policy names the role, and B's identity policy allows."""
    gw = two_accounts
    owner = gw.client("s3")
    bucket = bucket_name()
    owner.create_bucket(Bucket=bucket)
    owner.put_object(Bucket=bucket, Key="shared/data.csv", Body=b"1,2")
    # Account B, as its root: its own IAM (a role and a user that may assume it).
    other_iam = _as(gw, "iam", OTHER_KEY, OTHER_SECRET)
    other_root = _as(gw, "sts", OTHER_KEY, OTHER_SECRET).get_caller_identity()
    assert other_root["Account"] == OTHER_ACCOUNT
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = other_iam.create_role(RoleName="reader", AssumeRolePolicyDocument=json.dumps(trust))
    role_arn = role["Role"]["Arn"]
    assert role_arn == f"arn:aws:iam::{OTHER_ACCOUNT}:role/reader"
    with pytest.raises(ClientError) as info:
        gw.client("iam").get_role(RoleName="reader")  # not in account A
    assert code_of(info) == "NoSuchEntity"
    reads = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
            }
        ],
    }
    other_iam.put_role_policy(
        RoleName="reader", PolicyName="reads", PolicyDocument=json.dumps(reads)
    )
    other_iam.create_user(UserName="alice")
    other_iam.put_user_policy(
        UserName="alice",
        PolicyName="assume",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_arn}
                ],
            }
        ),
    )
    key = other_iam.create_access_key(UserName="alice")["AccessKey"]
    alice = _as(gw, "sts", key["AccessKeyId"], key["SecretAccessKey"])
    creds = alice.assume_role(RoleArn=role_arn, RoleSessionName="job")["Credentials"]
    as_role = _as(gw, "s3", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    session = _as(gw, "sts", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    assert session.get_caller_identity()["Arn"].startswith(
        f"arn:aws:sts::{OTHER_ACCOUNT}:assumed-role/reader/"
    )

    def read() -> bytes:
        body: bytes = as_role.get_object(Bucket=bucket, Key="shared/data.csv")["Body"].read()
        return body

    # B's identity policy allows, A's bucket has no policy: refused.
    with pytest.raises(ClientError) as info:
        read()
    assert code_of(info) == "AccessDenied"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    grant = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": role_arn},
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/shared/*",
            }
        ],
    }
    owner.put_bucket_policy(Bucket=bucket, Policy=json.dumps(grant))
    assert read() == b"1,2"
    # Even let through by a policy, only the owner's account reads or changes the policy.
    everything = {**grant["Statement"][0], "Action": "s3:*", "Resource": f"arn:aws:s3:::{bucket}"}
    owner.put_bucket_policy(
        Bucket=bucket,
        Policy=json.dumps({**grant, "Statement": [grant["Statement"][0], everything]}),
    )
    other_iam.put_role_policy(
        RoleName="reader",
        PolicyName="all",
        PolicyDocument=json.dumps(
            {**reads, "Statement": [{**reads["Statement"][0], "Action": "s3:*", "Resource": "*"}]}
        ),
    )
    with pytest.raises(ClientError) as info:
        as_role.get_bucket_policy(Bucket=bucket)
    assert code_of(info) == "MethodNotAllowed"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 405
    other_iam.delete_role_policy(RoleName="reader", PolicyName="all")
    owner.put_bucket_policy(Bucket=bucket, Policy=json.dumps(grant))
    # The bucket policy grants reads only; writing is refused and writes nothing.
    with pytest.raises(ClientError) as info:
        as_role.put_object(Bucket=bucket, Key="shared/new.csv", Body=b"x")
    assert code_of(info) == "AccessDenied"
    assert keys(owner, bucket) == ["shared/data.csv"]
    # A's bucket policy grants, B's identity policy no longer allows: refused.
    other_iam.delete_role_policy(RoleName="reader", PolicyName="reads")
    with pytest.raises(ClientError) as info:
        read()
    assert code_of(info) == "AccessDenied"


def test_another_accounts_buckets_are_its_own(two_accounts: GatewayProcess) -> None:
    """One bucket namespace, each bucket its creator's account's: listed only there, not
    creatable by another, not readable by another account's root without a grant."""
    gw = two_accounts
    mine, theirs = gw.client("s3"), _as(gw, "s3", OTHER_KEY, OTHER_SECRET)
    ours, other = bucket_name(), bucket_name()
    mine.create_bucket(Bucket=ours)
    mine.put_object(Bucket=ours, Key="k", Body=b"ours")
    theirs.create_bucket(Bucket=other)
    theirs.put_object(Bucket=other, Key="k", Body=b"theirs")
    listed = {b["Name"] for b in theirs.list_buckets()["Buckets"]}
    assert other in listed and ours not in listed
    assert other not in {b["Name"] for b in mine.list_buckets()["Buckets"]}
    assert theirs.list_buckets()["Owner"]["ID"] == OTHER_ACCOUNT
    with pytest.raises(ClientError) as info:
        theirs.create_bucket(Bucket=ours)
    assert code_of(info) == "BucketAlreadyExists"
    for call in (
        lambda: theirs.get_object(Bucket=ours, Key="k"),
        lambda: mine.get_object(Bucket=other, Key="k"),
    ):
        with pytest.raises(ClientError) as info:
            call()
        assert code_of(info) == "AccessDenied"
    assert theirs.get_object(Bucket=other, Key="k")["Body"].read() == b"theirs"

    def created(trail: Any) -> set[str]:
        found = trail.lookup_events(
            LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateBucket"}]
        )["Events"]
        records = [json.loads(e["CloudTrailEvent"]) for e in found]
        return {r["requestParameters"]["bucket"] for r in records if "errorCode" not in r}

    # Each account's calls are in its own trail (B's refused CreateBucket of ours too).
    own_trail, their_trail = gw.client("cloudtrail"), _as(gw, "cloudtrail", OTHER_KEY, OTHER_SECRET)
    assert other in created(their_trail) and ours not in created(their_trail)
    assert ours in created(own_trail) and other not in created(own_trail)
    # The other account is played for IAM, STS and S3 (and its trail), nothing else.
    with pytest.raises(ClientError) as info:
        _as(gw, "ec2", OTHER_KEY, OTHER_SECRET).describe_vpcs()
    assert "222222222222" in str(info.value)


def test_assume_role_across_accounts_needs_trust_and_identity(
    two_accounts: GatewayProcess,
) -> None:
    """A role of account A assumed by a user of account B: A's trust policy must name B and
    B's identity policy must allow sts:AssumeRole on it; the session is A's."""
    gw = two_accounts
    own_iam, other_iam = gw.client("iam"), _as(gw, "iam", OTHER_KEY, OTHER_SECRET)
    suffix = secrets.token_hex(3)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    shared = own_iam.create_role(
        RoleName=f"shared-{suffix}", AssumeRolePolicyDocument=json.dumps(trust)
    )["Role"]["Arn"]
    untrusting = own_iam.create_role(
        RoleName=f"private-{suffix}",
        AssumeRolePolicyDocument=json.dumps(
            {
                **trust,
                "Statement": [{**trust["Statement"][0], "Principal": {"AWS": "000000000000"}}],
            }
        ),
    )["Role"]["Arn"]
    other_iam.create_user(UserName=f"bob-{suffix}")
    key = other_iam.create_access_key(UserName=f"bob-{suffix}")["AccessKey"]
    bob = _as(gw, "sts", key["AccessKeyId"], key["SecretAccessKey"])

    def refused(role_arn: str) -> None:
        with pytest.raises(ClientError) as info:
            bob.assume_role(RoleArn=role_arn, RoleSessionName="job")
        assert code_of(info) == "AccessDenied"

    refused(shared)  # A trusts B, but B's identity policy allows nothing yet
    other_iam.put_user_policy(
        UserName=f"bob-{suffix}",
        PolicyName="assume",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}],
            }
        ),
    )
    refused(untrusting)  # B allows, A's trust policy does not name B
    creds = bob.assume_role(RoleArn=shared, RoleSessionName="job")["Credentials"]
    session = _as(gw, "sts", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    identity = session.get_caller_identity()
    assert identity["Account"] == "000000000000"
    assert identity["Arn"] == f"arn:aws:sts::000000000000:assumed-role/shared-{suffix}/job"


def test_the_access_log_keeps_failed_s3_calls_and_leaves_out_the_rest(
    gateway: GatewayProcess, s3: Any
) -> None:
    """Calls that went well are CloudTrail's to record (a log line per small object would cost
    a fair share of its time); the ones that failed are still in the gateway's log."""
    bucket = bucket_name()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="present", Body=b"x")
    s3.get_object(Bucket=bucket, Key="present")["Body"].read()
    with pytest.raises(ClientError):
        s3.get_object(Bucket=bucket, Key="absent")
    deadline = time.monotonic() + 10
    while f"/{bucket}/absent" not in gateway.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    lines = [line for line in gateway.log().splitlines() if f"/{bucket}/" in line]
    assert any("404 GET" in line and "/absent" in line for line in lines), lines
    assert not any("/present" in line for line in lines), lines
