"""An IAM/STS gateway with policy authorization, served in-process for the tests of IAM users'
keys and role sessions (no Docker needed), plus small helpers shared by the IAM/STS tests.

It is wired like ``emustudio up`` for these two services: the SQLite store, the IAM and STS
services, root + IAM keys + STS sessions as credential sources, the policy authorizer, Tornado's
``AwsHandler``, on a free loopback port. ``restart()`` builds everything again on the same store,
as a process restart would.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from tornado import httpserver, web

from emustudio.authz import PolicyAuthorizer
from emustudio.aws_handler import AwsHandler
from emustudio.credentials import Credentials, RootCredentials
from emustudio.pipeline import Gateway
from emustudio.services.iam import IamCredentials, IamService
from emustudio.services.sts import StsCredentials, StsService
from emustudio.store import Store
from emustudio.testing.gateway import ROOT_KEY, ROOT_SECRET, free_port

ACCOUNT = "000000000000"
REGION = "us-east-1"
T = TypeVar("T")


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    err = exc.value.response["Error"]
    return err["Code"], err["Message"]


def status_of(exc: pytest.ExceptionInfo[ClientError]) -> int:
    return int(exc.value.response["ResponseMetadata"]["HTTPStatusCode"])


def doc(*statements: dict[str, Any], version: str | None = "2012-10-17") -> str:
    body: dict[str, Any] = {"Statement": list(statements)}
    if version:
        body = {"Version": version, **body}
    return json.dumps(body)


def allow(action: str | list[str], resource: str | list[str] = "*") -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def trust(
    principal: dict[str, Any] | str, action: str | list[str] = "sts:AssumeRole", **extra: Any
) -> str:
    return doc({"Effect": "Allow", "Principal": principal, "Action": action, **extra})


class InProcessGateway:
    def __init__(self, data_dir: Path | None = None) -> None:
        self._tmp = None if data_dir else tempfile.TemporaryDirectory(prefix="emustudio-iam-")
        self.data_dir = data_dir or Path(self._tmp.name)  # type: ignore[union-attr]
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: httpserver.HTTPServer | None = None
        self.store: Store | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://localhost:{self.port}"

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def call(self, fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
        return self.run(fn())

    async def _start(self) -> None:
        self.store = Store(f"sqlite:///{self.data_dir / 'emustudio.db'}")
        self.store.create_all()
        self.iam = IamService(self.store, account_id=ACCOUNT, credentials=IamCredentials())
        self.sts = StsService(
            self.store,
            self.iam,
            account_id=ACCOUNT,
            region=REGION,
            credentials=StsCredentials(),
        )
        await self.iam.load()
        await self.sts.load()
        self.gateway = Gateway(
            services={"iam": self.iam, "sts": self.sts},
            credentials=Credentials(
                [
                    RootCredentials(ROOT_KEY, ROOT_SECRET, ACCOUNT),
                    self.iam.credentials,
                    self.sts.credentials,
                ]
            ),
            region=REGION,
            account_id=ACCOUNT,
            authorizer=PolicyAuthorizer(self.store, self.iam, region=REGION, account_id=ACCOUNT),
        )
        app = web.Application(
            [(r"/", AwsHandler, {"gateway": self.gateway, "max_request_bytes": 1 << 20})]
        )
        self.server = httpserver.HTTPServer(app)
        self.server.listen(self.port, "127.0.0.1")

    async def _stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            await self.server.close_all_connections()
            self.server = None
        if self.store is not None:
            self.store.close()
            self.store = None

    def start(self) -> InProcessGateway:
        self.run(self._start())
        return self

    def restart(self) -> InProcessGateway:
        self.run(self._stop())
        return self.start()

    def close(self) -> None:
        self.run(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if self._tmp is not None:
            self._tmp.cleanup()

    def client(self, service: str, *, parameter_validation: bool = True, **kwargs: Any) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=kwargs.pop("aws_access_key_id", ROOT_KEY),
            aws_secret_access_key=kwargs.pop("aws_secret_access_key", ROOT_SECRET),
            config=Config(parameter_validation=parameter_validation),
            **kwargs,
        )

    def client_for(self, service: str, credentials: dict[str, Any], **kwargs: Any) -> Any:
        """A client signed with ``CreateAccessKey``'s ``AccessKey`` or STS ``Credentials``."""
        return self.client(
            service,
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials.get("SessionToken"),
            **kwargs,
        )


def user_with_key(iam: Any, name: str, *policies: str, path: str = "/") -> dict[str, Any]:
    """Create a user with inline policies and an access key; return the key."""
    iam.create_user(UserName=name, Path=path)
    for i, policy in enumerate(policies):
        iam.put_user_policy(UserName=name, PolicyName=f"p{i}", PolicyDocument=policy)
    key: dict[str, Any] = iam.create_access_key(UserName=name)["AccessKey"]
    return key
