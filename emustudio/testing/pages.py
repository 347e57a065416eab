"""A browser-like HTTP client for a Studio's pages: it keeps cookies the way a browser scopes
them (host-only, by path), always connects to 127.0.0.1 and sends the Studio's host name in
``Host``, as a browser does for ``*.localhost`` names.

The project's own tests and benchmarks use it to sign in and follow pages without Chromium.
"""

from __future__ import annotations

import http.client
import re
import time
from dataclasses import dataclass, field
from email.message import Message
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from emustudio.testing.iam import PASSWORD

__all__ = ["DOMAIN", "Browser", "Response", "SetCookie", "StoredCookie"]

DOMAIN = "emrstudio.localhost"


@dataclass
class SetCookie:
    """One ``Set-Cookie`` header, parsed with every attribute kept (lower-cased names)."""

    name: str
    value: str
    attributes: dict[str, str]

    @classmethod
    def parse(cls, header: str) -> SetCookie:
        first, *rest = header.split(";")
        name, _, value = first.strip().partition("=")
        attributes = {}
        for part in rest:
            key, _, val = part.strip().partition("=")
            attributes[key.lower()] = val
        return cls(name, value, attributes)

    @property
    def path(self) -> str:
        return self.attributes.get("path", "/")

    @property
    def deleted(self) -> bool:
        if self.attributes.get("max-age") == "0":
            return True
        expires = self.attributes.get("expires")
        return expires is not None and parsedate_to_datetime(expires).timestamp() < time.time()


@dataclass
class Response:
    status: int
    headers: Message
    body: str
    set_cookies: list[SetCookie]

    @property
    def location(self) -> str:
        return self.headers.get("Location", "")

    def cookie(self, name: str) -> SetCookie:
        return next(c for c in self.set_cookies if c.name == name)

    def xsrf(self) -> str:
        match = re.search(r'name="_xsrf" value="([^"]+)"', self.body)
        assert match, f"no XSRF field in the page:\n{self.body[:2000]}"
        return match.group(1)


@dataclass
class StoredCookie:
    name: str
    value: str
    host: str
    path: str


@dataclass
class Browser:
    """Keeps cookies per host and path, as a browser does for host-only cookies."""

    port: int
    cookies: list[StoredCookie] = field(default_factory=list)

    def host(self, studio_id: str) -> str:
        return f"{studio_id.lower()}.{DOMAIN}"

    def cookie_header(self, host: str, path: str) -> str:
        sent = [
            c
            for c in sorted(self.cookies, key=lambda c: -len(c.path))
            if c.host == host and (path == c.path.rstrip("/") or path.startswith(c.path))
        ]
        return "; ".join(f"{c.name}={c.value}" for c in sent)

    def cookie_value(self, name: str, host: str, path: str | None = None) -> str | None:
        for c in self.cookies:
            if c.name == name and c.host == host and (path is None or c.path == path):
                return c.value
        return None

    def request(
        self,
        method: str,
        host: str,
        path: str,
        *,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        cookies: bool = True,
    ) -> Response:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            body = urlencode(form).encode() if form is not None else None
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", f"{host}:{self.port}")
            sent = {k.lower() for k in (headers or {})}
            if "accept" not in sent:
                conn.putheader("Accept", "text/html,application/xhtml+xml")
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            cookie = self.cookie_header(host, urlsplit(path).path) if cookies else ""
            if cookie and "cookie" not in sent:
                conn.putheader("Cookie", cookie)
            if body is not None:
                conn.putheader("Content-Type", "application/x-www-form-urlencoded")
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            raw = conn.getresponse()
            text = raw.read().decode("utf-8", "replace")
            set_cookies = [SetCookie.parse(v) for v in raw.headers.get_all("Set-Cookie") or []]
        finally:
            conn.close()
        for c in set_cookies:
            self.cookies = [
                s
                for s in self.cookies
                if not (s.name == c.name and s.host == host and s.path == c.path)
            ]
            if not c.deleted:
                self.cookies.append(StoredCookie(c.name, c.value, host, c.path))
        return Response(raw.status, raw.headers, text, set_cookies)

    def get(self, host: str, path: str, **kwargs: Any) -> Response:
        return self.request("GET", host, path, **kwargs)

    def post(self, host: str, path: str, form: dict[str, str], **kwargs: Any) -> Response:
        return self.request("POST", host, path, form=form, **kwargs)

    def sign_in(
        self, studio_id: str, user: str, password: str = PASSWORD, *, path_form: bool = False
    ) -> Response:
        host, prefix = self.where(studio_id, path_form)
        # A fresh sign-in, as after signing out: signed in, /signin goes straight home.
        self.cookies = [
            c
            for c in self.cookies
            if not (c.name == "emustudio-session" and c.host == host and c.path == f"{prefix}/")
        ]
        page = self.get(host, f"{prefix}/signin")
        assert page.status == 200, page.body
        return self.post(
            host,
            f"{prefix}/signin",
            {"_xsrf": page.xsrf(), "username": user, "password": password, "next": f"{prefix}/"},
        )

    def where(self, studio_id: str, path_form: bool) -> tuple[str, str]:
        if path_form:
            return "localhost", f"/studios/{studio_id}"
        return self.host(studio_id), ""
