"""What sign-in, the gate and the Studio pages ask of the IAM policy engine."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from emustudio.context import Principal
from emustudio.iam import Decision


class Permissions(Protocol):
    """Decides a principal's action on a resource as an API call would be decided
    (:meth:`emustudio.authz.PolicyAuthorizer.allowed` implements it)."""

    async def allowed(
        self,
        principal: Principal,
        action: str,
        resource: str,
        extra_context: Mapping[str, object] | None = None,
        *,
        source_ip: str = "127.0.0.1",
    ) -> Decision: ...
