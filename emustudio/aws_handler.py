"""The AWS API endpoint: every signed request to ``/`` goes through the gateway pipeline.

The handler only translates between Tornado and the wire's ``HttpRequest``/``HttpResponse``.
Bodies are streamed in and counted, so an oversized request gets AWS's error without being held
in memory.
"""

from __future__ import annotations

from typing import Any

from tornado import web

from emustudio.aws.errors import RequestTooLarge
from emustudio.aws.http import HttpRequest
from emustudio.pipeline import Gateway


@web.stream_request_body
class AwsHandler(web.RequestHandler):
    def initialize(self, gateway: Gateway, max_request_bytes: int) -> None:
        self.gateway = gateway
        self.max_request_bytes = max_request_bytes
        self.chunks: list[bytes] = []
        self.size = 0

    def check_xsrf_cookie(self) -> None:
        # Requests are SigV4-signed API calls, not browser forms.
        return None

    def data_received(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size <= self.max_request_bytes:
            self.chunks.append(chunk)
        else:
            self.chunks.clear()

    async def _handle(self) -> None:
        request = HttpRequest.build(
            self.request.method or "GET",
            self.request.uri or "/",
            dict(self.request.headers.get_all()),
            b"".join(self.chunks),
            remote_ip=self.request.remote_ip or "127.0.0.1",
        )
        if self.size > self.max_request_bytes:
            response = self.gateway.reject(
                request,
                RequestTooLarge(
                    f"Request body of {self.size} bytes exceeds the limit of"
                    f" {self.max_request_bytes} bytes."
                ),
            )
        else:
            response = await self.gateway.handle(request)
        self.set_status(response.status)
        self.clear_header("Content-Type")
        for name, value in response.headers.items():
            self.set_header(name, value)
        self.finish(response.body)

    async def post(self, *args: Any) -> None:
        await self._handle()

    async def get(self, *args: Any) -> None:
        await self._handle()


class HealthHandler(web.RequestHandler):
    def initialize(self, region: str) -> None:
        self.region = region

    def get(self) -> None:
        self.write({"status": "ok", "region": self.region})
