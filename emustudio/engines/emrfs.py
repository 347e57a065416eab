"""EMRFS on a node: what Spark and the AWS SDKs are told so that ``s3://`` reaches the gateway.

EMR's EMRFS is closed source; Spark's open S3 client, S3A (``hadoop-aws`` in the node image),
takes the ``s3://``, ``s3a://`` and ``s3n://`` schemes. It talks to the gateway's S3 as the
subnet reaches it (path-style, plain HTTP) and takes its credentials only from the instance
profile, through the metadata service (``IAMInstanceCredentialsProvider``): no key is written in
Spark's configuration, so the cluster's ``JobFlowRole`` decides what a job may touch. A
cluster's own ``spark-defaults`` configuration is applied after these and may change them.
"""

from __future__ import annotations

S3A = "org.apache.hadoop.fs.s3a.S3AFileSystem"


def spark_defaults(endpoint: str) -> dict[str, str]:
    """``spark.hadoop.*`` settings for S3 at ``endpoint`` (``http://host:port``)."""
    return {
        "spark.hadoop.fs.s3.impl": S3A,
        "spark.hadoop.fs.s3a.impl": S3A,
        "spark.hadoop.fs.s3n.impl": S3A,
        "spark.hadoop.fs.AbstractFileSystem.s3.impl": "org.apache.hadoop.fs.s3a.S3A",
        "spark.hadoop.fs.AbstractFileSystem.s3a.impl": "org.apache.hadoop.fs.s3a.S3A",
        "spark.hadoop.fs.s3a.endpoint": endpoint,
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
        "spark.hadoop.fs.s3a.aws.credentials.provider": (
            "org.apache.hadoop.fs.s3a.auth.IAMInstanceCredentialsProvider"
        ),
    }


def environment(endpoint: str, metadata_endpoint: str, region: str) -> dict[str, str]:
    """What every process on a node inherits: where the metadata service and the AWS endpoint
    are (the AWS SDK for Java v1 and botocore read both names), and the region. No keys."""
    return {
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": metadata_endpoint,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
    }
