"""Wire names of input members, shared by the parsers and the validation messages.

The query protocol names a member by its ``locationName`` (else the member name); EC2's
variant prefers ``queryName``, then the *capitalised* ``locationName``, then the member name,
exactly as botocore's ``QuerySerializer`` and ``EC2Serializer`` write them.
"""

from __future__ import annotations

from botocore.model import Shape


def query_name(member_name: str, shape: Shape) -> str:
    name: str = shape.serialization.get("name", member_name)
    return name


def ec2_name(member_name: str, shape: Shape) -> str:
    serialization = shape.serialization
    if "queryName" in serialization:
        query: str = serialization["queryName"]
        return query
    if "name" in serialization:
        location: str = serialization["name"]
        return location[:1].upper() + location[1:]
    return member_name


def lower_camel(name: str) -> str:
    """Coral's spelling of a member in validation messages: ``StudioId`` -> ``studioId``."""
    return name[:1].lower() + name[1:]
