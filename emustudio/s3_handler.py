"""S3's front door on the gateway's endpoint: which requests are S3's, and their streamed bodies.

A request is S3's when it is signed for ``s3`` (header or presigned query) or addressed to a
bucket host, ``<bucket>.<domain>`` for one of the S3 domains (``localhost`` by default, as
boto3 builds virtual-hosted URLs from ``http://localhost:<port>``); Studio hosts
(``<studio-id>.<studio domain>``) never are. A virtual-hosted request keeps its path (it is what
was signed) and names its bucket beside it (``HttpRequest.virtual_bucket``).

An unsigned path-style request (``/<bucket>[/<key>]``, no signature) is S3's too, as an
anonymous caller's, when no other rule of the app takes its path: :func:`anonymous_s3_rules`
is the app's last rule. ``/`` stays the AWS API's, so unsigned requests to the other services
keep their answers, and the pages' own first segments (:data:`PAGE_PREFIXES`) stay the pages'
even where a page is off (no IdP configured: ``/idp/...`` is a 404, not a bucket); a bucket
named like one of them is reached anonymously only virtual-hosted.

A body over 256 KB is not read before the pipeline starts: the pipeline runs as the body
arrives, at most a few pieces ahead of it (:class:`~emustudio.aws.http.BodyStream`). A smaller
one (and no body) is taken whole first and the pipeline runs in the handler's own task: a small
object's call then costs no task and no hand-over between two. The answer's body is written as
the store sends it, each piece flushed before the next is read.
"""

from __future__ import annotations

import asyncio
import copy
import re
from typing import Any

from tornado import httputil, web
from tornado.http1connection import HTTP1Connection, HTTP1ConnectionParameters
from tornado.httputil import _normalize_header
from tornado.iostream import StreamClosedError
from tornado.routing import Matcher, Rule

from emustudio import ids
from emustudio.aws.http import BodyStream, HeldBody, HttpRequest, HttpResponse
from emustudio.pipeline import Gateway

_SIGNED_FOR_S3 = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/s3/aws4_request")
_PRESIGNED_FOR_S3 = re.compile(r"X-Amz-Credential=[^&/]+(/|%2F)\d{8}(/|%2F)[^&/%]+(/|%2F)s3(/|%2F)")


class S3Addressing:
    """Tells S3 requests and their bucket hosts apart from everything else on the endpoint."""

    def __init__(self, domains: tuple[str, ...], studio_domain: str) -> None:
        self.domains = tuple(d.lower().strip(".") for d in domains)
        self.studio_domain = ids.studio_domain(studio_domain)
        # Each request asks of its Host twice (the matcher, the handler), and a client sends
        # the same Host call after call; bounded, as a Host is the caller's to vary.
        self._buckets: dict[str, str | None] = {}

    def bucket_of_host(self, host: str) -> str | None:
        if host in self._buckets:
            return self._buckets[host]
        bucket = self._bucket_of_host(host)
        if len(self._buckets) < 1024:
            self._buckets[host] = bucket
        return bucket

    def _bucket_of_host(self, host: str) -> str | None:
        name = host.rsplit(":", 1)[0].lower() if not host.startswith("[") else ""
        if name == self.studio_domain or name.endswith("." + self.studio_domain):
            return None
        for domain in self.domains:
            if name.endswith("." + domain):
                bucket = name[: -len(domain) - 1]
                return bucket or None
        return None

    def is_studio_host(self, host: str) -> bool:
        name = host.rsplit(":", 1)[0].lower()
        return name == self.studio_domain or name.endswith("." + self.studio_domain)

    def is_s3(self, request: httputil.HTTPServerRequest) -> bool:
        host = request.host or ""
        if self.bucket_of_host(host) is not None:
            return True  # never a Studio host's (bucket_of_host says None for those)
        if self.is_studio_host(host):
            return False
        auth = request.headers.get("Authorization", "")
        if auth:
            return bool(_SIGNED_FOR_S3.search(auth))
        query = request.query or ""
        if _PRESIGNED_FOR_S3.search(query):
            return True
        # The older presigned form names no service: a bucket path with its three parameters.
        return (request.path or "/") != "/" and all(
            f"{name}=" in query for name in ("AWSAccessKeyId", "Signature", "Expires")
        )


# The first path segments of the gateway's pages (web/, auth/): never a path-style bucket when
# unsigned. Signed requests are told apart by their signature and need no such list.
PAGE_PREFIXES = frozenset(
    {"console", "idp", "sso", "saml", "signin", "signout", "studios", "federation", "_emustudio"}
)


