"""Availability Zones: ``<region>a``, ``b`` and ``c``, each with a zone id, as AWS lists them.

An AZ can be marked failed by an operator (to rehearse an outage); it then shows as ``impaired``.
"""

from __future__ import annotations

from dataclasses import dataclass

ZONE_LETTERS = ("a", "b", "c")

_REGION_ABBREVIATIONS = {
    "us-east-1": "use1",
    "us-east-2": "use2",
    "us-west-1": "usw1",
    "us-west-2": "usw2",
    "eu-west-1": "euw1",
    "eu-central-1": "euc1",
}


@dataclass(frozen=True)
class Zone:
    name: str
    zone_id: str
    region: str


def zones(region: str) -> list[Zone]:
    abbreviation = _REGION_ABBREVIATIONS.get(region, region.replace("-", ""))
    return [
        Zone(f"{region}{letter}", f"{abbreviation}-az{i}", region)
        for i, letter in enumerate(ZONE_LETTERS, start=1)
    ]


def zone_by_name(region: str) -> dict[str, Zone]:
    return {z.name: z for z in zones(region)}


def zone_by_id(region: str) -> dict[str, Zone]:
    return {z.zone_id: z for z in zones(region)}
