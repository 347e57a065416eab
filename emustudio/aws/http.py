"""Transport-neutral HTTP request and response values used by the wire layer.

The Tornado handler converts to and from these, so the protocol code never sees Tornado.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class HttpRequest:
    """One incoming request as the wire sees it.

    ``headers`` keys are lower-cased. ``path`` is the raw path without the query string;
    ``query`` is the parsed query string (every value a list, blank values kept).
    ``remote_ip`` is the peer's address (CloudTrail's ``sourceIPAddress``).
    """

    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""
    query: dict[str, list[str]] = field(default_factory=dict)
    raw_query: str = ""
    host: str = "localhost"
    remote_ip: str = "127.0.0.1"

    @classmethod
    def build(
        cls,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes = b"",
        remote_ip: str = "127.0.0.1",
    ) -> HttpRequest:
        """Make a request from a URL (path and query) and headers in any case."""
        parts = urlsplit(url)
        lowered = {k.lower(): v for k, v in headers.items()}
        return cls(
            method=method.upper(),
            path=parts.path or "/",
            headers=lowered,
            body=body,
            query=parse_qs(parts.query, keep_blank_values=True),
            raw_query=parts.query,
            host=lowered.get("host", parts.netloc or "localhost"),
            remote_ip=remote_ip,
        )

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


@dataclass
class HttpResponse:
    """What the wire sends back."""

    status: int
    headers: dict[str, str]
    body: bytes
