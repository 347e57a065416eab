"""emustudio for your tests: a real gateway per test session, as pytest fixtures.

Installing emustudio registers the plugin (entry point ``pytest11``); the fixtures are prefixed
``emu_`` and documented in :mod:`emustudio.testing.plugin`. See ``examples/pytest`` for a project
that uses them. The types here are what the fixtures hand out, for annotations.
"""

from emustudio.testing.clients import boto3_client
from emustudio.testing.gateway import GatewayProcess
from emustudio.testing.resources import (
    Boto3Factory,
    IamUser,
    IamUserFactory,
    Studio,
    Workspace,
    WorkspaceStartFailed,
)

__all__ = [
    "Boto3Factory",
    "GatewayProcess",
    "IamUser",
    "IamUserFactory",
    "Studio",
    "Workspace",
    "WorkspaceStartFailed",
    "boto3_client",
]
