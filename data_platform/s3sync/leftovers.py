"""What a killed run (kill -9, power cut) leaves behind, removed by the next run.

SIGTERM and Ctrl-C are handled while the run is alive (temporary files removed, multipart
uploads aborted); these cover the cases where no handler ran.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from data_platform.s3sync.inventory import TEMP_SUFFIX

if TYPE_CHECKING:
    from data_platform.s3sync.remote import Remote

log = logging.getLogger(__name__)

STALE_UPLOAD_AGE = timedelta(hours=1)


def remove_temp_files(local_dir: Path) -> int:
    """Delete our `.<name>.<random>.s3sync-tmp` download files under `local_dir`; returns how
    many. Two downloads into one folder at once are not supported (they never were safe)."""
    removed = 0
    for folder, _dirs, names in os.walk(local_dir):
        for name in names:
            if name.startswith(".") and name.endswith(TEMP_SUFFIX):
                try:
                    os.unlink(os.path.join(folder, name))
                    removed += 1
                except FileNotFoundError:
                    pass
    if removed:
        log.info("removed %d temporary file(s) of an interrupted download", removed)
    return removed


def abort_stale_uploads(remote: Remote, prefix: str, keys: set[str], older_than: timedelta) -> int:
    """Abort unfinished multipart uploads to `keys` (ours, under `prefix`) started more than
    `older_than` ago; younger ones may belong to a run still going. Returns how many. Through
    boto3: obstore cannot list multipart uploads."""
    from botocore.exceptions import BotoCoreError, ClientError

    from data_platform.s3sync.remote import RemoteError

    client = remote.boto3()
    aborted = 0
    paginator = client.get_paginator("list_multipart_uploads")
    cutoff = datetime.now(UTC) - older_than
    try:
        for page in paginator.paginate(Bucket=remote.bucket, Prefix=prefix):
            for upload in page.get("Uploads", ()):
                if upload["Key"] in keys and upload["Initiated"] <= cutoff:
                    client.abort_multipart_upload(
                        Bucket=remote.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    aborted += 1
    except (BotoCoreError, ClientError) as exc:
        raise RemoteError(str(exc)) from exc
    if aborted:
        log.info("aborted %d unfinished multipart upload(s) under %s", aborted, prefix)
    return aborted
