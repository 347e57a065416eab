"""Signing in to a Studio: one fixed sequence of overridable stages.

:meth:`Authenticator.sign_in` is final (a subclass that defines it fails at class creation)
and runs, in order::

    authenticate -> normalize -> blocked -> allowed -> post_auth

* ``authenticate`` turns the submitted form into a principal, or None for wrong credentials;
  it may refuse outright (`SignInRefused`) what is no credential of this kind;
* ``normalize`` may rewrite the principal (federation maps names here);
* ``blocked`` gives a reason to refuse a principal that authenticated (root, say);
* ``allowed`` decides whether it may open *this* Studio, and says what permission is missing;
* ``post_auth`` runs once all passed (records, hooks).

:class:`ConsoleSignIn` is the console's (`emustudio.web.console_pages`): an IAM user's console
password, which opens no Studio. :class:`IamUserSignIn` is the IAM-mode Studio's: the same
password check, then ``elasticmapreduce:CreateStudioPresignedUrl`` on the Studio's ARN, evaluated
as that user by the policy engine, as AWS does when the console opens a Studio. SAML federation
and IAM Identity Center plug into the same stages.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from emustudio.auth.permissions import Permissions
from emustudio.context import Principal
from emustudio.iam import deny_message

OPEN_STUDIO = "elasticmapreduce:CreateStudioPresignedUrl"
ROOT_REFUSED = (
    "The AWS account root user signs in to the AWS Management Console, not to an EMR Studio."
    " Sign in as an IAM user whose policies allow " + OPEN_STUDIO + " on this Studio."
)
CONSOLE_ROOT_REFUSED = (
    "This console signs in IAM users only: the account root user has access keys here, not a"
    " console password. Sign in as an IAM user."
)
WRONG_CREDENTIALS = "Your authentication information is incorrect. Please try again."


class SignInRefused(Exception):
    """Why a sign-in failed, in words for the user. ``missing`` names a missing permission."""

    def __init__(self, message: str, *, status: int = 403, missing: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.missing = missing


@dataclass(frozen=True)
class SignInAttempt:
    """A submitted sign-in form; the Studio it opens (none, empty, for the console's)."""

    studio_id: str = ""
    studio_arn: str = ""
    form: Mapping[str, str] = field(default_factory=dict)
    source_ip: str = "127.0.0.1"
    user_agent: str = ""


class Authenticator(ABC):
    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "sign_in" in vars(cls):
            raise TypeError(f"{cls.__name__} may not override sign_in(); override its stages")

    async def sign_in(self, attempt: SignInAttempt) -> Principal:
        """The signed-in principal, or `SignInRefused`."""
        principal = await self.authenticate(attempt)
        if principal is None:
            raise SignInRefused(WRONG_CREDENTIALS, status=401)
        principal = await self.normalize(attempt, principal)
        reason = await self.blocked(attempt, principal)
        if reason is not None:
            raise SignInRefused(reason)
        await self.allowed(attempt, principal)
        await self.post_auth(attempt, principal)
        return principal

    @abstractmethod
    async def authenticate(self, attempt: SignInAttempt) -> Principal | None:
        """The principal the submitted credentials prove, None if they prove nothing."""

    async def normalize(self, attempt: SignInAttempt, principal: Principal) -> Principal:
        return principal

    async def blocked(self, attempt: SignInAttempt, principal: Principal) -> str | None:
        return ROOT_REFUSED if principal.is_root else None

    @abstractmethod
    async def allowed(self, attempt: SignInAttempt, principal: Principal) -> None:
        """Raise `SignInRefused` unless ``principal`` may open the Studio."""

    async def post_auth(self, attempt: SignInAttempt, principal: Principal) -> None:
        return None


class PasswordChecker(Protocol):
    async def check_password(self, user_name: str, password: str) -> Principal | None: ...


class SignInEvents(Protocol):
    """Where sign-in outcomes are recorded: the password check (CloudTrail's ``ConsoleLogin``)
    and the opening of the Studio (``CreateStudioPresignedUrl``, refused or not)."""

    async def console_login(
        self, attempt: SignInAttempt, user_name: str, principal: Principal | None
    ) -> None: ...

    async def studio_opened(
        self, attempt: SignInAttempt, principal: Principal, error: str | None
    ) -> None: ...


class ConsoleSignIn(Authenticator):
    """An IAM user's console password (the console's sign-in, and the first half of a Studio's).

    The form fields are ``username``, ``password``, ``account_type`` (``iam``, or ``root``,
    which is refused) and, on the console's form, ``account``: the account id, which must be
    this gateway's (a wrong one is wrong credentials, as AWS says for any of the three).
    Each password check is recorded (CloudTrail's ``ConsoleLogin``).
    """

    root_refused = CONSOLE_ROOT_REFUSED

    def __init__(
        self,
        passwords: PasswordChecker,
        *,
        account_id: str | None = None,
        root_access_key_id: str | None = None,
        events: SignInEvents | None = None,
    ) -> None:
        self.passwords = passwords
        self.account_id = account_id
        self.root_access_key_id = root_access_key_id
        self.events = events

    async def authenticate(self, attempt: SignInAttempt) -> Principal | None:
        form = attempt.form
        user_name = form.get("username", "").strip()
        if form.get("account_type") == "root" or (
            self.root_access_key_id and user_name == self.root_access_key_id
        ):
            raise SignInRefused(self.root_refused)
        password = form.get("password", "")
        account = form.get("account")
        if account is not None and not account.strip():
            raise SignInRefused("Enter your account ID, IAM user name and password.", status=400)
        if not user_name or not password:
            raise SignInRefused("Enter your IAM user name and password.", status=400)
        if account is not None and self.account_id and account.strip() != self.account_id:
            return None  # another account's user: nothing of this account to record
        principal = await self.passwords.check_password(user_name, password)
        if self.events is not None:
            await self.events.console_login(attempt, user_name, principal)
        return principal

    async def blocked(self, attempt: SignInAttempt, principal: Principal) -> str | None:
        return self.root_refused if principal.is_root else None

    async def allowed(self, attempt: SignInAttempt, principal: Principal) -> None:
        """Signing in to the console needs no permission; opening a Studio from it does."""


class IamUserSignIn(ConsoleSignIn):
    """The IAM-mode Studio's: the console's password check, then
    ``elasticmapreduce:CreateStudioPresignedUrl`` on the Studio (``attempt.studio_arn``)."""

    root_refused = ROOT_REFUSED

    def __init__(
        self,
        passwords: PasswordChecker,
        permissions: Permissions,
        *,
        root_access_key_id: str | None = None,
        events: SignInEvents | None = None,
    ) -> None:
        super().__init__(passwords, root_access_key_id=root_access_key_id, events=events)
        self.permissions = permissions

    async def allowed(self, attempt: SignInAttempt, principal: Principal) -> None:
        decision = await self.permissions.allowed(
            principal, OPEN_STUDIO, attempt.studio_arn, source_ip=attempt.source_ip
        )
        if not decision.allowed:
            message = deny_message(principal.arn, OPEN_STUDIO, attempt.studio_arn, decision)
            if self.events is not None:
                await self.events.studio_opened(attempt, principal, message)
            raise SignInRefused(
                f"{principal.name} may not open this Studio: {message}.",
                missing=OPEN_STUDIO,
            )

    async def post_auth(self, attempt: SignInAttempt, principal: Principal) -> None:
        if self.events is not None:
            await self.events.studio_opened(attempt, principal, None)