class AnonymousPathMatcher(Matcher):
    """What no other rule took: a path under a bucket, on any host but a Studio's."""

    def __init__(self, addressing: S3Addressing) -> None:
        self.addressing = addressing

    def match(self, request: httputil.HTTPServerRequest) -> dict[str, Any] | None:
        path = request.path or "/"
        if path == "/" or self.addressing.is_studio_host(request.host or ""):
            return None
        if path.split("/", 2)[1] in PAGE_PREFIXES:
            return None
        return {}


def _is_small(request: httputil.HTTPServerRequest) -> bool:
    """No body, or one of a known length up to ``_SMALL_BODY``."""
    headers = request.headers
    if "Transfer-Encoding" in headers:
        return False
    length = headers.get("Content-Length")
    return length is None or (length.isdigit() and int(length) <= _SMALL_BODY)


class S3Matcher(Matcher):
    """S3's requests, those with ``small`` bodies (none, or up to 256 KB) or the others: two
    rules, one per handler, that ask :meth:`S3Addressing.is_s3` once between them."""

    def __init__(self, addressing: S3Addressing, *, small: bool) -> None:
        self.addressing = addressing
        self.small = small

    def match(self, request: httputil.HTTPServerRequest) -> dict[str, Any] | None:
        verdict = request.__dict__.get("_emustudio_s3")
        if verdict is None:
            verdict = self.addressing.is_s3(request)
            request.__dict__["_emustudio_s3"] = verdict
        if not verdict or _is_small(request) != self.small:
            return None
        return {}


# Bodies up to this size are taken whole before the pipeline runs: no task of their own, no
# hand-over piece by piece (the store's small bodies, forward.py, are read whole too).
_SMALL_BODY = 256 * 1024
_LARGE_PIECE = 512 * 1024  # what a large body's connection reads at once


