"""The base of every emulated service.

A service declares its operations with :func:`operation`; the gateway dispatches by the model's
operation name, so a method is reachable only when it says which operation it implements. An
operation of the model without a method answers ``NotImplemented`` (an AWS-shaped error naming
the operation), never a 500 from a missing attribute.

An operation's method holds only what it does. What it is authorized against (the IAM action,
the resource ARNs, request tags, roles passed) is its entry in ``emustudio/authz/catalog.json``;
the resources its CloudTrail record names are its service's entry in
``emustudio.audit.RESOURCE_MEMBERS``. A new operation adds a line to each (docs/design.md, "Where
an operation's rules live").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar, Protocol, TypeVar

from emustudio.aws.errors import AwsError, NotImplementedOperation
from emustudio.context import Principal, RequestContext, is_read_only

Params = dict[str, Any]
Result = dict[str, Any]
Handler = Callable[[Any, RequestContext, Params], Awaitable[Result]]
H = TypeVar("H", bound=Handler)


class InProcessCall(Protocol):
    """``Gateway.call``: an operation run as ``principal``, authorized and recorded."""

    async def __call__(
        self,
        principal: Principal,
        service: str,
        operation: str,
        params: Mapping[str, Any],
        *,
        user_agent: str = "",
    ) -> dict[str, Any]: ...


def operation(name: str) -> Callable[[H], H]:
    """Mark a method as the implementation of the model operation ``name``."""

    def mark(fn: H) -> H:
        fn.__aws_operation__ = name  # type: ignore[attr-defined]
        return fn

    return mark


class WriteCount:
    """How many operations that may change stored state have run in this process.

    A cache of decisions taken from the store (the Workspace gate's admissions) notes the count
    when it decides, and decides again once the count moved: any call that is not a read
    (``Describe``, ``Get``, ``List``...) may have changed a policy, a user, a group, a tag or a
    session mapping. Reads are far more frequent than writes, so this costs little. Writes of
    S3 objects (``Service.unwatched_writes``) change nothing such a cache reads and leave it.
    """

    def __init__(self) -> None:
        self.value = 0

    def bump(self) -> None:
        self.value += 1


WRITES = WriteCount()


class Service:
    """``name`` is the botocore service name (``emr``, ``ec2``...)."""

    name: ClassVar[str]
    operations: ClassVar[dict[str, str]]
    # Writes that change nothing a decision is made from (S3's objects), so they leave WRITES.
    unwatched_writes: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                op = getattr(value, "__aws_operation__", None)
                if op is not None:
                    found[op] = attr
        cls.operations = found

    @classmethod
    def model_operations(cls) -> frozenset[str]:
        """The operations of the model this service answers otherwise than ``NotImplemented``
        (the gateway keeps their shapes in memory, aws/spec.py's ``serve_only``)."""
        return frozenset(cls.operations)

    async def refused(self, ctx: RequestContext, refusal: AwsError) -> AwsError:
        """The answer to a call the authorizer refused: the refusal itself, unless the service
        tells something else first (S3: a missing bucket, to an anonymous caller)."""
        return refusal

    async def dispatch(self, ctx: RequestContext) -> Result:
        attr = self.operations.get(ctx.operation_name)
        if attr is None:
            raise NotImplementedOperation(
                f"emustudio does not implement {ctx.operation_name} of {self.name} yet."
            )
        handler: Handler = getattr(self, attr)
        try:
            return await handler(ctx, ctx.params)  # type: ignore[call-arg,arg-type]
        finally:
            name = ctx.operation_name
            if not is_read_only(name) and name not in self.unwatched_writes:
                WRITES.bump()  # a failed write may have changed something too
