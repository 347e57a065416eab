"""Release labels, their applications and Spark, and instance types: data, not code."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).with_name("data") / "releases.json"


@dataclass(frozen=True)
class Release:
    label: str
    spark: str
    applications: dict[str, str]
    studio: bool


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpu: int
    memory_mib: int


@cache
def _data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DATA.read_text())
    return data


def releases() -> list[Release]:
    """Every release, newest first."""
    items = [
        Release(label, r["spark"], dict(r["applications"]), bool(r.get("studio")))
        for label, r in _data()["releases"].items()
    ]
    return sorted(items, key=lambda r: _version_key(r.label), reverse=True)


def release(label: str) -> Release | None:
    return next((r for r in releases() if r.label == label), None)


def instance_type(name: str) -> InstanceType | None:
    entry = _data()["instance_types"].get(name)
    return None if entry is None else InstanceType(name, entry["vcpu"], entry["memory_mib"])


def instance_types() -> list[InstanceType]:
    return [t for name in sorted(_data()["instance_types"]) if (t := instance_type(name))]


def _version_key(label: str) -> tuple[int, ...]:
    digits = label.rsplit("-", 1)[-1]
    return tuple(int(p) for p in digits.split(".") if p.isdigit())
