"""``Principal`` and ``NotPrincipal``: their grammar, and who they name.

Grammar (checked when a trust or resource-based policy is written):

* ``"Principal": "*"`` (everyone), or an object whose keys are ``AWS``, ``Service``,
  ``Federated`` and ``CanonicalUser``, each a string or a non-empty list of strings.
* ``AWS``: ``"*"``, a 12-digit account id, or the ARN of an account (``:root``), a user, a role,
  an assumed-role session or a federated user. AWS: "You cannot use a wildcard to match part of a
  principal name or ARN", so ``*`` and ``?`` appear nowhere else.
* ``Service``: a service principal (``elasticmapreduce.amazonaws.com``).
* ``Federated``: a SAML or OIDC provider ARN, or a web identity provider
  (``cognito-identity.amazonaws.com``, ``accounts.google.com``, ``graph.facebook.com``,
  ``www.amazon.com``).
* Anything else is ``Invalid principal in policy: "AWS":"<value>"``, IAM's message. (Whether a
  named user or role exists is the IAM service's question, not the grammar's.)

Matching. A :class:`Caller` lists the identities a request carries: for an IAM user its ARN; for
a role session the session ARN and then the role's ARN (``aws:PrincipalArn``); and, derived from
those, the account. :func:`match_principal` says *how* a ``Principal`` names the caller, because
AWS's evaluation depends on it (see ``evaluate.py``):

``direct``   the exact ARN of the caller (user, session), or the service/provider/canonical user;
``role``     the role ARN of a role session;
``anyone``   ``"*"`` or ``{"AWS": "*"}``;
``account``  the caller's account (``123456789012`` or ``arn:aws:iam::123456789012:root``), which
             AWS treats as delegating to the account's identity-based policies.

``NotPrincipal`` excludes the caller only when *every* identity it carries is listed (its own ARN,
the role ARN for a session, and the account), as the IAM User Guide's NotPrincipal section
requires ("you must also include the account ARN"); ``{"AWS": "*"}`` excludes everyone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from emustudio.iam.model import PolicyError, PrincipalSpec

MatchKind = Literal["direct", "role", "anyone", "account"]

PRINCIPAL_TYPES = ("AWS", "Service", "Federated", "CanonicalUser")

_PARTITION = r"aws(?:-cn|-us-gov|-iso|-iso-b|-iso-e|-iso-f|-eusc)?"
_ACCOUNT = re.compile(r"\d{12}")
_AWS_PRINCIPAL = re.compile(
    rf"arn:{_PARTITION}:(?:iam::\d{{12}}:(?:root|user/[^*?]+|role/[^*?]+|federated-user/[^*?]+)"
    rf"|sts::\d{{12}}:(?:assumed-role/[^/*?]+/[^*?]+|federated-user/[^*?]+))"
)
_SERVICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*\.(?:amazonaws\.com(?:\.cn)?|amazon\.com)")
_FEDERATED = re.compile(rf"arn:{_PARTITION}:iam::\d{{12}}:(?:saml-provider|oidc-provider)/[^*?]+")
_WEB_IDENTITY = frozenset(
    {
        "cognito-identity.amazonaws.com",
        "www.amazon.com",
        "graph.facebook.com",
        "accounts.google.com",
    }
)
_CANONICAL = re.compile(r"[0-9a-fA-F]{64}")

_SYNTAX = "Syntax errors in policy."


def _invalid(kind: str, value: str) -> PolicyError:
    return PolicyError(f'Invalid principal in policy: "{kind.upper()}":"{value}"')


def _valid(kind: str, value: str) -> bool:
    if kind == "AWS":
        return value == "*" or bool(_ACCOUNT.fullmatch(value) or _AWS_PRINCIPAL.fullmatch(value))
    if kind == "Service":
        return bool(_SERVICE.fullmatch(value))
    if kind == "Federated":
        return value in _WEB_IDENTITY or bool(_FEDERATED.fullmatch(value))
    return bool(_CANONICAL.fullmatch(value))


def parse_principal(element: object, *, check_values: bool = True) -> PrincipalSpec:
    """Parse a ``Principal``/``NotPrincipal`` element; raises :class:`PolicyError`.

    With ``check_values=False`` only the shape is checked (``Syntax errors in policy.``); see
    :func:`check_principal_values` for the rest.
    """
    if element == "*":
        return PrincipalSpec(anyone=True)
    if not isinstance(element, dict) or not element:
        raise PolicyError(_SYNTAX)
    entries: list[tuple[str, str]] = []
    for kind, raw in element.items():
        if kind not in PRINCIPAL_TYPES:
            raise PolicyError(_SYNTAX)
        values = [raw] if isinstance(raw, str) else raw
        if not isinstance(values, list) or not values:
            raise PolicyError(_SYNTAX)
        for value in values:
            if not isinstance(value, str):
                raise PolicyError(_SYNTAX)
            entries.append((kind, value))
    spec = PrincipalSpec(anyone=False, entries=tuple(entries))
    if check_values:
        check_principal_values(spec)
    return spec


def check_principal_values(spec: PrincipalSpec) -> None:
    """Raise ``Invalid principal in policy: ...`` for the first value IAM would refuse."""
    for kind, value in spec.entries:
        if not _valid(kind, value):
            raise _invalid(kind, value)


def account_of(arn: str) -> str | None:
    """The account field of an ARN (``None`` if it has none)."""
    parts = arn.split(":", 5)
    if len(parts) < 6 or not parts[4]:
        return None
    return parts[4]


def root_arn(account: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account}:root"


def _normalize_aws(value: str) -> str:
    return root_arn(value) if _ACCOUNT.fullmatch(value) else value


def role_of_session(arn: str) -> str | None:
    """``arn:aws:sts::1:assumed-role/R/s`` -> ``arn:aws:iam::1:role/R`` (no path), else ``None``."""
    match = re.fullmatch(r"arn:([^:]+):sts::(\d{12}):assumed-role/([^/]+)/.+", arn)
    if match is None:
        return None
    partition, account, role = match.groups()
    return f"arn:{partition}:iam::{account}:role/{role}"


@dataclass(frozen=True)
class Caller:
    """The identities one request carries, for ``Principal`` matching.

    ``aws[0]`` is the caller's exact ARN; later entries are further names it goes by (the role
    ARN of a session). ``service``/``federated``/``canonical_user`` are for services assuming a
    role, SAML/OIDC federation and S3 canonical users.
    """

    aws: tuple[str, ...] = ()
    service: tuple[str, ...] = ()
    federated: tuple[str, ...] = ()
    canonical_user: tuple[str, ...] = ()

    @property
    def account(self) -> str | None:
        return account_of(self.aws[0]) if self.aws else None

    @classmethod
    def from_arn(cls, principal_arn: str, role_arn: str | None = None) -> Caller:
        """The caller of an IAM-signed request; ``role_arn`` is ``aws:PrincipalArn`` if known."""
        names = [principal_arn]
        for extra in (role_arn, role_of_session(principal_arn)):
            if extra and extra not in names:
                names.append(extra)
        return cls(aws=tuple(names))

    @classmethod
    def from_mapping(cls, principal: Mapping[str, Sequence[str]]) -> Caller:
        """From ``{"AWS": [...], "Service": [...], "Federated": [...], "CanonicalUser": [...]}``."""

        def values(kind: str) -> tuple[str, ...]:
            raw = principal.get(kind, ())
            return (raw,) if isinstance(raw, str) else tuple(raw)

        return cls(
            aws=values("AWS"),
            service=values("Service"),
            federated=values("Federated"),
            canonical_user=values("CanonicalUser"),
        )

    def identities(self) -> list[tuple[str, str]]:
        """Every identity, the account root included, as ``(type, normalized value)``."""
        found = [("AWS", name) for name in self.aws]
        account = self.account
        if account is not None and ("AWS", root_arn(account)) not in found:
            found.append(("AWS", root_arn(account)))
        found += [("Service", name.lower()) for name in self.service]
        found += [("Federated", name) for name in self.federated]
        found += [("CanonicalUser", name.lower()) for name in self.canonical_user]
        return found


_STRENGTH: dict[MatchKind, int] = {"direct": 3, "role": 2, "anyone": 1, "account": 0}


def _entry_kind(kind: str, value: str, caller: Caller) -> MatchKind | None:
    if kind == "AWS":
        if value == "*":
            return "anyone"
        value = _normalize_aws(value)
        if caller.aws and value == caller.aws[0]:
            return "direct"
        if value in caller.aws[1:]:
            return "role"
        account = caller.account
        if account is not None and value.endswith(":root") and account_of(value) == account:
            return "account"
        return None
    if kind == "Service":
        return "direct" if value.lower() in (s.lower() for s in caller.service) else None
    if kind == "Federated":
        return "direct" if value in caller.federated else None
    if kind == "CanonicalUser":
        return "direct" if value.lower() in (c.lower() for c in caller.canonical_user) else None
    return None


def match_principal(spec: PrincipalSpec, caller: Caller) -> MatchKind | None:
    """How ``spec`` (a ``Principal`` element) names ``caller``; ``None`` if it does not."""
    if spec.anyone:
        return "anyone"
    best: MatchKind | None = None
    for kind, value in spec.entries:
        found = _entry_kind(kind, value, caller)
        if found is not None and (best is None or _STRENGTH[found] > _STRENGTH[best]):
            best = found
    return best


def _normalized_entries(entries: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for kind, value in entries:
        if kind == "AWS":
            out.add((kind, _normalize_aws(value)))
        elif kind in ("Service", "CanonicalUser"):
            out.add((kind, value.lower()))
        else:
            out.add((kind, value))
    return out


def excluded_by_not_principal(spec: PrincipalSpec, caller: Caller) -> bool:
    """Whether a ``NotPrincipal`` element lists the caller (so the statement skips it)."""
    if spec.anyone or ("AWS", "*") in spec.entries:
        return True
    identities = caller.identities()
    if not identities:
        return False
    listed = _normalized_entries(spec.entries)
    return all(identity in listed for identity in identities)
