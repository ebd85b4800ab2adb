"""Directory <-> S3 prefix sync (seed 000): content-checked skips, concurrent transfers.

Plain Python; `cli.py` adds `data-platform s3 upload|download`.
"""

from data_platform.s3sync.hashing import PartPolicy
from data_platform.s3sync.inventory import SyncError
from data_platform.s3sync.sync import SyncOptions, SyncReport, download_prefix, upload_directory

__all__ = [
    "PartPolicy",
    "SyncError",
    "SyncOptions",
    "SyncReport",
    "download_prefix",
    "upload_directory",
]
