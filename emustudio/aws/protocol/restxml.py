"""The ``rest-xml`` protocol (S3): operations routed by method, path and query, XML bodies.

:class:`RestXmlParser` (a :class:`~.base.ProtocolParser`) reads a *path-style* request
(``/<bucket>/<key>``; the S3 handler rewrites virtual-hosted requests first). The operation is
the one whose method and path template fit and which the request's query literals
(``?uploads``, ``?list-type=2``) and required query and header members (``uploadId``,
``x-amz-copy-source``) single out best, so ``PUT /b/k`` is ``PutObject`` and the same with
``x-amz-copy-source`` is ``CopyObject``. Members come from their locations: the URI labels
(``Key+`` takes the rest of the path), the query string, headers, the ``x-amz-meta-`` prefix map,
and the payload: an XML structure (namespaced or not), a string, or, for a streaming blob
(``PutObject``'s ``Body``), nothing: that body stays in the request's stream.

:class:`RestXmlSerializer` writes header members, then the payload member or the body members
as one XML document whose root element is S3's (the model does not name them). The status is
the operation's ``responseCode`` (204 for deletes), or ``ResponseMetadata.HTTPStatusCode`` of a
result that carries it (206 for a range). Errors are ``<Error><Code/><Message/>..<RequestId/>
</Error>``.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import unquote

from botocore.model import OperationModel, ServiceModel, Shape

from emustudio.aws.errors import AwsError, UnknownOperation
from emustudio.aws.http import HttpRequest, HttpResponse
from emustudio.aws.protocol.base import (
    ProtocolParser,
    ProtocolSerializer,
    scalar_from_text,
    to_datetime,
)
from emustudio.aws.protocol.validate import validate
from emustudio.aws.protocol.xmlout import XmlWriter, escape

S3_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'

# S3's root elements for outputs whose model names none (botocore's parser ignores the root's
# name, so the model never needed them; S3 documents them per operation).
ROOT_ELEMENTS = {
    "ListBuckets": "ListAllMyBucketsResult",
    "ListObjects": "ListBucketResult",
    "ListObjectsV2": "ListBucketResult",
    "DeleteObjects": "DeleteResult",
    "GetBucketTagging": "Tagging",
    "GetBucketVersioning": "VersioningConfiguration",
    "GetBucketLocation": "LocationConstraint",
    "CreateMultipartUpload": "InitiateMultipartUploadResult",
    "CompleteMultipartUpload": "CompleteMultipartUploadResult",
    "ListParts": "ListPartsResult",
    "ListMultipartUploads": "ListMultipartUploadsResult",
    "GetObjectAttributes": "GetObjectAttributesOutput",
}


# The gateway's shared error codes, as S3 spells them.
_ERROR_CODES = {
    "InternalFailure": "InternalError",
    "ValidationException": "InvalidArgument",
    "AccessDeniedException": "AccessDenied",
}


class MalformedXML(AwsError):
    code = "MalformedXML"
    status = 400

    def __init__(self) -> None:
        super().__init__(
            "The XML you provided was not well-formed or did not validate against our"
            " published schema"
        )


class InvalidArgument(AwsError):
    code = "InvalidArgument"
    status = 400


@dataclass(frozen=True)
class Route:
    """How one operation is addressed: method, path form and what must be in the request."""

    operation: str
    method: str
    form: str  # "service" (/), "bucket" (/{Bucket}) or "object" (/{Bucket}/{Key+})
    literals: tuple[tuple[str, str | None], ...]  # query keys (and values) of the requestUri
    required_query: tuple[str, ...]
    required_headers: tuple[str, ...]
    query_members: frozenset[str] = frozenset()
    deprecated: bool = False

    def score(
        self, query: dict[str, list[str]], headers: dict[str, str]
    ) -> tuple[int, int, int] | None:
        """How well the request fits (higher is more specific), None if it does not: what it
        requires, then how many of the request's query keys it knows, then not deprecated."""
        for key, value in self.literals:
            if key not in query or (value is not None and query[key][:1] != [value]):
                return None
        if any(key not in query for key in self.required_query):
            return None
        if any(name not in headers for name in self.required_headers):
            return None
        required = len(self.literals) + len(self.required_query) + len(self.required_headers)
        known = sum(1 for key in query if key in self.query_members)
        return required, known, 0 if self.deprecated else 1


