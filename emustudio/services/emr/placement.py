"""Where a Workspace runs: one of its Studio's subnets, chosen as EMR Studio does.

A first start takes the Studio's first subnet in a healthy Availability Zone. A restart moves
the Workspace: to another AZ when the Studio has healthy subnets in several, else to another
subnet, else (a single subnet) back where it was. A subnet in a failed AZ is never chosen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class NoHealthySubnet(Exception):
    pass


@dataclass(frozen=True)
class Candidate:
    subnet_id: str
    availability_zone: str


def choose_subnet(
    candidates: Sequence[Candidate],
    *,
    previous: Candidate | None,
    failed_zones: frozenset[str] = frozenset(),
) -> Candidate:
    healthy = [c for c in candidates if c.availability_zone not in failed_zones]
    if not healthy:
        raise NoHealthySubnet(
            "None of the Studio's subnets is in a healthy Availability Zone"
            f" (impaired: {', '.join(sorted(failed_zones))})."
        )
    if previous is None:
        return healthy[0]
    elsewhere = [c for c in healthy if c.availability_zone != previous.availability_zone]
    if elsewhere:
        return elsewhere[0]
    other_subnet = [c for c in healthy if c.subnet_id != previous.subnet_id]
    return other_subnet[0] if other_subnet else healthy[0]
