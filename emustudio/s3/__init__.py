"""The embedded S3 server that ``emustudio up`` runs when no S3 endpoint is configured."""

from emustudio.s3.server import EmbeddedS3, S3ServerError, find_rclone

__all__ = ["EmbeddedS3", "S3ServerError", "find_rclone"]