def _route(op: OperationModel) -> Route:
    uri: str = op.http.get("requestUri", "/")
    path, _, query = uri.partition("?")
    form = "object" if "{Key+}" in path else "bucket" if "{Bucket}" in path else "service"
    literals: list[tuple[str, str | None]] = []
    for part in filter(None, query.split("&")):
        key, eq, value = part.partition("=")
        if key != "x-id":  # botocore adds it to some URLs; other clients do not send it
            literals.append((key, value if eq else None))
    required_query: list[str] = []
    required_headers: list[str] = []
    query_members: set[str] = set()
    shape = op.input_shape
    if shape is not None:
        for member in shape.members.values():
            if member.serialization.get("location") == "querystring":
                query_members.add(member.serialization.get("name", member.name))
        for name in shape.required_members:
            member = shape.members[name]
            location = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            if location == "querystring":
                required_query.append(wire)
            elif location == "header":
                required_headers.append(wire.lower())
    return Route(
        op.name, op.http["method"], form, tuple(literals), tuple(required_query),
        tuple(required_headers), frozenset(query_members), bool(op.deprecated),
    )  # fmt: skip


def split_path(path: str) -> tuple[str | None, str | None]:
    """``/<bucket>/<key>`` (raw, percent-encoded) as decoded bucket and key."""
    trimmed = path[1:] if path.startswith("/") else path
    if not trimmed:
        return None, None
    bucket, slash, key = trimmed.partition("/")
    return unquote(bucket), (unquote(key) if slash and key else None)


_UNSEEN = object()
_MEMO_SIZE = 4096


