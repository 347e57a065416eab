"""The S3 copy of every Workspace's files: sync on save, at a cadence and before a stop;
restore on start; deleting a file deletes its copy, deleting a Workspace keeps them.

Only the gateway holds S3 credentials: it follows each Workspace's change feed, reads files
over the Workspace's contents API and writes ``<S3 location>/<e-ID>/<path>`` through the
``minio`` SDK (:mod:`.engine` tells the whole story).
"""

from emustudio.backup.engine import BackupEngine
from emustudio.backup.s3client import Location, S3Client, S3Endpoint, S3Failure

__all__ = ["BackupEngine", "Location", "S3Client", "S3Endpoint", "S3Failure"]
