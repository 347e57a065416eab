"""Service models: botocore's, plus emustudio's supplemental models shipped as JSON data.

``emustudio/aws/data`` is laid out like botocore's own data directory
(``<service>/<api-version>/service-2.json``), so the same folder works for boto3 through
``AWS_DATA_PATH`` and for the gateway through :func:`load_service`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from botocore.loaders import Loader
from botocore.model import OperationModel, ServiceModel

DATA_PATH = Path(__file__).parent / "data"

# The services the gateway answers, by botocore service name.
SERVICES = (
    "emr", "ec2", "iam", "sts", "cloudtrail", "identitystore", "sso-admin", "s3", "emustudio",
)  # fmt: skip


@cache
def _loader() -> Loader:
    return Loader(extra_search_paths=[str(DATA_PATH)])


# Supplemental models whose operations the gateway serves as part of another service: the
# Workspace ("editor") operations share EMR's signing name and target prefix, so a request for
# ``ElasticMapReduce.CreateEditor`` reaches the EMR service like any EMR operation.
SUPPLEMENTS: dict[str, tuple[str, ...]] = {"emr": ("emr-studio",)}


@cache
def load_service(name: str) -> ServiceModel:
    """The model of ``name`` as the gateway serves it: botocore's, plus its supplements."""
    model = dict(_loader().load_service_model(name, "service-2"))
    for extra_name in SUPPLEMENTS.get(name, ()):
        extra = _loader().load_service_model(extra_name, "service-2")
        clash = set(extra["operations"]) & set(model["operations"])
        if clash:
            raise ValueError(f"{extra_name} redefines {name} operations: {sorted(clash)}")
        model["operations"] = {**model["operations"], **extra["operations"]}
        shapes = dict(model["shapes"])
        for shape_name, shape in extra["shapes"].items():
            shapes.setdefault(shape_name, shape)
        model["shapes"] = shapes
    return ServiceModel(model, service_name=name)


def operation(service: str, name: str) -> OperationModel:
    return load_service(service).operation_model(name)


@cache
def service_by_signing_name() -> dict[str, ServiceModel]:
    """Map SigV4 signing names (``elasticmapreduce``, ``ec2``...) to models."""
    return {load_service(s).signing_name: load_service(s) for s in SERVICES}


@cache
def service_by_target_prefix() -> dict[str, ServiceModel]:
    """Map JSON ``X-Amz-Target`` prefixes (``ElasticMapReduce``) to models."""
    out: dict[str, ServiceModel] = {}
    for s in SERVICES:
        model = load_service(s)
        prefix = model.metadata.get("targetPrefix")
        if prefix:
            out[prefix] = model
    return out