class RestXmlParser(ProtocolParser):
    def __init__(self, service_model: ServiceModel) -> None:
        super().__init__(service_model)
        self._chosen: dict[tuple[Any, ...], Route | None] = {}

    @cached_property
    def routes(self) -> dict[tuple[str, str], list[Route]]:
        table: dict[tuple[str, str], list[Route]] = {}
        for name in self.service_model.operation_names:
            route = _route(self.service_model.operation_model(name))
            table.setdefault((route.method, route.form), []).append(route)
        return table

    @cached_property
    def _asked(self) -> dict[tuple[str, str], tuple[frozenset[str], tuple[str, ...]]]:
        """Per (method, form): the query keys whose values some route names, and the headers
        some route requires: with the query's keys, all a route's fit depends on."""
        asked: dict[tuple[str, str], tuple[frozenset[str], tuple[str, ...]]] = {}
        for where, routes in self.routes.items():
            valued = {k for r in routes for k, v in r.literals if v is not None} | {"x-id"}
            headers = sorted({h for r in routes for h in r.required_headers})
            asked[where] = (frozenset(valued), tuple(headers))
        return asked

    def route(self, req: HttpRequest) -> Route | None:
        """The operation's route, remembered by what decides it (a small object's call asks
        twice, and every call of a kind asks the same: scoring a dozen routes each time was a
        sixth of a small PutObject's Python calls)."""
        bucket, key = split_path(req.path_style)
        form = "object" if key is not None else "bucket" if bucket is not None else "service"
        method = req.method.upper()
        valued, headers = self._asked.get((method, form), (frozenset(), ()))
        query = req.query
        memo = (
            method,
            form,
            tuple(sorted((k, query[k][0] if k in valued else None) for k in query)),
            tuple(h in req.headers for h in headers),
        )
        found = self._chosen.get(memo, _UNSEEN)
        if found is not _UNSEEN:
            return found  # type: ignore[return-value]
        best: tuple[tuple[int, int, int], Route] | None = None
        x_id = query.get("x-id", [None])[0]
        for route in self.routes.get((method, form), ()):
            if x_id is not None and x_id != route.operation:
                continue
            score = route.score(query, req.headers)
            if score is not None and (best is None or score > best[0]):
                best = (score, route)
        chosen = best[1] if best is not None else None
        if len(self._chosen) < _MEMO_SIZE:  # bounded: query keys are the caller's to vary
            self._chosen[memo] = chosen
        return chosen

    def operation_from_request(self, req: HttpRequest) -> str | None:
        route = self.route(req)
        return route.operation if route is not None else None

    def streams_body(self, req: HttpRequest) -> bool:
        route = self.route(req)
        return route is not None and self.streams_payload(
            self.service_model.operation_model(route.operation)
        )

    def streams_payload(self, op_model: OperationModel) -> bool:
        """Whether the operation's request body is a stream (left to the service to read)."""
        shape = op_model.input_shape
        if shape is None:
            return False
        payload = shape.serialization.get("payload")
        if payload is None:
            return False
        return bool(shape.members[payload].type_name == "blob")

    def parse(self, req: HttpRequest) -> tuple[OperationModel, dict[str, Any]]:
        op_model, params = self.decode(req)
        shape = op_model.input_shape
        payload = shape.serialization.get("payload") if shape is not None else None
        if payload is not None and self.streams_payload(op_model):
            # The streamed body is the service's to read; it is there, if empty.
            validate(op_model, {**params, payload: b""})
        else:
            validate(op_model, params)
        return op_model, params

    def decode(self, req: HttpRequest) -> tuple[OperationModel, dict[str, Any]]:
        route = self.route(req)
        if route is None:
            raise UnknownOperation(
                "The specified method is not allowed against this resource.",
                code="MethodNotAllowed",
                status=405,
            )
        op_model = self.service_model.operation_model(route.operation)
        shape = op_model.input_shape
        params: dict[str, Any] = {}
        if shape is None:
            return op_model, params
        bucket, key = split_path(req.path_style)
        payload = shape.serialization.get("payload")
        by_header = header_layout(shape)
        for lowered, text in req.headers.items():  # the dozen sent, not the forty it may have
            hit = by_header.get(lowered)
            if hit is not None:
                params[hit[0]] = self.header(hit[1], text, hit[2])
        for name, member, location, wire in layout(shape):
            if location == "header":
                continue  # above
            if location == "uri":
                value = bucket if wire == "Bucket" else key if wire == "Key" else None
                if value is not None:
                    params[name] = value
            elif location == "querystring":
                if wire in req.query:
                    params[name] = self.text(member, req.query[wire][0], wire)
            elif location == "headers":
                prefix = wire.lower()
                found = {
                    h[len(prefix) :]: v for h, v in req.headers.items() if h.startswith(prefix)
                }
                if found:
                    params[name] = found
            elif name == payload:
                value = self.payload(member, req.body)
                if value is not None:
                    params[name] = value
        if payload is None and req.body.strip() and self.has_body_members(shape):
            # No payload member: the body members make one document (SelectObjectContent).
            whole = self.payload(shape, req.body)
            for name, value in (whole or {}).items():
                if shape.members[name].serialization.get("location") is None:
                    params[name] = value
        return op_model, params

    @staticmethod
    def has_body_members(shape: Shape) -> bool:
        return any(m.serialization.get("location") is None for m in shape.members.values())

    # --- readers --------------------------------------------------------------------------

    def payload(self, shape: Shape, body: bytes) -> Any:
        if shape.type_name == "structure":
            if not body.strip():
                return None
            try:
                root = ET.fromstring(body)
            except ET.ParseError as exc:
                raise MalformedXML() from exc
            expected = shape.serialization.get("name", shape.name)
            if _local(root.tag) != expected:
                raise MalformedXML()
            return self.structure(shape, root)
        if shape.type_name == "blob":
            return None  # a stream: the service reads it
        return body.decode("utf-8", errors="replace") if body else None

    def structure(self, shape: Shape, element: ET.Element) -> dict[str, Any]:
        children: dict[str, list[ET.Element]] = {}
        for child in element:
            children.setdefault(_local(child.tag), []).append(child)
        attributes = {_local(k.replace("}", "}", 1)): v for k, v in element.attrib.items()}
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            if member.serialization.get("xmlAttribute"):
                wire = member.serialization.get("name", name).rsplit(":", 1)[-1]
                if wire in attributes:
                    out[name] = self.text(member, attributes[wire], wire, malformed=True)
                continue
            if member.type_name == "list" and member.serialization.get("flattened"):
                tag = member.member.serialization.get(
                    "name", member.serialization.get("name", name)
                )
                items = children.get(tag)
                if items:
                    out[name] = [self.node(member.member, item) for item in items]
                continue
            tag = member.serialization.get("name", name)
            found = children.get(tag)
            if found:
                out[name] = self.node(member, found[0])
        return out

    def node(self, shape: Shape, element: ET.Element) -> Any:
        kind = shape.type_name
        if kind == "structure":
            return self.structure(shape, element)
        if kind == "list":
            tag = shape.member.serialization.get("name", "member")
            return [self.node(shape.member, c) for c in element if _local(c.tag) == tag]
        if kind == "map":
            key_tag = shape.key.serialization.get("name", "key")
            value_tag = shape.value.serialization.get("name", "value")
            out: dict[str, Any] = {}
            for entry in element:
                k = next((c for c in entry if _local(c.tag) == key_tag), None)
                v = next((c for c in entry if _local(c.tag) == value_tag), None)
                if k is not None:
                    out[k.text or ""] = self.node(shape.value, v) if v is not None else None
            return out
        return self.text(shape, element.text or "", _local(element.tag), malformed=True)

    def text(self, shape: Shape, text: str, where: str, *, malformed: bool = False) -> Any:
        try:
            return scalar_from_text(shape.type_name, text)
        except (ValueError, OverflowError) as exc:
            if malformed:
                raise MalformedXML() from exc
            raise InvalidArgument(f"Invalid argument {where}: {text!r}") from exc

    def header(self, shape: Shape, text: str, wire: str) -> Any:
        if shape.type_name == "timestamp":
            try:
                return email.utils.parsedate_to_datetime(text).astimezone(dt.UTC)
            except (TypeError, ValueError):
                return self.text(shape, text, wire)
        if shape.type_name == "list":
            return [part.strip() for part in text.split(",") if part.strip()]
        if shape.type_name == "string" and shape.serialization.get("jsonvalue"):
            return text
        return self.text(shape, text, wire)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def http_date(value: Any) -> str:
    return email.utils.format_datetime(to_datetime(value), usegmt=True)


