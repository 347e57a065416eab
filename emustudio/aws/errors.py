"""The one error family of the AWS wire.

Every service raises ``AwsError`` (or a subclass); one place, the protocol serializer, turns it
into the wire form of the service's protocol. ``code`` is the AWS error code, ``message`` the
text AWS would send, ``status`` the HTTP status and ``extra`` any modelled members that travel
next to the message (EMR's ``ErrorCode``, for instance).
"""

from __future__ import annotations

from typing import Any


class AwsError(Exception):
    code: str = "InternalFailure"
    status: int = 400
    sender_fault: bool = True

    def __init__(
        self,
        message: str = "",
        *,
        code: str | None = None,
        status: int | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.extra: dict[str, Any] = extra

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r})"


class InternalFailure(AwsError):
    code = "InternalFailure"
    status = 500
    sender_fault = False


class NotImplementedOperation(AwsError):
    """An operation present in the model that emustudio does not implement (yet)."""

    code = "NotImplemented"
    status = 501
    sender_fault = False


class UnknownOperation(AwsError):
    """The target/action names no operation of the service. Protocols rename the code."""

    code = "UnknownOperationException"


class SerializationError(AwsError):
    """The body cannot be read as the operation's input shape (bad JSON, wrong types)."""

    code = "SerializationException"


class ValidationFailed(AwsError):
    """The input violates the operation's input shape constraints (protocols rename the code)."""

    code = "ValidationException"


class RequestTooLarge(AwsError):
    code = "RequestEntityTooLarge"
    status = 413
