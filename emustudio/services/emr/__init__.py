"""EMR: Studios, their session mappings and tags, Workspaces, and Studio sign-in URLs."""

from __future__ import annotations

from emustudio.services.emr.editors import EditorOperations
from emustudio.services.emr.presigned import PresignedUrlOperations, StudioSignIns
from emustudio.services.emr.session_mappings import (
    IdentityDirectory,
    SessionMappingOperations,
    UnlinkedDirectory,
)
from emustudio.services.emr.studios import StudioOperations
from emustudio.services.emr.workspaces import WorkspaceManager
from emustudio.store import Store


class EmrService(
    StudioOperations, SessionMappingOperations, EditorOperations, PresignedUrlOperations
):
    """The EMR operations emustudio answers; everything else in the model is NotImplemented.

    Its collaborators are optional (a unit test needs none): ``workspaces`` runs the Editor
    operations' containers, ``directory`` resolves session mappings' identities, ``sign_ins``
    makes ``CreateStudioPresignedUrl``'s one-time URLs, ``idc_instance_arn`` is the Identity
    Center instance ``CreateStudio`` accepts.
    """

    def __init__(
        self,
        store: Store,
        *,
        region: str,
        account_id: str,
        studio_url: str,
        page_size: int = 50,
        max_studios: int = 100,
        workspaces: WorkspaceManager | None = None,
        directory: IdentityDirectory | None = None,
        sign_ins: StudioSignIns | None = None,
        idc_instance_arn: str | None = None,
    ) -> None:
        super().__init__(
            store,
            region=region,
            account_id=account_id,
            studio_url=studio_url,
            page_size=page_size,
            max_studios=max_studios,
        )
        self.workspaces = workspaces
        self.directory = directory or UnlinkedDirectory()
        self.sign_ins = sign_ins
        self.idc_instance_arn = idc_instance_arn


__all__ = ["EmrService"]
