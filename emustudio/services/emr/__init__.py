"""EMR: Studios, their session mappings and tags, Workspaces, Studio sign-in URLs, and clusters
with their steps."""

from emustudio.services.emr.editors import EditorOperations
from emustudio.services.emr.presigned import PresignedUrlOperations
from emustudio.services.emr.session_mappings import SessionMappingOperations
from emustudio.services.emr.steps import StepOperations
from emustudio.services.emr.studios import StudioOperations


class EmrService(
    StudioOperations,
    SessionMappingOperations,
    EditorOperations,
    PresignedUrlOperations,
    StepOperations,
):
    """The EMR operations emustudio answers; everything else in the model is NotImplemented."""


__all__ = ["EmrService"]
