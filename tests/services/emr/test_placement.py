"""Workspace placement: a restart moves a Workspace to another AZ, or another subnet."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emustudio.services.emr.placement import Candidate, NoHealthySubnet, choose_subnet

A1, A2 = Candidate("subnet-a1", "us-east-1a"), Candidate("subnet-a2", "us-east-1a")
B1, C1 = Candidate("subnet-b1", "us-east-1b"), Candidate("subnet-c1", "us-east-1c")


def test_first_start_takes_the_first_subnet() -> None:
    assert choose_subnet([A1, B1], previous=None) == A1


def test_restart_moves_to_another_zone() -> None:
    assert choose_subnet([A1, B1, C1], previous=A1) == B1
    assert choose_subnet([A1, B1], previous=B1) == A1


def test_one_zone_moves_to_another_subnet() -> None:
    assert choose_subnet([A1, A2], previous=A1) == A2


def test_a_single_subnet_comes_back() -> None:
    assert choose_subnet([A1], previous=A1) == A1


def test_failed_zones_are_avoided_even_on_first_start() -> None:
    assert choose_subnet([A1, B1], previous=None, failed_zones=frozenset({"us-east-1a"})) == B1
    with pytest.raises(NoHealthySubnet, match="us-east-1a"):
        choose_subnet([A1, A2], previous=None, failed_zones=frozenset({"us-east-1a"}))


zones = st.sampled_from(["us-east-1a", "us-east-1b", "us-east-1c"])
candidates = st.lists(
    st.builds(
        Candidate, st.text("abcdef0123", min_size=1, max_size=4).map("subnet-".__add__), zones
    ),
    min_size=1,
    max_size=5,
    unique_by=lambda c: c.subnet_id,
)


@given(candidates, st.data())
def test_a_restart_changes_zone_whenever_the_studio_has_another_healthy_one(
    subnets: list[Candidate], data: st.DataObject
) -> None:
    previous = data.draw(st.sampled_from(subnets))
    failed = frozenset(data.draw(st.sets(zones, max_size=2)))
    healthy = [c for c in subnets if c.availability_zone not in failed]
    if not healthy:
        with pytest.raises(NoHealthySubnet):
            choose_subnet(subnets, previous=previous, failed_zones=failed)
        return
    chosen = choose_subnet(subnets, previous=previous, failed_zones=failed)
    assert chosen in healthy
    if any(c.availability_zone != previous.availability_zone for c in healthy):
        assert chosen.availability_zone != previous.availability_zone
    elif any(c.subnet_id != previous.subnet_id for c in healthy):
        assert chosen.subnet_id != previous.subnet_id
