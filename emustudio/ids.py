"""Resource ids and ARNs in AWS's formats."""

from __future__ import annotations

import secrets
import string

_UPPER_ALNUM = string.ascii_uppercase + string.digits


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def studio_id() -> str:
    return "es-" + _random(_UPPER_ALNUM, 25)


def editor_id() -> str:
    return "e-" + _random(_UPPER_ALNUM, 25)


def cluster_id() -> str:
    return "j-" + _random(_UPPER_ALNUM, 13)


def step_id() -> str:
    return "s-" + _random(_UPPER_ALNUM, 13)


def ec2_id(prefix: str) -> str:
    """EC2's long ids: ``vpc-`` + 17 lower-case hex digits."""
    return f"{prefix}-{secrets.token_hex(9)[:17]}"


def arn(service: str, region: str, account: str, resource: str) -> str:
    return f"arn:aws:{service}:{region}:{account}:{resource}"