_Member = tuple[str, Shape, str | None, str]
# By the shape's id, the shape kept beside its layout so that an id is never reused under it
# (the models are loaded once, so this holds one entry per structure met).
_LAYOUTS: dict[int, tuple[Shape, tuple[_Member, ...]]] = {}


def layout(shape: Shape) -> tuple[_Member, ...]:
    """A structure's members as (name, shape, location, wire name), read from the model once
    per shape: botocore's ``serialization`` lookups, member by member, on every request cost a
    small object's call more than its headers."""
    found = _LAYOUTS.get(id(shape))
    if found is not None and found[0] is shape:
        return found[1]
    members = tuple(
        (name, member, member.serialization.get("location"),
         member.serialization.get("name", name))
        for name, member in shape.members.items()
    )  # fmt: skip
    _LAYOUTS[id(shape)] = (shape, members)
    return members


_BY_HEADER: dict[int, tuple[Shape, dict[str, tuple[str, Shape, str]]]] = {}


def header_layout(shape: Shape) -> dict[str, tuple[str, Shape, str]]:
    """A structure's header members by their header's lower-case name: (member name, shape,
    wire name)."""
    found = _BY_HEADER.get(id(shape))
    if found is not None and found[0] is shape:
        return found[1]
    by_header = {
        wire.lower(): (name, member, wire)
        for name, member, location, wire in layout(shape)
        if location == "header"
    }
    _BY_HEADER[id(shape)] = (shape, by_header)
    return by_header


_NAMED: dict[int, tuple[Shape, dict[str, tuple[Shape, str | None, str]]]] = {}


def named_layout(shape: Shape) -> dict[str, tuple[Shape, str | None, str]]:
    """:func:`layout` by member name."""
    found = _NAMED.get(id(shape))
    if found is not None and found[0] is shape:
        return found[1]
    named = {name: (member, location, wire) for name, member, location, wire in layout(shape)}
    _NAMED[id(shape)] = (shape, named)
    return named


