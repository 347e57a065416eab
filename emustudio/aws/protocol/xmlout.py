"""Shape-driven XML writing for the ``query`` and ``ec2`` response bodies.

Both protocols are read by botocore's ``QueryParser`` (``EC2QueryParser`` subclasses it), so
one writer serves both; only the envelope differs (see :mod:`.query` and :mod:`.ec2`).
Rules, mirroring that parser:

* a structure member is an element named by its ``locationName``, else the member name;
* a list is ``<Name><member>..</member></Name>`` (the item element is the list member's
  ``locationName``: EC2 uses ``item``); a *flattened* list repeats the item element in place
  of the wrapper, named by the list member's ``locationName`` else the member's name;
* a map is ``<Name><entry><key>..</key><value>..</value></entry></Name>`` (key/value names
  from their ``locationName``); a flattened map repeats ``<Name><key/><value/></Name>``;
* scalars: ISO 8601 timestamps with ``Z``, lowercase booleans, base64 blobs.
"""

from __future__ import annotations

import re
from typing import Any

from botocore.model import Shape

from emustudio.aws.protocol.base import scalar_text

# XML 1.0 cannot carry most C0 controls even as character references, nor lone surrogates
# (which JSON input can smuggle in): replace them, or the whole response would be unreadable.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def escape(text: str) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    # Parsers normalise a raw CR to LF; a reference survives.
    text = text.replace("\r", "&#xD;")
    if _INVALID_XML.search(text):
        text = _INVALID_XML.sub("\ufffd", text)
    return text


def escape_attr(text: str) -> str:
    return escape(text).replace('"', "&quot;")


class XmlWriter:
    """Appends the XML form of shaped values to a list of string parts."""

    def members(self, shape: Shape, value: dict[str, Any], out: list[str]) -> None:
        """The member elements of a structure, without an enclosing element."""
        members = shape.members
        for name, item in value.items():
            member = members.get(name)
            if member is None or item is None or member.serialization.get("xmlAttribute"):
                continue
            self.member(name, member, item, out)

    @staticmethod
    def attributes(shape: Shape, value: dict[str, Any]) -> str:
        """Members the model puts in attributes (S3's ``xsi:type`` of an ACL grantee)."""
        parts: list[str] = []
        for name, member in shape.members.items():
            if member.serialization.get("xmlAttribute") and value.get(name) is not None:
                wire: str = member.serialization.get("name", name)
                if wire.startswith("xsi:") and not parts:
                    parts.append(' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"')
                parts.append(f' {wire}="{escape_attr(scalar_text(member, value[name]))}"')
        return "".join(parts)

    def member(self, name: str, shape: Shape, value: Any, out: list[str]) -> None:
        """One named member: usually one element, several for a flattened list or map."""
        type_name = shape.type_name
        tag: str = shape.serialization.get("name", name)
        if type_name == "list" and shape.serialization.get("flattened"):
            item_tag: str = shape.member.serialization.get("name", tag)
            for item in value:
                self.element(item_tag, shape.member, item, out)
            return
        if type_name == "map" and shape.serialization.get("flattened"):
            for key, item in value.items():
                out.append(f"<{tag}>")
                self._entry(shape, key, item, out)
                out.append(f"</{tag}>")
            return
        self.element(tag, shape, value, out)

    def element(self, tag: str, shape: Shape, value: Any, out: list[str]) -> None:
        type_name = shape.type_name
        if type_name == "structure":
            out.append(f"<{tag}{self.attributes(shape, value)}>")
            self.members(shape, value, out)
            out.append(f"</{tag}>")
        elif type_name == "list":
            item_tag: str = shape.member.serialization.get("name", "member")
            out.append(f"<{tag}>")
            for item in value:
                self.element(item_tag, shape.member, item, out)
            out.append(f"</{tag}>")
        elif type_name == "map":
            out.append(f"<{tag}>")
            for key, item in value.items():
                out.append("<entry>")
                self._entry(shape, key, item, out)
                out.append("</entry>")
            out.append(f"</{tag}>")
        else:
            out.append(f"<{tag}>{escape(scalar_text(shape, value))}</{tag}>")

    def _entry(self, shape: Shape, key: Any, value: Any, out: list[str]) -> None:
        key_tag: str = shape.key.serialization.get("name", "key")
        value_tag: str = shape.value.serialization.get("name", "value")
        self.element(key_tag, shape.key, key, out)
        if value is not None:
            self.element(value_tag, shape.value, value, out)

    def error_extras(self, shape: Shape | None, extra: dict[str, Any], out: list[str]) -> None:
        """Extra error members next to Code and Message, typed by the error shape if any."""
        members = shape.members if shape is not None else {}
        for key, value in extra.items():
            if value is None or key in ("Code", "Message", "Type", "message"):
                continue
            member = members.get(key)
            if member is not None:
                self.member(key, member, value, out)
            else:
                out.append(f"<{key}>{escape(str(value))}</{key}>")
