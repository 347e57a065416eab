"""Studio ids, hosts and paths: the forms every route and parser takes from ``ids``."""

from __future__ import annotations

import re

from emustudio import ids

STUDIO = "es-" + "A1" * 12 + "B"


def test_a_studio_id_is_read_back_in_any_case() -> None:
    assert re.fullmatch(ids.STUDIO_ID, ids.studio_id())
    assert ids.studio_id_in(STUDIO.lower()) == STUDIO
    assert ids.studio_id_in(STUDIO) == STUDIO
    assert ids.studio_id_in(STUDIO[:-1]) is None
    assert ids.studio_id_in(STUDIO + "/x") is None


def test_a_studio_host_names_its_studio_only_under_the_studio_domain() -> None:
    host = f"{STUDIO.lower()}.emrstudio.localhost"
    assert ids.studio_host(host, "EMRStudio.localhost.") == STUDIO
    assert ids.studio_host(host.upper(), "emrstudio.localhost") == STUDIO
    assert ids.studio_host(f"{STUDIO.lower()}.evil.example", "emrstudio.localhost") is None
    assert ids.studio_host("console.emrstudio.localhost", "emrstudio.localhost") is None
    assert ids.studio_of_host(host) == STUDIO


def test_host_patterns_split_studio_hosts_from_the_rest() -> None:
    studio = re.compile(ids.studio_host_pattern("emrstudio.localhost") + "$")
    other = re.compile(ids.other_host_pattern("emrstudio.localhost") + "$")
    host = f"{STUDIO.lower()}.emrstudio.localhost"
    for name, is_studio in [(host, True), ("localhost", False), (host + ".evil", False)]:
        assert bool(studio.match(name)) is is_studio
        assert bool(other.match(name)) is not is_studio


def test_the_path_form_carries_the_id_in_its_group() -> None:
    found = re.match(ids.STUDIO_PATH, f"/studios/{STUDIO}/signin")
    assert found and found.group("studio_id") == STUDIO
    assert re.match(ids.STUDIO_PATH, f"/studios/{STUDIO.lower()}/signin") is None
    assert ids.studio_arn("us-east-1", "000000000000", STUDIO) == (
        f"arn:aws:elasticmapreduce:us-east-1:000000000000:studio/{STUDIO}"
    )