class RestXmlSerializer(ProtocolSerializer):
    writer = XmlWriter()

    @cached_property
    def namespace(self) -> str:
        namespace: str = self.service_model.metadata.get("xmlNamespace", S3_NAMESPACE)
        return namespace if isinstance(namespace, str) else S3_NAMESPACE

    def serialize_response(
        self, op_model: OperationModel, result: dict[str, Any] | None, request_id: str
    ) -> HttpResponse:
        result = result or {}
        status = int(op_model.http.get("responseCode", 200))
        meta = result.get("ResponseMetadata")
        if isinstance(meta, dict) and meta.get("HTTPStatusCode"):
            status = int(meta["HTTPStatusCode"])
        headers = {"x-amz-request-id": request_id, "x-amz-id-2": request_id}
        shape = op_model.output_shape
        if shape is None:
            return HttpResponse(status, headers, b"")
        body_members: dict[str, Any] = {}
        payload = shape.serialization.get("payload")
        by_name = named_layout(shape)
        for name, value in result.items():  # a dozen results, not every member of the output
            entry = by_name.get(name)
            if entry is None or value is None:
                continue
            member, location, wire = entry
            if location == "header":
                headers[wire] = self.header_text(member, value)
            elif location == "headers":
                for key, item in value.items():
                    headers[f"{wire}{key}"] = str(item)
            elif location == "statusCode":
                status = int(value)
            elif name != payload:
                body_members[name] = value
        if payload is not None:
            member = shape.members[payload]
            value = result.get(payload)
            if member.type_name == "structure":
                if value is None:
                    return HttpResponse(status, headers, b"")
                root = member.serialization.get("name", member.name)
                body = self.document(root, member, value)
                headers["Content-Type"] = "application/xml"
                return HttpResponse(status, headers, body)
            return self.raw_payload(status, headers, value)
        if not body_members and op_model.name not in ROOT_ELEMENTS:
            return HttpResponse(status, headers, b"")
        root = ROOT_ELEMENTS.get(op_model.name, f"{op_model.name}Result")
        if op_model.name == "GetBucketLocation":
            # S3 writes the constraint as the root's text, not as a member element.
            text = escape(str(body_members.get("LocationConstraint") or ""))
            body = (
                f'{XML_DECLARATION}<LocationConstraint xmlns="{self.namespace}">{text}'
                "</LocationConstraint>"
            ).encode()
        else:
            body = self.document(root, shape, body_members)
        headers["Content-Type"] = "application/xml"
        return HttpResponse(status, headers, body)

    def document(self, root: str, shape: Shape, value: dict[str, Any]) -> bytes:
        out = [XML_DECLARATION, f'<{root} xmlns="{self.namespace}">']
        self.writer.members(shape, value, out)
        out.append(f"</{root}>")
        return "".join(out).encode("utf-8")

    @staticmethod
    def raw_payload(status: int, headers: dict[str, str], value: Any) -> HttpResponse:
        if isinstance(value, bytes | bytearray):
            return HttpResponse(status, headers, bytes(value))
        if isinstance(value, str):
            return HttpResponse(status, headers, value.encode("utf-8"))
        stream: AsyncIterator[bytes] = value
        return HttpResponse(status, headers, b"", stream=stream)

    @staticmethod
    def header_text(shape: Shape, value: Any) -> str:
        kind = shape.type_name
        if kind == "timestamp":
            return http_date(value)
        if kind == "boolean":
            return "true" if value else "false"
        if kind == "list":
            return ",".join(str(v) for v in value)
        return str(value)

    def serialize_error(
        self, error: AwsError, request_id: str, op_model: OperationModel | None = None
    ) -> HttpResponse:
        code = _ERROR_CODES.get(error.code, error.code)
        out = [XML_DECLARATION, f"<Error><Code>{escape(code)}</Code>"]
        out.append(f"<Message>{escape(error.message or '')}</Message>")
        for key, value in error.extra.items():
            if value is not None and key not in ("Code", "Message", "RequestId"):
                out.append(f"<{key}>{escape(str(value))}</{key}>")
        out.append(f"<RequestId>{escape(request_id)}</RequestId>")
        out.append(f"<HostId>{escape(request_id)}</HostId></Error>")
        headers = {
            "Content-Type": "application/xml",
            "x-amz-request-id": request_id,
            "x-amz-id-2": request_id,
        }
        return HttpResponse(error.status, headers, "".join(out).encode("utf-8"))
