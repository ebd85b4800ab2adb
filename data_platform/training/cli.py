"""`data-platform training ...`: stats, list, export, validate, migrate, bootstrap-bucket.

The store comes from the options, else from the seed's variables (TRAINING_STORAGE_BACKEND,
TRAINING_LOCAL_DIR, AWS_S3_BUCKET, TRAINING_S3_PREFIX); boto3 is imported only for S3.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from data_platform.core.aws import AwsSettings
from data_platform.core.aws_cli import aws_options, cli_s3_client, cli_s3_connection
from data_platform.core.terminal import StatusLine

if TYPE_CHECKING:
    from data_platform.training.backends import SampleStore


def _clean_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """The domain's errors become one line on stderr and exit status 1, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from data_platform.core.objectstore import ObjectStoreError
        from data_platform.s3sync import SyncError
        from data_platform.training.errors import TrainingError

        try:
            return func(*args, **kwargs)
        except (TrainingError, ObjectStoreError, SyncError) as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


def _store_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--backend/--local-dir/--bucket/--prefix + the AWS options; passes `open_backend`."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        choice = {name: kwargs.pop(name) for name in ("backend", "local_dir", "bucket", "prefix")}
        aws_settings: AwsSettings = kwargs.pop("aws_settings")
        kwargs["open_backend"] = lambda: _open_backend(aws_settings, **choice)
        return func(*args, **kwargs)

    options = [
        click.option(
            "--backend",
            type=click.Choice(["local", "s3"]),
            default=None,
            help="Where samples live (default: TRAINING_STORAGE_BACKEND, or s3 with --bucket).",
        ),
        click.option(
            "--local-dir",
            type=click.Path(path_type=Path, file_okay=False),
            default=None,
            help="Local sample folder (default: TRAINING_LOCAL_DIR or data/training).",
        ),
        click.option("--bucket", default=None, help="S3 bucket (default: AWS_S3_BUCKET)."),
        click.option(
            "--prefix", default=None, help="Key prefix in the bucket (default: training/)."
        ),
    ]
    wrapped: Callable[..., Any] = aws_options(_clean_errors(wrapper))
    for option in reversed(options):
        wrapped = option(wrapped)
    return wrapped


def _open_backend(aws_settings: AwsSettings, **choice: Any) -> SampleStore:
    from data_platform.training.backends import LocalStorageBackend, backend_from_env
    from data_platform.training.errors import TrainingError

    store = backend_from_env(**choice, client_factory=lambda: cli_s3_connection(aws_settings))
    # Every command here reads the store: a mistyped folder is an error, not an empty store.
    if isinstance(store, LocalStorageBackend) and not store.root.is_dir():
        raise TrainingError(
            f"sample folder {store.root} does not exist; check --local-dir or TRAINING_LOCAL_DIR"
        )
    return store


def _progress(status: StatusLine, verb: str) -> Callable[[int, int], None]:
    return lambda done, total: status.update(lambda: f"{verb} {done}/{total} files")


@click.group("training")
def training() -> None:
    """Training samples (JSONL, local folder or S3): stats, list, export, validate, migrate."""


