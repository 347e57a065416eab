"""Service models: botocore's, plus emustudio's supplemental models shipped as JSON data.

``emustudio/aws/data`` is laid out like botocore's own data directory
(``<service>/<api-version>/service-2.json``), so the same folder works for boto3 through
``AWS_DATA_PATH`` and for the gateway through :func:`load_service`.
"""

from __future__ import annotations

import contextlib
import ctypes
import gzip
import json
import os
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from botocore.loaders import Loader
from botocore.model import OperationModel, ServiceModel

DATA_PATH = Path(__file__).parent / "data"

# The services the gateway answers, by botocore service name.
SERVICES = (
    "emr", "ec2", "iam", "sts", "cloudtrail", "identitystore", "sso-admin", "s3", "emustudio",
)  # fmt: skip


# Each service by its SigV4 signing name and its JSON protocol's X-Amz-Target prefix (the models'
# metadata, written out so that routing a request loads only its own service's model; a test
# checks them against the models).
SIGNING_NAMES = {
    "elasticmapreduce": "emr", "ec2": "ec2", "iam": "iam", "sts": "sts", "cloudtrail": "cloudtrail",
    "identitystore": "identitystore", "sso": "sso-admin", "s3": "s3", "emustudio": "emustudio",
}  # fmt: skip
TARGET_PREFIXES = {
    "ElasticMapReduce": "emr",
    "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101": "cloudtrail",
    "AWSIdentityStore": "identitystore",
    "SWBExternalService": "sso-admin",
    "EmuStudio": "emustudio",
}

# What the gateway never reads of a model: the documentation (most of its weight) and examples.
_UNUSED_KEYS = ("documentation", "documentationUrl", "examples")


def _lean(obj: dict[str, Any]) -> dict[str, Any]:
    for key in _UNUSED_KEYS:
        if key in obj and not isinstance(obj[key], dict):  # never a shape or member so named
            del obj[key]
    return obj


_SUFFIXES = (".json", ".json.gz")


class _LeanFileLoader:
    """botocore's JSONFileLoader, but plain dicts (botocore's OrderedDicts weigh about twice as
    much) without the documentation: EC2's model takes 8 MB instead of 16."""

    def exists(self, file_path: str) -> bool:
        return any(os.path.isfile(file_path + suffix) for suffix in _SUFFIXES)

    def load_file(self, file_path: str) -> Any:
        for suffix in _SUFFIXES:
            full = Path(file_path + suffix)
            if full.is_file():
                raw = full.read_bytes()
                text = (gzip.decompress(raw) if suffix.endswith(".gz") else raw).decode("utf-8")
                del raw
                loaded = json.loads(text, object_hook=_lean)
                del text
                _give_back_freed_memory()
                return loaded
        return None


def _give_back_freed_memory() -> None:
    """Hands the heap's free pages back to the system (glibc keeps them otherwise): parsing a
    model frees more than it keeps (its text, the documentation), 7 MB of RSS for them all."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


def _load_model(name: str) -> dict[str, Any]:
    """``name``'s model as a plain dict, botocore's plus its supplements. A loader of its own
    each time: botocore's loader keeps every model it loaded, and the gateway keeps only what
    :func:`load_service` holds."""
    loader = Loader(extra_search_paths=[str(DATA_PATH)], file_loader=_LeanFileLoader())
    model = dict(loader.load_service_model(name, "service-2"))
    for extra_name in SUPPLEMENTS.get(name, ()):
        extra = loader.load_service_model(extra_name, "service-2")
        clash = set(extra["operations"]) & set(model["operations"])
        if clash:
            raise ValueError(f"{extra_name} redefines {name} operations: {sorted(clash)}")
        model["operations"] = {**model["operations"], **extra["operations"]}
        shapes = dict(model["shapes"])
        for shape_name, shape in extra["shapes"].items():
            shapes.setdefault(shape_name, shape)
        model["shapes"] = shapes
    return model


# Supplemental models whose operations the gateway serves as part of another service: the
# Workspace ("editor") operations share EMR's signing name and target prefix, so a request for
# ``ElasticMapReduce.CreateEditor`` reaches the EMR service like any EMR operation.
SUPPLEMENTS: dict[str, tuple[str, ...]] = {"emr": ("emr-studio",)}

# The operations the gateway implements, by service, as the composition tells them before it
# serves (:func:`serve_only`). Such a service's model keeps the shapes of those operations and
# the error shapes only; EC2's whole model is 7 MB of objects, of which the gateway answers 18
# operations of 830.
_served: dict[str, frozenset[str]] = {}


def serve_only(operations: Mapping[str, Iterable[str]]) -> None:
    """Keep, of each service's model loaded from now on, what ``operations`` use. Every other
    operation still parses and answers as before (``NotImplemented`` after its checks): its
    first call loads the rest of the model, as the first call of any operation did before."""
    _served.update((name, frozenset(ops)) for name, ops in operations.items())


class _Shapes(dict[str, Any]):
    """A model's shapes, some of them: a shape not kept loads them all (once)."""

    def __init__(self, kept: dict[str, Any], load_all: Callable[[], dict[str, Any]]) -> None:
        super().__init__(kept)
        self._load_all: Callable[[], dict[str, Any]] | None = load_all

    def __missing__(self, key: str) -> Any:
        if self._load_all is None:
            raise KeyError(key)
        load_all, self._load_all = self._load_all, None
        for name, shape in load_all().items():
            self.setdefault(name, shape)
        return self[key]


def _used_shapes(model: dict[str, Any], operations: Iterable[str]) -> dict[str, Any]:
    """The shapes the ``operations`` reach (input, output, errors, and their members), and
    every error shape (which the serializers look up by code)."""
    shapes = model["shapes"]
    todo: list[str] = [name for name, shape in shapes.items() if shape.get("exception")]
    for op_name in operations:
        op = model["operations"].get(op_name)
        if op is None:
            continue
        todo += [op[key]["shape"] for key in ("input", "output") if key in op]
        todo += [error["shape"] for error in op.get("errors", ())]
    kept: dict[str, Any] = {}
    while todo:
        name = todo.pop()
        if name in kept:
            continue
        shape = kept[name] = shapes[name]
        todo += [shape[key]["shape"] for key in ("member", "key", "value") if key in shape]
        todo += [member["shape"] for member in shape.get("members", {}).values()]
    return kept


@cache
def load_service(name: str) -> ServiceModel:
    """The model of ``name`` as the gateway serves it: botocore's, plus its supplements; only
    the served operations' shapes when :func:`serve_only` named them."""
    model = _load_model(name)
    served = _served.get(name)
    if served is not None:
        model["shapes"] = _Shapes(_used_shapes(model, served), lambda: _load_model(name)["shapes"])
        _give_back_freed_memory()  # the shapes no served operation uses
    return ServiceModel(model, service_name=name)


def operation(service: str, name: str) -> OperationModel:
    return load_service(service).operation_model(name)


def service_by_signing_name(name: str) -> ServiceModel | None:
    """The model of the service whose SigV4 signing name is ``name`` (``elasticmapreduce``...)."""
    service = SIGNING_NAMES.get(name)
    return load_service(service) if service else None


def service_by_target_prefix(prefix: str) -> ServiceModel | None:
    """The model of the JSON service whose ``X-Amz-Target`` prefix is ``prefix``."""
    service = TARGET_PREFIXES.get(prefix)
    return load_service(service) if service else None
