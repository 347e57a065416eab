"""Sign-in and sign-out pages of a Studio."""

from __future__ import annotations

from urllib.parse import urlencode

from emustudio.auth.sessions import (
    HOST_FORM,
    clear_session_cookie,
    cookie_path,
    set_session_cookie,
)
from emustudio.auth.signin import SignInAttempt, SignInRefused
from emustudio.web.base import StudioHandler


class SignInHandler(StudioHandler):
    async def get(self, **_: str) -> None:
        next_url = self.safe_next(self.get_argument("next", None))
        if self.user is not None:
            self.redirect(next_url)
            return
        signed_out = self.get_argument("signed_out", None) is not None
        self.render(
            "signin.html",
            **self.page_args(next_url=next_url, username="", missing=None, signed_out=signed_out),
        )

    async def post(self, **_: str) -> None:
        assert self.studio is not None
        next_url = self.safe_next(self.get_argument("next", None))
        form = {
            name: self.get_body_argument(name, "")
            for name in ("username", "password", "account_type")
        }
        attempt = SignInAttempt(
            studio_id=self.studio.id,
            studio_arn=self.studio.arn,
            form=form,
            source_ip=self.source_ip,
            user_agent=self.user_agent,
        )
        try:
            principal = await self.site.signin.sign_in(attempt)
        except SignInRefused as refused:
            self.set_status(refused.status)
            self.render(
                "signin.html",
                **self.page_args(
                    next_url=next_url,
                    username=form["username"],
                    error=refused.message,
                    missing=refused.missing,
                    signed_out=False,
                ),
            )
            return
        if self.user_session is not None:
            await self.site.sessions.end(self.user_session.id)
        session = await self.site.sessions.create(
            principal, self.studio.id, form=self.form, source_ip=self.source_ip
        )
        set_session_cookie(self, session, cookie_path(self.form, self.studio.id))
        self.redirect(next_url, status=303)


class SignOutHandler(StudioHandler):
    """POST only: a link or a prefetch must not sign anyone out."""

    async def post(self, **_: str) -> None:
        if self.user_session is not None:
            await self.site.sessions.end(self.user_session.id)
        clear_session_cookie(self, cookie_path(self.form, self.studio_id))
        signed_out = f"{self.prefix}/signin?signed_out=1"
        assert self.studio is not None  # prepare() answered 404 otherwise
        idp_signout = self.site.idp_signout_for(self.studio)
        if idp_signout is None:
            self.redirect(signed_out, status=303)
            return
        # Signed in through the built-in IdP: its session would sign the user straight back
        # in, so the sign-out goes on to the IdP's (which asks, then comes back here).
        back = f"{self.studio.url}{signed_out}" if self.form == HOST_FORM else signed_out
        self.redirect(f"{idp_signout}?{urlencode({'return': back})}", status=303)


default_handlers = [
    (r"/signin", SignInHandler),
    (r"/signout", SignOutHandler),
]