@training.command("stats")
@click.argument("task", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the stats as JSON.")
@_store_options
def stats_command(task: str | None, as_json: bool, open_backend: Callable[[], SampleStore]) -> None:
    """Files, samples and bytes per task, from metadata and the shared cache (no body reads)."""
    status = StatusLine()
    stats = open_backend().get_dataset_stats(task, on_progress=_progress(status, "counted"))
    status.clear()
    if as_json:
        click.echo(json.dumps(stats, ensure_ascii=False, indent=2))
        return
    for name, entry in stats["tasks"].items():
        click.echo(
            f"{name:<24} {entry['files']:>8} files {entry['samples']:>10} samples "
            f"{entry['bytes']:>12} bytes  {entry['first_day']} .. {entry['last_day']}"
        )
    click.echo(
        f"{len(stats['tasks'])} tasks: {stats['files']} files, {stats['samples']} samples, "
        f"{stats['bytes']} bytes"
    )


@training.command("list")
@click.argument("task")
@click.option("--since", default=None, help="First day, YYYY-MM-DD (inclusive).")
@click.option("--until", default=None, help="Last day, YYYY-MM-DD (inclusive).")
@_store_options
def list_command(
    task: str, since: str | None, until: str | None, open_backend: Callable[[], SampleStore]
) -> None:
    """Paths (or s3:// URIs) of TASK's sample files, oldest day first."""
    locations = open_backend().list_samples(task, since, until)
    for location in locations:
        click.echo(location)
    click.echo(f"{len(locations)} files", err=True)


@training.command("export")
@click.argument("task")
@click.argument("out", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--since", default=None, help="First day, YYYY-MM-DD (inclusive).")
@click.option("--until", default=None, help="Last day, YYYY-MM-DD (inclusive).")
@click.option("--dedupe", is_flag=True, help="Drop samples whose input and output repeat.")
@click.option("--split", default=None, help="e.g. train=0.9,val=0.1: one file per split.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@_store_options
def export_command(
    task: str,
    out: Path,
    since: str | None,
    until: str | None,
    dedupe: bool,
    split: str | None,
    seed: int,
    as_json: bool,
    open_backend: Callable[[], SampleStore],
) -> None:
    """Write TASK's samples to OUT (JSONL); with --split to OUT's name + .<split>.jsonl."""
    from data_platform.training.export import export_task, parse_split

    fractions = parse_split(split) if split else None
    status = StatusLine()
    report = export_task(
        open_backend(),
        task,
        out,
        since=since,
        until=until,
        dedupe=dedupe,
        split=fractions,
        seed=seed,
        on_progress=_progress(status, "exported"),
    )
    status.clear()
    if as_json:
        click.echo(json.dumps(vars(report), ensure_ascii=False, indent=2))
    else:
        click.echo(report.summary())


@training.command("validate")
@click.argument("task")
@click.option("--since", default=None, help="First day, YYYY-MM-DD (inclusive).")
@click.option("--until", default=None, help="Last day, YYYY-MM-DD (inclusive).")
@click.option("-v", "--verbose", is_flag=True, help="One line per problem (file:line, path, kind).")
@click.option("--json", "as_json", is_flag=True, help="Print the problems as JSON.")
@_store_options
def validate_command(
    task: str,
    since: str | None,
    until: str | None,
    verbose: bool,
    as_json: bool,
    open_backend: Callable[[], SampleStore],
) -> None:
    """Scan TASK's samples for PII and broken lines (values are never printed); exit 1 if any."""
    from data_platform.training.validate import validate_task

    status = StatusLine()
    report = validate_task(open_backend(), task, since, until, _progress(status, "validated"))
    status.clear()
    if as_json:
        problems = [vars(problem) for problem in report.problems]
        click.echo(
            json.dumps({"files": report.files, "samples": report.samples, "problems": problems})
        )
    elif verbose:
        for problem in report.problems:
            click.echo(str(problem))
    else:
        for kind, count in sorted(Counter(p.kind for p in report.problems).items()):
            click.echo(f"{kind}: {count} (--verbose lists file, line and JSON path)")
    click.echo(report.summary(), err=as_json)
    if report.problems:
        raise SystemExit(1)


@training.command("migrate")
@click.option(
    "--from-local",
    "from_local",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Local sample folder (holds <task>/YYYY/MM/DD/*.jsonl).",
)
@click.option("--to", "to_url", required=True, help="Target, e.g. s3://bucket/training/.")
@click.option("--dry-run", is_flag=True, help="Print what would be uploaded; change nothing.")
@aws_options
@_clean_errors
def migrate_command(
    from_local: Path, to_url: str, dry_run: bool, aws_settings: AwsSettings
) -> None:
    """Copy a local sample folder to S3 with the S3 sync engine (identical files are skipped)."""
    from data_platform.core.paths import cache_dir
    from data_platform.s3sync import SyncOptions
    from data_platform.training.migrate import migrate

    options = SyncOptions(dry_run=dry_run, cache_dir=cache_dir())
    reports = migrate(cli_s3_connection(aws_settings), from_local, to_url, options)
    failed = 0
    for report in reports:
        for action, key in report.planned:
            click.echo(f"{action}: {key}")
        for failure in report.failures:
            click.echo(f"failed: {failure.name}: {failure.reason}", err=True)
        failed += report.failed
    moved = sum(r.transferred for r in reports)
    skipped = sum(r.skipped for r in reports)
    verb = "would upload" if dry_run else "uploaded"
    click.echo(
        f"{len(reports)} tasks: {verb} {moved} files, skipped {skipped} identical, failed {failed}"
    )
    if failed:
        raise SystemExit(1)


@training.command("bootstrap-bucket")
@click.option("--bucket", required=True, help="Bucket to create or check.")
@click.option(
    "--prefix", default="training/", show_default=True, help="Prefix of the Glacier rule."
)
@click.option(
    "--glacier-after-days",
    type=click.IntRange(1, None),
    default=90,
    show_default=True,
    help="Move samples to Glacier after this many days.",
)
@click.option("--dry-run", is_flag=True, help="Print the calls that would be made; change nothing.")
@aws_options
@_clean_errors
def bootstrap_bucket_command(
    bucket: str, prefix: str, glacier_after_days: int, dry_run: bool, aws_settings: AwsSettings
) -> None:
    """Create the bucket if missing; AES-256 default encryption, public access blocked, Glacier
    lifecycle on the prefix. Running it again changes nothing."""
    from data_platform.training.bucket import bootstrap_bucket

    report = bootstrap_bucket(
        cli_s3_client(aws_settings),
        bucket,
        region=aws_settings.region,
        prefix=prefix,
        glacier_after_days=glacier_after_days,
        dry_run=dry_run,
    )
    for name, params in report.calls:
        prefix_text = "would call" if dry_run else "called"
        click.echo(f"{prefix_text} {name} {json.dumps(params, sort_keys=True)}")
    click.echo(report.summary())