@web.stream_request_body
class S3Handler(web.RequestHandler):
    SUPPORTED_METHODS = ("GET", "HEAD", "PUT", "POST", "DELETE")
    # A call that went well is logged at DEBUG only: CloudTrail records it, and an access log
    # line costs a small object's call a fair share of its time. Errors are logged as before.
    quiet_access_log = True

    def initialize(self, gateway: Gateway, addressing: S3Addressing) -> None:
        self.gateway = gateway
        self.addressing = addressing
        self.body: BodyStream | None = None
        self.http: HttpRequest | None = None
        self.answer: asyncio.Future[HttpResponse] | None = None
        self.restore: tuple[HTTP1ConnectionParameters, int] | None = None

    def check_xsrf_cookie(self) -> None:
        return None  # signed API calls, not browser forms

    def compute_etag(self) -> str | None:
        return None  # S3's ETag is the object's, never one of Tornado's

    def prepare(self) -> None:
        request = self.request
        if not self._stream_request_body:  # S3WholeHandler: the body, if any, is in
            body = request.body
            if body:
                self.body = HeldBody(len(body), whole=body)
            self.http = self._request()
            return
        length = request.headers.get("Content-Length")
        size = int(length) if length is not None and length.isdigit() else None
        chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
        small = not chunked and (size or 0) <= _SMALL_BODY
        if chunked or size:
            # A small body is held whole (a few pieces) and the pipeline runs once it is in,
            # in this handler's own task; a larger one streams through a pipeline started now.
            self.body = HeldBody(size) if small else BodyStream(size, depth=4)
        self.http = self._request()
        if not small:
            self._read_in_large_pieces()
            self.answer = asyncio.ensure_future(self.gateway.handle(self.http, service="s3"))

    def _request(self) -> HttpRequest:
        request = self.request
        # The headers' names lowered all at once (a repeated header: its last value), not
        # one by one through Tornado's generator and again in HttpRequest.build.
        sent = request.headers._as_list
        names = "\n".join(sent).lower().split("\n") if sent else []
        return HttpRequest.build(
            request.method or "GET",
            request.uri or "/",
            dict(zip(names, [values[-1] for values in sent.values()], strict=True)),
            remote_ip=request.remote_ip or "127.0.0.1",
            stream=self.body,
            virtual_bucket=self.addressing.bucket_of_host(request.host or ""),
            lowered=True,
        )

    def _read_in_large_pieces(self) -> None:
        """This connection's body reads in pieces of up to ``_LARGE_PIECE`` instead of
        Tornado's 64 KB: a 64 MB upload is then some hundred pieces through the body's checks
        and to the store, not a thousand, each a round of Python calls and hand-overs. Only
        connections that send a large body: a small request would pay for the larger buffer
        every read."""
        connection = self.request.connection
        if isinstance(connection, HTTP1Connection) and connection.params.chunk_size < _LARGE_PIECE:
            self.restore = (connection.params, connection.stream.read_chunk_size)
            params = copy.copy(connection.params)  # the server's own is every connection's
            params.chunk_size = _LARGE_PIECE
            connection.params = params
            connection.stream.read_chunk_size = _LARGE_PIECE

    def _read_in_usual_pieces(self) -> None:
        """Back to Tornado's pieces once the body is in: the connection's next request may be
        a small one (a client keeps its connections)."""
        connection = self.request.connection
        if self.restore is not None and isinstance(connection, HTTP1Connection):
            connection.params, connection.stream.read_chunk_size = self.restore
            self.restore = None

    async def data_received(self, chunk: bytes) -> None:
        if self.body is not None:
            await self.body.feed(chunk)

    def on_connection_close(self) -> None:
        if self.body is not None:
            self.body.fail()

    async def _respond(self) -> None:
        self._read_in_usual_pieces()
        if self.body is not None:
            await self.body.end()
        if self.answer is None:
            assert self.http is not None
            response = await self.gateway.handle(self.http, service="s3")
        else:
            response = await self.answer
        self.set_status(response.status)
        self.clear_header("Content-Type")
        as_list = self._headers._as_list
        for name, value in response.headers.items():
            # Strings already: set_header's conversion and check, five calls a header, are
            # left out (Tornado still refuses any header line with CR or LF as it writes it).
            # S3's own ``x-amz-*`` names go as written (user metadata's in lower case, as S3
            # sends them, where Tornado would send ``X-Amz-Meta-Owner`` and the SDKs hand the
            # name's case on to the user); the others (Content-Length, ETag...) in Tornado's
            # form, which is how it looks them up.
            as_list[name if name[:1] == "x" else _normalize_header(name)] = [value]
        if self.request.method == "HEAD":
            if response.stream is not None:
                await response.stream.aclose()  # type: ignore[attr-defined]
            self.finish()
            return
        if response.stream is None:
            self.finish(response.body or None)
            return
        try:
            async for piece in response.stream:
                self.write(piece)
                await self.flush()
        except StreamClosedError:
            return  # the client went away; the store's connection closes with the stream
        finally:
            await response.stream.aclose()  # type: ignore[attr-defined]
        self.finish()

    async def get(self, *args: Any) -> None:
        await self._respond()

    async def head(self, *args: Any) -> None:
        await self._respond()

    async def put(self, *args: Any) -> None:
        await self._respond()

    async def post(self, *args: Any) -> None:
        await self._respond()

    async def delete(self, *args: Any) -> None:
        await self._respond()


class S3WholeHandler(S3Handler):
    """S3's requests with no body or a small one: Tornado reads the body whole before the
    handler starts, as for any handler that does not stream. A streaming handler costs a small
    call two more event-loop turns (Tornado waits for it to be prepared before reading the
    body, then it waits for the body), which is what this one is for."""

    _stream_request_body = False

    def initialize(self, gateway: Gateway, addressing: S3Addressing) -> None:
        super().initialize(gateway, addressing)
        # An object's bytes are never a form, whatever its Content-Type says: Tornado would
        # parse a form body into arguments (and refuse a malformed one) before prepare().
        self.request._parse_body = lambda: None  # type: ignore[method-assign]


def s3_rules(gateway: Gateway, addressing: S3Addressing) -> list[Rule]:
    """The rules that take S3's requests, to be placed before every other rule."""
    kwargs = {"gateway": gateway, "addressing": addressing}
    return [
        Rule(S3Matcher(addressing, small=True), S3WholeHandler, kwargs),
        Rule(S3Matcher(addressing, small=False), S3Handler, kwargs),
    ]


def anonymous_s3_rules(gateway: Gateway, addressing: S3Addressing) -> list[Rule]:
    """The rule that takes unsigned path-style requests, to be placed after every other rule."""
    return [
        Rule(
            AnonymousPathMatcher(addressing),
            S3Handler,
            {"gateway": gateway, "addressing": addressing},
        )
    ]
