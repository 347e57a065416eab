"""Resource ids and ARNs in AWS's formats, and the Studio hosts and URLs built from them.

Studio ids are ``es-`` and 25 upper-case alphanumerics, as EMR issues them. A Studio's URL is
``http://<studio id>.<studio domain>:<port>``; browsers lower-case a host name, so a Studio
host arrives as ``es-<25 lower-case>.<domain>`` and its id is that label upper-cased again. This
module is the one place that knows these forms: the routes match hosts and paths with its
patterns, and sign-in and the proxy read ids back with its parsers.
"""

from __future__ import annotations

import re
import secrets
import string

_UPPER_ALNUM = string.ascii_uppercase + string.digits

STUDIO_ID = r"es-[A-Z0-9]{25}"
"""A Studio id, as issued (a regular expression, for URL paths)."""
STUDIO_PATH = rf"/studios/(?P<studio_id>{STUDIO_ID})"
"""The path form's prefix, ``/studios/<studio id>``, the id in group ``studio_id``."""
EDITOR_ID = r"e-[A-Z0-9]{25}"
"""A Workspace (editor) id, as issued (a regular expression, for URL paths)."""
_STUDIO_LABEL = r"es-[a-z0-9]{25}"  # a Studio id as a host name's first label
_STUDIO_ID_ANY_CASE = re.compile(r"es-[A-Za-z0-9]{25}")  # as a user may type it into a link
_STUDIO_HOST = re.compile(rf"({_STUDIO_LABEL})\.(.+)")


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


def studio_arn(region: str, account: str, studio_id: str) -> str:
    return arn("elasticmapreduce", region, account, f"studio/{studio_id}")


def editor_arn(region: str, account: str, editor_id: str) -> str:
    return arn("elasticmapreduce", region, account, f"editor/{editor_id}")


# --- Studio ids, hosts and URLs -----------------------------------------------------------------


def studio_id_in(value: str) -> str | None:
    """The Studio id ``value`` spells in any case, as issued, or None when it spells none."""
    return studio_of_host(value) if _STUDIO_ID_ANY_CASE.fullmatch(value) else None


def studio_domain(domain: str) -> str:
    """The Studio domain setting as host names carry it: lower-case, no dots at the ends."""
    return domain.lower().strip(".")


def studio_host(host: str, domain: str) -> str | None:
    """The id of the Studio whose host ``host`` (a host name, no port) is, or None."""
    found = _STUDIO_HOST.fullmatch(host.lower())
    if found is None or found.group(2) != studio_domain(domain):
        return None
    return studio_of_host(found.group(1))


def studio_of_host(host_name: str) -> str:
    """The Studio id of a host name a Studio host pattern matched (only its first label counts;
    browsers lower-case it, Studio ids are upper-case)."""
    return "es-" + host_name[3:28].upper()


def studio_host_pattern(domain: str) -> str:
    """A regular expression (for Tornado's ``HostMatches``) of every Studio host of ``domain``."""
    return rf"{_STUDIO_LABEL}\.{re.escape(studio_domain(domain))}"


def other_host_pattern(domain: str) -> str:
    """A regular expression of every host that is not a Studio's (the console's, the IdP's)."""
    return rf"(?!{studio_host_pattern(domain)}$).*"
