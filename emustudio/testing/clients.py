"""boto3 clients for a gateway, including the services only emustudio's own models describe.

AWS has the Workspace operations (``CreateEditor``, ``StartEditor``...) only as IAM actions;
emustudio ships a supplemental botocore model for them, service ``emr-studio``, in
:data:`emustudio.aws.spec.DATA_PATH` (the same folder works as ``AWS_DATA_PATH``). Every client
made here can load it, so ``boto3_client("emr-studio", ...)`` works like ``"emr"``.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["boto3_client"]

# Clients come from boto3's default session, as ``boto3.client`` makes them: it keeps the models
# it loaded (the EC2 model alone takes a quarter of a second to read) and its event hooks see
# every call. Making clients from one session is not thread-safe, hence the lock.
_lock = threading.Lock()


def _boto3_session() -> Any:
    import boto3

    from emustudio.aws.spec import DATA_PATH

    session = boto3._get_default_session()
    loader = session._session.get_component("data_loader")
    paths = loader.search_paths
    if str(DATA_PATH) not in paths:
        paths.insert(0, str(DATA_PATH))
        # The loader caches its list of services: a client made before the path was added
        # (plain boto3.client) would otherwise leave "emr-studio" unknown to this session.
        getattr(loader, "_cache", {}).clear()
    return session


def boto3_client(
    service: str,
    endpoint_url: str,
    *,
    region_name: str = "us-east-1",
    aws_access_key_id: str,
    aws_secret_access_key: str,
    aws_session_token: str | None = None,
    **kwargs: Any,
) -> Any:
    """A boto3 client of ``service`` signed with the given keys, against ``endpoint_url``.

    Made from boto3's default session, whose model search path gains emustudio's supplemental
    models. ``kwargs`` go to :meth:`boto3.session.Session.client` (``config=`` for instance).
    """
    with _lock:
        return _boto3_session().client(
            service,
            endpoint_url=endpoint_url,
            region_name=region_name,
            aws_access_key_id=aws_access_key_id,
            aws_secret_access_key=aws_secret_access_key,
            aws_session_token=aws_session_token,
            **kwargs,
        )
