"""EMR: Studios, their session mappings and tags, Workspaces, Studio sign-in URLs, and clusters
with their steps."""

from __future__ import annotations

from emustudio.services.emr.attach import AttachOperations
from emustudio.services.emr.cluster_life import ClusterLife
from emustudio.services.emr.cluster_settings import ClusterSettingOperations
from emustudio.services.emr.presigned import PresignedUrlOperations, StudioSignIns
from emustudio.services.emr.resize import ResizeOperations
from emustudio.services.emr.session_mappings import (
    IdentityDirectory,
    SessionMappingOperations,
    UnlinkedDirectory,
)
from emustudio.services.emr.steps import StepOperations
from emustudio.services.emr.studios import StudioOperations
from emustudio.services.emr.workspaces import WorkspaceManager
from emustudio.store import Store


class EmrService(
    StudioOperations,
    SessionMappingOperations,
    PresignedUrlOperations,
    AttachOperations,  # and EditorOperations
    StepOperations,
    ClusterSettingOperations,
    ResizeOperations,
):
    """The EMR operations emustudio answers; everything else in the model is NotImplemented.

    Its collaborators are optional (a unit test needs none): ``workspaces`` runs the Editor
    operations' containers, ``directory`` resolves session mappings' identities, ``sign_ins``
    makes ``CreateStudioPresignedUrl``'s one-time URLs, ``idc_instance_arn`` is the Identity
    Center instance ``CreateStudio`` accepts, ``clusters`` runs clusters and their steps.
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
        clusters: ClusterLife | None = None,
        max_cluster_nodes: int = 5,
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
        self.clusters = clusters
        self.max_cluster_nodes = max_cluster_nodes


__all__ = ["EmrService"]
