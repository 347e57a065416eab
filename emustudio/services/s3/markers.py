"""Directory markers (keys ending in ``/``) on a store that cannot hold them.

Hadoop's S3A marks directories with empty objects such as ``out/_temporary/`` and deletes them
with ``DeleteObjects``. A file-system store (``rclone serve s3`` on a directory) makes ``out/``
a file, after which nothing can be written under it, and fails batch deletes of such keys. So,
when the setting asks for it, the gateway stores a marker key ``<dir>/`` as the object
``<dir>/<MARKER>`` and shows it back as ``<dir>/`` in every answer. The stored name sorts among
the directory's own keys, so listings and their page boundaries stay in S3's order but for keys
that sort before the marker's name (``!``-prefixed ones).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote

MARKER = "!emustudio-dir-marker"
# As a listing with ``EncodingType=url`` spells it.
_ENCODED = quote(MARKER, safe="")


class Markers:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def to_store(self, key: str) -> str:
        return key + MARKER if self.enabled and key.endswith("/") else key

    def from_store(self, key: str) -> str:
        if self.enabled:
            for name in (MARKER, _ENCODED):
                if key.endswith("/" + name):
                    return key[: -len(name)]
        return key

    def copy_source(self, source: str) -> str:
        """``bucket/key[?versionId=..]`` (percent-encoded as sent) with its key mapped."""
        path, sep, version = source.partition("?")
        bucket, _, key = unquote(path).lstrip("/").partition("/")
        mapped = quote(f"{bucket}/{self.to_store(key)}", safe="/~")
        return mapped + sep + version

    def listing(self, result: dict[str, Any]) -> dict[str, Any]:
        """A ListObjects(V2) answer from the store, with marker keys shown as S3 has them."""
        if not self.enabled:
            return result
        for item in result.get("Contents", []):
            item["Key"] = self.from_store(item["Key"])
        for name in ("NextMarker", "Marker", "StartAfter"):
            if isinstance(result.get(name), str):
                result[name] = self.from_store(result[name])
        return result
