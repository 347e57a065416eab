"""The base of every Studio page handler: which Studio, who is signed in, and HTML errors.

A Studio is reached two ways (``form``): its own host ``<es-id>.<studio domain>`` (``host``),
or ``/studios/<es-id>/`` on any host (``path``). `StudioHandler.prefix` is what the page's
links start with in either form. Every POST is a form: Tornado checks its XSRF token (the
``xsrf_cookies`` setting, enforced here too should the setting be off) and the handler refuses
it unless it came from this very origin, since every Studio host is the *same site* as the
others and a sibling could otherwise toss a cookie and post.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

from tornado import web

from emustudio import ids
from emustudio.auth.sessions import HOST_FORM, StudioSession, session_id_from
from emustudio.aws.errors import AwsError
from emustudio.context import Principal
from emustudio.origin import cross_origin_error
from emustudio.web.site import StudioInfo, StudioSite, when

_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_XSRF_MESSAGE = (
    "This form has expired or did not come from this Studio's page. Reload the page and try again."
)


class PageHandler(web.RequestHandler):
    """Any HTML page of the gateway: its security headers, who is asking, how a page is
    rendered (:meth:`page`) and how an error is shown (:meth:`write_error`: one readable page
    for every family of pages, an `AwsError` in the API's words)."""

    security_headers: Mapping[str, str] = _SECURITY_HEADERS
    # What an error page says, when a handler set it before raising HTTPError.
    error_message: str | None = None
    # What an error page says of a form refused for its XSRF token or origin.
    forgery_message: str = _XSRF_MESSAGE

    def set_default_headers(self) -> None:
        for name, value in self.security_headers.items():
            self.set_header(name, value)

    @property
    def source_ip(self) -> str:
        return self.request.remote_ip or "127.0.0.1"

    @property
    def user_agent(self) -> str:
        return self.request.headers.get("User-Agent", "")

    def page_values(self) -> dict[str, Any]:
        """What every template reads (base.html's header), before the page's own values."""
        return {"studio": None, "prefix": "", "user": None, "error": None, "when": when}

    def page(self, template: str, status: int = 200, **args: Any) -> None:
        self.set_status(status)
        self.render(template, **{**self.page_values(), **args})

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(value, AwsError):
            return  # an answer (AccessDenied...), not a crash: it is shown, not logged
        super().log_exception(typ, value, tb)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = self.error_message
        if isinstance(exc, AwsError):
            message = f"{exc.code}: {exc.message}"
            status_code = page_status(exc)
            self.set_status(status_code)
        elif message is None and is_forgery_refusal(exc):
            message = self.forgery_message
        if message is None:
            message = self._reason if status_code < 500 else "Something went wrong on our side."
        self.clear_header("Content-Length")
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        try:
            self.page(
                "error.html",
                status_code,
                error=message,
                status_code=status_code,
                reason=self._reason,
            )
        except Exception:  # a broken template must not hide the error itself
            self.finish(f"<!DOCTYPE html><p>{status_code}: {html.escape(message)}</p>")

    def check_form_origin(self) -> None:
        """A POST is a form of this very origin, with its XSRF token (Tornado checks the token
        when the ``xsrf_cookies`` setting is on; it is checked here should it be off)."""
        if self.request.method == "POST":
            if not self.settings.get("xsrf_cookies"):
                self.check_xsrf_cookie()
            if error := cross_origin_error(self.request):
                raise web.HTTPError(403, "refused cross-origin form: %s", error)


class StudioHandler(PageHandler):
    site: StudioSite
    form: str
    studio: StudioInfo | None = None
    user_session: StudioSession | None = None

    def initialize(self, site: StudioSite, form: str) -> None:
        self.site = site
        self.form = form

    # --- which Studio, who --------------------------------------------------------------------

    @property
    def studio_id(self) -> str:
        if self.form == HOST_FORM:
            return ids.studio_of_host(self.request.host_name)
        return str(self.path_kwargs["studio_id"])

    @property
    def prefix(self) -> str:
        return "" if self.form == HOST_FORM else f"/studios/{self.studio_id}"

    async def prepare(self) -> None:
        self.check_form_origin()
        self.studio = await self.site.studio(self.studio_id)
        if self.studio is None:
            self.error_message = f"There is no EMR Studio {self.studio_id} in {self.site.region}."
            raise web.HTTPError(404)
        session_id = session_id_from(self, max_age_days=self.site.session_hours / 24 + 1)
        self.user_session = await self.site.sessions.get(session_id, self.studio.id)

    @property
    def user(self) -> Principal | None:
        return self.user_session.principal if self.user_session is not None else None

    def require_user(self) -> Principal:
        """The signed-in user; else off to the sign-in page (a GET) or 403."""
        if self.user is not None:
            return self.user
        if self.request.method in ("GET", "HEAD"):
            self.redirect(self.signin_url(self.request.uri or "/"))
            raise web.Finish()
        self.error_message = "Your session has ended. Sign in again."
        raise web.HTTPError(403)

    def signin_url(self, next_url: str | None = None) -> str:
        query = f"?{urlencode({'next': next_url})}" if next_url else ""
        return f"{self.prefix}/signin{query}"

    def safe_next(self, value: str | None) -> str:
        """Where to go after sign-in: a path of this Studio, never another site."""
        home = f"{self.prefix}/"
        if not value or not value.startswith(home) or value.startswith("//") or "\\" in value:
            return home
        return value

    # --- calling the EMR service as the user --------------------------------------------------

    async def call(
        self, operation: str, params: dict[str, Any], *, record: bool = True
    ) -> dict[str, Any]:
        user = self.require_user()
        return await self.site.console.call(
            user,
            operation,
            params,
            source_ip=self.source_ip,
            user_agent=self.user_agent,
            record=record,
        )

    # --- rendering ----------------------------------------------------------------------------

    def page_args(self, **extra: Any) -> dict[str, Any]:
        args: dict[str, Any] = {
            "studio": self.studio,
            "studio_id": self.studio_id,
            "prefix": self.prefix,
            "user": self.user,
            "when": when,
            "error": None,
        }
        args.update(extra)
        return args

    def page_values(self) -> dict[str, Any]:
        return self.page_args()


def page_status(exc: AwsError) -> int:
    """The HTTP status of a page showing ``exc``."""
    if "AccessDenied" in exc.code:
        return 403  # EMR answers 400; a page says what it is
    return exc.status if 400 <= exc.status < 600 else 500


def is_forgery_refusal(exc: BaseException | None) -> bool:
    """Whether ``exc`` is the refusal of a form without its XSRF token or from another origin."""
    text = exc.log_message if isinstance(exc, web.HTTPError) else None
    return bool(text) and ("_xsrf" in str(text) or "cross-origin" in str(text))


class NotFoundHandler(StudioHandler):
    """Any other path under a Studio: a readable 404."""

    async def get(self, *args: Any, **kwargs: Any) -> None:
        self.error_message = "There is no such page in this Studio."
        raise web.HTTPError(404)

    post = get
