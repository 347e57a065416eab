"""Fixtures for the Studio web side: a browser-like HTTP client that keeps cookies the way a
browser scopes them (host-only, by path), IAM users with console passwords, Studios, and
Workspace rows pointing at a loopback listener that counts every connection it gets.

The client always connects to 127.0.0.1 and sends the Studio's host name in ``Host``, as a
browser does for ``*.localhost`` names.
"""

from __future__ import annotations

import http.client
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from sqlmodel import Session, create_engine

from emustudio.store.tables import Editor
from emustudio.testing.gateway import GatewayProcess
from tests.conftest import StudioNetwork, make_studio_network, studio_args

DOMAIN = "emrstudio.localhost"
ACCOUNT = "000000000000"
PASSWORD = "Correct-Horse-9-Battery"


def studio_arn(studio_id: str) -> str:
    return f"arn:aws:elasticmapreduce:us-east-1:{ACCOUNT}:studio/{studio_id}"


def editor_arn(editor_id: str) -> str:
    return f"arn:aws:elasticmapreduce:us-east-1:{ACCOUNT}:editor/{editor_id}"


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


class Users:
    """IAM users with console passwords and inline policies, made as root through boto3."""

    def __init__(self, gateway: GatewayProcess) -> None:
        self.iam = gateway.client("iam")

    def create(self, *statements: dict[str, Any], password: str = PASSWORD) -> str:
        name = "web-" + secrets.token_hex(4)
        self.iam.create_user(UserName=name)
        self.iam.create_login_profile(UserName=name, Password=password)
        if statements:
            self.iam.put_user_policy(
                UserName=name,
                PolicyName="studio",
                PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}),
            )
        return name


def allow(
    actions: str | list[str], resource: str | list[str] = "*", **extra: Any
) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resource, **extra}


def create_role(
    iam: Any,
    name: str,
    principal: dict[str, str],
    actions: str | list[str],
    *statements: dict[str, Any],
    condition: dict[str, Any] | None = None,
) -> str:
    """A role ``principal`` may assume with ``actions``, with ``statements`` as its inline
    policy; its ARN."""
    trust: dict[str, Any] = {"Effect": "Allow", "Principal": principal, "Action": actions}
    if condition is not None:
        trust["Condition"] = condition
    arn = iam.create_role(
        RoleName=name,
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [trust]}),
    )["Role"]["Arn"]
    if statements:
        iam.put_role_policy(
            RoleName=name,
            PolicyName="permissions",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}),
        )
    return str(arn)


EMR_SERVICE = {"Service": "elasticmapreduce.amazonaws.com"}


def deny(actions: str | list[str], resource: str = "*") -> dict[str, Any]:
    return {"Effect": "Deny", "Action": actions, "Resource": resource}


class Upstream:
    """A loopback HTTP server standing in for a Workspace's JupyterLab; counts connections."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port: int = self.sock.getsockname()[1]
        self.connections = 0
        self.requests: list[str] = []
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
            except OSError:
                return
            self.requests.append(data.decode("latin-1"))
            body = b"upstream-ok"
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )

    def close(self) -> None:
        self._stop = True
        self.sock.close()


class Rows:
    """Writes Workspace rows into the gateway's store directly: a Workspace that is 'running'
    at a loopback address, without Docker (the gate reads the row on each admission)."""

    def __init__(self, gateway: GatewayProcess) -> None:
        self.engine = create_engine(f"sqlite:///{gateway.data_dir / 'emustudio.db'}")

    def add(
        self, studio_id: str, *, endpoint: str | None, status: str = "Ready", name: str = "ws"
    ) -> str:
        editor_id = "e-" + "".join(
            secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(25)
        )
        now = time.time()
        with Session(self.engine) as session:
            session.add(
                Editor(
                    id=editor_id,
                    region="us-east-1",
                    studio_id=studio_id,
                    name=name,
                    status=status,
                    s3_location="s3://bucket/ws",
                    subnet_id="subnet-test",
                    availability_zone="us-east-1a",
                    created_by=f"arn:aws:iam::{ACCOUNT}:root",
                    token="upstream-token",
                    endpoint=endpoint,
                    created_at=now,
                    last_modified_at=now,
                )
            )
            session.commit()
        return editor_id

    def close(self) -> None:
        self.engine.dispose()


@pytest.fixture(scope="module")
def users(gateway: GatewayProcess) -> Users:
    return Users(gateway)


@pytest.fixture(scope="module")
def net(ec2: Any) -> StudioNetwork:
    return make_studio_network(ec2, subnets=2)


@pytest.fixture(scope="module")
def studios(emr: Any, net: StudioNetwork) -> dict[str, str]:
    """Two IAM-mode Studios, A (tagged team=data) and B (team=ml)."""
    return {
        key: emr.create_studio(
            **studio_args(net, Name=f"studio-{key}", Tags=[{"Key": "team", "Value": team}])
        )["StudioId"]
        for key, team in (("A", "data"), ("B", "ml"))
    }


@pytest.fixture
def browser(gateway: GatewayProcess) -> Browser:
    return Browser(gateway.port)


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.close()


@pytest.fixture(scope="module")
def rows(gateway: GatewayProcess) -> Iterator[Rows]:
    made = Rows(gateway)
    yield made
    made.close()


@pytest.fixture
def chromium(emu_chromium: Any) -> Any:
    """Debian's Chromium through Playwright, a fresh profile per test (the plugin's)."""
    return emu_chromium
