"""The ``ec2`` protocol: EC2's own variant of ``query``.

:class:`Ec2Parser` extends :class:`~.query.QueryParser` with EC2's input naming (``queryName``,
else the capitalised ``locationName``, else the member name) and ``Name.N`` lists without
``.member`` (flattened or not). :class:`Ec2Serializer` extends
:class:`~.query.QuerySerializer`: no ``Result`` wrapper, ``<requestId>`` first in the
response element, lists as ``<item>`` (the models' list-member ``locationName``), and the
``<Response><Errors><Error>..</Error></Errors><RequestID>..</RequestID></Response>`` error form.
"""

from __future__ import annotations

from typing import Any

from botocore.model import OperationModel, Shape

from emustudio.aws.errors import AwsError
from emustudio.aws.http import HttpResponse
from emustudio.aws.protocol.naming import ec2_name
from emustudio.aws.protocol.query import Node, QueryParser, QuerySerializer, indexed
from emustudio.aws.protocol.xmlout import escape, escape_attr

_XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'


class Ec2Parser(QueryParser):
    def wire_name(self, member_name: str, shape: Shape) -> str:
        return ec2_name(member_name, shape)

    def member_node(self, parent: Node, member_name: str, shape: Shape) -> tuple[str, Node] | None:
        name = self.wire_name(member_name, shape)
        node = parent.children.get(name)
        return None if node is None else (name, node)

    def list_items(self, shape: Shape, node: Node, path: str) -> tuple[str, list[tuple[int, Node]]]:
        return path, indexed(node)


class Ec2Serializer(QuerySerializer):
    @property
    def namespace(self) -> str:
        # EC2 answers with the trailing slash its model's xmlNamespace lacks.
        base: str = self.service_model.metadata.get("xmlNamespace", "")
        api_version: str = self.service_model.api_version
        if not base:
            base = f"http://ec2.amazonaws.com/doc/{api_version}"
        return base if base.endswith("/") else base + "/"

    def _headers(self, request_id: str) -> dict[str, str]:
        return {"Content-Type": "text/xml;charset=UTF-8", "x-amzn-RequestId": request_id}

    def serialize_response(
        self, op_model: OperationModel, result: dict[str, Any] | None, request_id: str
    ) -> HttpResponse:
        name = op_model.name
        out = [
            _XML_DECL,
            f'<{name}Response xmlns="{escape_attr(self.namespace)}">',
            f"<requestId>{escape(request_id)}</requestId>",
        ]
        shape = op_model.output_shape
        if shape is not None:
            self.writer.members(shape, result or {}, out)
        out.append(f"</{name}Response>")
        return HttpResponse(200, self._headers(request_id), "".join(out).encode("utf-8"))

    def serialize_error(
        self, error: AwsError, request_id: str, op_model: OperationModel | None = None
    ) -> HttpResponse:
        out = [
            _XML_DECL,
            "<Response><Errors><Error>",
            f"<Code>{escape(error.code)}</Code>",
        ]
        if error.message:
            out.append(f"<Message>{escape(error.message)}</Message>")
        self.writer.error_extras(self.error_shape(error.code), error.extra, out)
        out.append(f"</Error></Errors><RequestID>{escape(request_id)}</RequestID></Response>")
        return HttpResponse(error.status, self._headers(request_id), "".join(out).encode("utf-8"))
