"""Sign-in and sign-out pages of a Studio."""

from __future__ import annotations

from emustudio.auth.sessions import clear_session_cookie, cookie_path, set_session_cookie
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
        # A federated Studio's page says so and offers the IdP's sign-out too (a link: the
        # page's CSP keeps forms to this origin), so the next sign-in can be someone else.
        self.redirect(f"{self.prefix}/signin?signed_out=1", status=303)


default_handlers = [
    (r"/signin", SignInHandler),
    (r"/signout", SignOutHandler),
]
