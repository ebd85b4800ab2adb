"""`data-platform s3 upload|download`: sync a local folder with an S3 prefix.

The commands talk to S3 through obstore; boto3 is imported only when the credentials need it
(profiles, MFA, roles) or unfinished multipart uploads are looked for, so a no-op sync starts fast.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from data_platform.core.aws import AwsSettings, S3Connection, s3_connection
from data_platform.core.aws_cli import aws_options, prompt_for
from data_platform.core.paths import cache_dir
from data_platform.s3sync.hashing import MIB, PartPolicy
from data_platform.s3sync.inventory import SyncError
from data_platform.s3sync.sync import (
    DEFAULT_WORKERS,
    SyncOptions,
    SyncReport,
    check_upload_dir,
    download_prefix,
    upload_directory,
)

_MAX_WORKERS = 64


def _transfer_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--bucket", required=True, help="Bucket name (no s3:// scheme)."),
        click.option("--prefix", default="", help="Key prefix ('data' and 'data/' are the same)."),
        click.option("--dry-run", is_flag=True, help="Print the plan; change nothing."),
        click.option(
            "--workers",
            type=click.IntRange(1, _MAX_WORKERS),
            default=DEFAULT_WORKERS,
            show_default=True,
            help="Files transferred at the same time.",
        ),
        click.option(
            "--multipart-threshold-mb",
            type=click.IntRange(5, None),
            default=PartPolicy().threshold // MIB,
            show_default=True,
            help="Files at least this big go in parts.",
        ),
        click.option(
            "--part-size-mb",
            type=click.IntRange(5, 5120),
            default=PartPolicy().part_size // MIB,
            show_default=True,
            help="Part size of multipart transfers.",
        ),
        click.option(
            "--no-hash-cache",
            is_flag=True,
            help="Re-read every same-size file instead of trusting remembered MD5s.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return aws_options(func)


def _sync_options(
    dry_run: bool, workers: int, threshold_mb: int, part_mb: int, no_hash_cache: bool
) -> SyncOptions:
    return SyncOptions(
        dry_run=dry_run,
        policy=PartPolicy(threshold=threshold_mb * MIB, part_size=part_mb * MIB),
        workers=workers,
        cache_dir=None if no_hash_cache else cache_dir(),
    )


def _s3_client(aws_settings: AwsSettings) -> S3Connection:
    return s3_connection(aws_settings, prompt=prompt_for(aws_settings))


def _finish(report: SyncReport, bucket: str) -> None:
    for action, key in report.planned:
        click.echo(f"{action}: s3://{bucket}/{key}")
    for failure in report.failures:
        click.echo(f"failed: {failure.name}: {failure.reason}", err=True)
    click.echo(report.summary())
    if not report.ok:
        raise SystemExit(1)


def _stop_on_sigterm(signum: int, _frame: object) -> None:
    # Unwinds like Ctrl-C: transfers in flight remove their temporary files and abort their
    # multipart uploads before the process exits with 128 + SIGTERM.
    raise SystemExit(128 + signum)


def _run_stoppable(sync: Callable[[], SyncReport]) -> SyncReport:
    """Run a sync; on Ctrl-C or SIGTERM, once it has cleaned up, exit at once: a worker stuck in
    a stalled request (obstore calls cannot be interrupted) must not hold the exit."""
    try:
        return sync()
    except (KeyboardInterrupt, SystemExit) as exc:
        code = exc.code if isinstance(exc, SystemExit) else 130
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code if isinstance(code, int) else 1)


@click.group("s3")
def s3() -> None:
    """Sync a local folder with an S3 prefix (identical files are skipped by content)."""
    signal.signal(signal.SIGTERM, _stop_on_sigterm)


@s3.command("upload")
@click.option(
    "--local-dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder whose files are uploaded, relative paths kept.",
)
@_transfer_options
def upload_command(
    local_dir: Path,
    bucket: str,
    prefix: str,
    dry_run: bool,
    workers: int,
    multipart_threshold_mb: int,
    part_size_mb: int,
    no_hash_cache: bool,
    aws_settings: AwsSettings,
) -> None:
    """Upload LOCAL_DIR/** to s3://BUCKET/PREFIX/**, skipping objects already identical."""
    options = _sync_options(dry_run, workers, multipart_threshold_mb, part_size_mb, no_hash_cache)
    try:
        check_upload_dir(local_dir)
        connection = _s3_client(aws_settings)
        report = _run_stoppable(
            lambda: upload_directory(connection, local_dir, bucket, prefix, options)
        )
    except SyncError as exc:
        raise click.ClickException(str(exc)) from None
    _finish(report, bucket)


@s3.command("download")
@click.option(
    "--local-dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder the objects are written to (created if missing).",
)
@_transfer_options
def download_command(
    local_dir: Path,
    bucket: str,
    prefix: str,
    dry_run: bool,
    workers: int,
    multipart_threshold_mb: int,
    part_size_mb: int,
    no_hash_cache: bool,
    aws_settings: AwsSettings,
) -> None:
    """Download s3://BUCKET/PREFIX/** into LOCAL_DIR, skipping files already identical."""
    options = _sync_options(dry_run, workers, multipart_threshold_mb, part_size_mb, no_hash_cache)
    try:
        connection = _s3_client(aws_settings)
        report = _run_stoppable(
            lambda: download_prefix(connection, bucket, prefix, local_dir, options)
        )
    except SyncError as exc:
        raise click.ClickException(str(exc)) from None
    _finish(report, bucket)
