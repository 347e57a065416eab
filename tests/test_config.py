"""Settings read as declared (``config.py``)."""

from __future__ import annotations

import pytest

from emustudio.config import Settings


def test_other_accounts_are_id_key_secret_triples() -> None:
    settings = Settings.load(
        {"EMUSTUDIO_OTHER_ACCOUNTS": "111111111111:AKIAONE:s1, 222222222222:AKIATWO:s:2"}
    )
    assert settings.parsed_other_accounts() == [
        ("111111111111", "AKIAONE", "s1"),
        ("222222222222", "AKIATWO", "s:2"),  # a secret may hold a colon
    ]
    assert Settings.load({}).parsed_other_accounts() == []


@pytest.mark.parametrize(
    "value",
    [
        "12345:AKIA:secret",  # not 12 digits
        "111111111111:AKIA",  # no secret
        "000000000000:AKIAX:secret",  # the gateway's own account
        "111111111111:test:secret",  # the gateway's own root key
    ],
)
def test_a_malformed_other_account_is_refused_with_its_entry(value: str) -> None:
    with pytest.raises(ValueError, match="other_accounts"):
        Settings.load({"EMUSTUDIO_OTHER_ACCOUNTS": value}).parsed_other_accounts()


def test_the_standalone_engine_needs_a_master_url_and_a_network() -> None:
    good = {
        "EMUSTUDIO_CLUSTER_ENGINE": "standalone",
        "EMUSTUDIO_STANDALONE_MASTER_URL": "spark://10.0.5.10:7077",
        "EMUSTUDIO_STANDALONE_NETWORK": "spark-lan",
    }
    assert Settings.load(good).standalone_master() == ("spark://10.0.5.10:7077", "spark-lan")
    for url in ("", "10.0.5.10:7077", "spark://10.0.5.10", "spark://:7077"):
        with pytest.raises(ValueError, match="standalone_master_url"):
            Settings.load(good | {"EMUSTUDIO_STANDALONE_MASTER_URL": url}).standalone_master()
    with pytest.raises(ValueError, match="standalone_network"):
        Settings.load(good | {"EMUSTUDIO_STANDALONE_NETWORK": ""}).standalone_master()
    with pytest.raises(ValueError, match="cluster_engine"):
        Settings.load({"EMUSTUDIO_CLUSTER_ENGINE": "kubernetes"})
