"""The ``query`` protocol (IAM, STS): form-encoded input, XML output.

:class:`QueryParser` (a :class:`~.base.ProtocolParser`) merges the query string and the
``application/x-www-form-urlencoded`` body, splits every key on ``.`` into a tree, then walks
the input shape over that tree: ``Name.member.N`` lists (or flattened, or the list member's
``locationName``), ``Name.entry.N.key``/``.value`` maps, ``Struct.Member`` structures, an
empty list as ``Name=``. Scalars are converted from text (``true``/``false``, ISO 8601,
base64); text that does not convert is ``InvalidParameterValue``. The naming and list hooks
(:meth:`QueryParser.wire_name`, :meth:`QueryParser.list_items`) are what EC2 overrides.

:class:`QuerySerializer` (a :class:`~.base.ProtocolSerializer`) writes
``<OpResponse xmlns=..><OpResult>..</OpResult><ResponseMetadata>..`` and
``<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>``.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl

from botocore.model import OperationModel, Shape

from emustudio.aws.errors import AwsError, UnknownOperation
from emustudio.aws.http import HttpRequest, HttpResponse
from emustudio.aws.protocol.base import (
    ProtocolParser,
    ProtocolSerializer,
    scalar_from_text,
)
from emustudio.aws.protocol.naming import query_name
from emustudio.aws.protocol.xmlout import XmlWriter, escape, escape_attr

_TYPE_NAMES = {
    "integer": "Integer",
    "long": "Long",
    "float": "Float",
    "double": "Double",
    "boolean": "Boolean",
    "timestamp": "Timestamp",
    "blob": "Blob",
}


class Node:
    """One dotted-key segment of the form: its own text (if sent) and its children."""

    __slots__ = ("children", "value")

    def __init__(self) -> None:
        self.value: str | None = None
        self.children: dict[str, Node] = {}


def build_tree(pairs: list[tuple[str, str]]) -> Node:
    root = Node()
    for key, value in pairs:
        node = root
        for part in key.split("."):
            child = node.children.get(part)
            if child is None:
                child = node.children[part] = Node()
            node = child
        # First occurrence wins, as AWS reads repeated keys.
        if node.value is None:
            node.value = value
    return root


def indexed(node: Node) -> list[tuple[int, Node]]:
    """Children named by positive integers, in index order (gaps are tolerated)."""
    items = [(int(k), child) for k, child in node.children.items() if k.isdigit() and int(k) > 0]
    items.sort(key=lambda pair: pair[0])
    return items


def invalid_value(path: str, text: str | None, expected: str) -> AwsError:
    return AwsError(
        f"Value ({text}) for parameter {path} is invalid. Expected: '{expected}'.",
        code="InvalidParameterValue",
    )


class QueryParser(ProtocolParser):
    def form_pairs(self, req: HttpRequest) -> list[tuple[str, str]]:
        """Query-string then body parameters; the body wins on a repeated key."""
        body_pairs: list[tuple[str, str]] = []
        if req.body:
            try:
                text = req.body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise AwsError(
                    "The request body is not valid UTF-8", code="MalformedQueryString"
                ) from exc
            body_pairs = parse_qsl(text, keep_blank_values=True)
        query_pairs = [(k, v) for k, values in req.query.items() for v in values[:1]]
        return body_pairs + query_pairs

    def operation_from_request(self, req: HttpRequest) -> str | None:
        try:
            tree = build_tree(self.form_pairs(req))
        except AwsError:
            return None
        action = tree.children.get("Action")
        name = action.value if action is not None else None
        return name if name in self.operation_names else None

    def decode(self, req: HttpRequest) -> tuple[OperationModel, dict[str, Any]]:
        tree = build_tree(self.form_pairs(req))
        action_node = tree.children.get("Action")
        action = action_node.value if action_node is not None else None
        if not action:
            raise UnknownOperation("Missing Action", code="MissingAction")
        if action not in self.operation_names:
            raise UnknownOperation(
                f"The action {action} is not valid for this web service.", code="InvalidAction"
            )
        op_model = self.service_model.operation_model(action)
        shape = op_model.input_shape
        params = self.structure(shape, tree, "") if shape is not None else {}
        return op_model, params

    # --- hooks EC2 overrides --------------------------------------------------------------

    def wire_name(self, member_name: str, shape: Shape) -> str:
        return query_name(member_name, shape)

    def member_node(self, parent: Node, member_name: str, shape: Shape) -> tuple[str, Node] | None:
        name = self.wire_name(member_name, shape)
        if shape.type_name == "list" and shape.serialization.get("flattened"):
            # botocore swaps the member's name for the list member's locationName, except
            # for an empty list, which stays under the member's own name.
            item_name = shape.member.serialization.get("name")
            if item_name and item_name in parent.children:
                return item_name, parent.children[item_name]
        node = parent.children.get(name)
        return None if node is None else (name, node)

    def list_items(self, shape: Shape, node: Node, path: str) -> tuple[str, list[tuple[int, Node]]]:
        """The element nodes of a list node and the path prefix their indices follow."""
        if shape.serialization.get("flattened"):
            return path, indexed(node)
        item_name: str = shape.member.serialization.get("name", "member")
        holder = node.children.get(item_name)
        return f"{path}.{item_name}", indexed(holder) if holder is not None else []

    # --- readers --------------------------------------------------------------------------

    def read(self, shape: Shape, node: Node, path: str) -> Any:
        type_name = shape.type_name
        if type_name == "structure":
            return self.structure(shape, node, path)
        if type_name == "list":
            prefix, items = self.list_items(shape, node, path)
            return [self.read(shape.member, child, f"{prefix}.{i}") for i, child in items]
        if type_name == "map":
            return self.map(shape, node, path)
        return self.scalar(shape, node.value, path)

    def structure(self, shape: Shape, node: Node, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            found = self.member_node(node, name, member)
            if found is None:
                continue
            wire, child = found
            child_path = f"{path}.{wire}" if path else wire
            if member.type_name in ("structure", "list", "map"):
                if not child.children and child.value not in (None, ""):
                    raise invalid_value(child_path, child.value, member.type_name.capitalize())
                out[name] = self.read(member, child, child_path)
            elif child.value is not None:
                out[name] = self.scalar(member, child.value, child_path)
        return out

    def map(self, shape: Shape, node: Node, path: str) -> dict[Any, Any]:
        if shape.serialization.get("flattened"):
            prefix, entries = path, indexed(node)
        else:
            holder = node.children.get("entry")
            prefix, entries = f"{path}.entry", indexed(holder) if holder is not None else []
        key_name: str = shape.key.serialization.get("name", "key")
        value_name: str = shape.value.serialization.get("name", "value")
        out: dict[Any, Any] = {}
        for i, entry in entries:
            key_node = entry.children.get(key_name)
            if key_node is None or key_node.value is None:
                continue
            key = self.scalar(shape.key, key_node.value, f"{prefix}.{i}.{key_name}")
            value_node = entry.children.get(value_name)
            out[key] = (
                None
                if value_node is None
                else self.read(shape.value, value_node, f"{prefix}.{i}.{value_name}")
            )
        return out

    def scalar(self, shape: Shape, text: str | None, path: str) -> Any:
        type_name = shape.type_name
        if text is None:
            # Only sub-keys were sent for a scalar: there is no value to read.
            raise invalid_value(path, text, _TYPE_NAMES.get(type_name, "String"))
        expected = _TYPE_NAMES.get(type_name)
        if expected is None:
            return text
        try:
            return scalar_from_text(type_name, text)
        except (ValueError, OverflowError) as exc:
            raise invalid_value(path, text, expected) from exc


class QuerySerializer(ProtocolSerializer):
    writer = XmlWriter()

    @cached_property
    def namespace(self) -> str:
        namespace: str = self.service_model.metadata.get("xmlNamespace", "")
        return namespace

    def _headers(self, request_id: str) -> dict[str, str]:
        return {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}

    def serialize_response(
        self, op_model: OperationModel, result: dict[str, Any] | None, request_id: str
    ) -> HttpResponse:
        name = op_model.name
        out = [f'<{name}Response xmlns="{escape_attr(self.namespace)}">']
        shape = op_model.output_shape
        if shape is not None:
            wrapper = shape.serialization.get("resultWrapper")
            if wrapper:
                out.append(f"<{wrapper}>")
            self.writer.members(shape, result or {}, out)
            if wrapper:
                out.append(f"</{wrapper}>")
        out.append(
            f"<ResponseMetadata><RequestId>{escape(request_id)}</RequestId></ResponseMetadata>"
        )
        out.append(f"</{name}Response>")
        return HttpResponse(200, self._headers(request_id), "".join(out).encode("utf-8"))

    def serialize_error(
        self, error: AwsError, request_id: str, op_model: OperationModel | None = None
    ) -> HttpResponse:
        kind = "Sender" if error.sender_fault else "Receiver"
        out = [
            f'<ErrorResponse xmlns="{escape_attr(self.namespace)}"><Error>',
            f"<Type>{kind}</Type><Code>{escape(error.code)}</Code>",
        ]
        if error.message:
            out.append(f"<Message>{escape(error.message)}</Message>")
        self.writer.error_extras(self.error_shape(error.code), error.extra, out)
        out.append(f"</Error><RequestId>{escape(request_id)}</RequestId></ErrorResponse>")
        return HttpResponse(error.status, self._headers(request_id), "".join(out).encode("utf-8"))
