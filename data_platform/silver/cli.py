"""`data-platform silver load`: raw CSV/Parquet snapshots from a folder or S3 into Postgres.

polars, psycopg2 and boto3 are imported inside the command so the rest of the CLI stays fast.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import click

from data_platform.core.aws import AwsSettings
from data_platform.core.aws_cli import aws_options, cli_s3_connection
from data_platform.core.terminal import StatusLine
from data_platform.silver.presets import (
    DEFAULT_PRESETS_DIR,
    DEFAULT_SNAPSHOT_COLUMNS,
    FILE_FORMATS,
    PRESETS_DIR_VARIABLE,
)

if TYPE_CHECKING:
    from data_platform.core.partitions import SnapshotKey
    from data_platform.core.postgres import PostgresSettings
    from data_platform.silver.loader import SnapshotLoad
    from data_platform.silver.presets import TablePreset
    from data_platform.silver.sources import SourceFile

DEFAULT_PRESET = "silver_stage_1_main"


@click.group()
def silver() -> None:
    """Load raw CSV/Parquet snapshots (year=/month=/region=/sigungu= folders) into Postgres."""


@silver.command("load")
@click.option(
    "--local-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder holding year=YYYY/month=MM/region=R/sigungu=S/ folders.",
)
@click.option("--bucket", default=None, help="Load from this S3 bucket instead of a folder.")
@click.option("--prefix", default="", help="Key prefix inside --bucket (e.g. raw/<dataset>/).")
@click.option(
    "--file-format",
    type=click.Choice(FILE_FORMATS),
    default=None,
    help="Which files to load (default: the preset's file_format, usually auto).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="List snapshots, files, encodings and row counts; change nothing.",
)
@click.option("--db-url", default=None, help="postgresql://... (wins over --target and env).")
@click.option(
    "--target",
    type=click.Choice(["local", "rds"]),
    default="local",
    show_default=True,
    help="local: PG* variables; rds: RDS_HOST/PORT/DB/USER/PASSWORD (sslmode require).",
)
@click.option("--rds-sslmode", default=None, help="sslmode for the connection (e.g. verify-full).")
@click.option(
    "--table",
    "preset_name",
    default=DEFAULT_PRESET,
    show_default=True,
    help="Table preset to load into.",
)
@click.option(
    "--presets-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=DEFAULT_PRESETS_DIR,
    envvar=PRESETS_DIR_VARIABLE,
    show_default=True,
    show_envvar=True,
    help="Your presets (TOML/JSON); they add to and override the built-in ones.",
)
@click.option(
    "--infer-schema",
    is_flag=True,
    help="No preset with that name? Derive one from "
    "the files, save it to --presets-dir for review, and load with it.",
)
@click.option(
    "--chunk-rows",
    type=click.IntRange(min=1),
    default=50_000,
    show_default=True,
    help="Rows per batch where rows pass through Python (Parquet, transformed CSV).",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Parallel COPY streams per file, each on its own connection "
    "[default: the number of cores, at least 2].",
)
@click.option(
    "--allow-empty",
    is_flag=True,
    help="Let a snapshot whose files hold no data rows replace (empty) the loaded one.",
)
@aws_options
def load(
    local_dir: Path | None,
    bucket: str | None,
    prefix: str,
    file_format: str | None,
    dry_run: bool,
    db_url: str | None,
    target: str,
    rds_sslmode: str | None,
    preset_name: str,
    presets_dir: Path,
    infer_schema: bool,
    chunk_rows: int,
    jobs: int | None,
    allow_empty: bool,
    aws_settings: AwsSettings,
) -> None:
    """Load every snapshot found; each snapshot replaces its old rows in one transaction."""
    from data_platform.core.partitions import PartitionPathError
    from data_platform.core.postgres import PostgresError
    from data_platform.silver.errors import SilverLoadError
    from data_platform.silver.presets import PresetError, load_preset
    from data_platform.silver.sources import group_by_snapshot

    if (local_dir is None) == (bucket is None):
        raise click.UsageError("give either --local-dir or --bucket (with --prefix)")
    try:
        preset = load_preset(preset_name, presets_dir)
    except PresetError as exc:
        if not infer_schema:
            raise click.ClickException(str(exc)) from None
        preset = None
    fmt = file_format or (preset.file_format if preset else "auto")
    try:
        files = _sources(local_dir, bucket, prefix, fmt, aws_settings)
        snapshots = group_by_snapshot(files)
        if preset is None:
            preset = _infer(preset_name, files, presets_dir, dry_run)
        if dry_run:
            _dry_run(preset, snapshots)
            return
        settings = _pg_settings(db_url, target, rds_sslmode, os.environ)
        from data_platform.silver.loader import default_jobs

        jobs = jobs or default_jobs()
        _load_all(settings, preset, snapshots, chunk_rows, jobs, allow_empty)
    except (PartitionPathError, SilverLoadError, PresetError, PostgresError, OSError) as exc:
        raise click.ClickException(str(exc)) from None


def _sources(
    local_dir: Path | None, bucket: str | None, prefix: str, fmt: str, aws: AwsSettings
) -> list[SourceFile]:
    from data_platform.silver.sources import local_sources, object_store_sources

    if local_dir is not None:
        files, where = local_sources(local_dir, fmt), str(local_dir)
    else:
        from data_platform.core.objectstore_s3 import S3ObjectStore

        store = S3ObjectStore(cli_s3_connection(aws), bucket or "")
        files = object_store_sources(store, prefix, fmt)
        where = f"s3://{bucket}/{prefix}"
    if not files:
        kinds = {"auto": ".csv, .csv.gz or .parquet", "csv": ".csv or .csv.gz"}.get(fmt, ".parquet")
        raise click.ClickException(f"no {kinds} files under {where}")
    return files


def _infer(name: str, files: list[SourceFile], presets_dir: Path, dry_run: bool) -> TablePreset:
    from data_platform.silver.presets import preset_to_toml, save_preset
    from data_platform.silver.schema_inference import DEFAULT_SAMPLE_ROWS, infer_preset

    preset = infer_preset(name, files)
    comment = (
        f"Inferred by `data-platform silver load --infer-schema` from {len(files)} file(s) "
        f"(up to {DEFAULT_SAMPLE_ROWS:,} rows each).\nReview the types before relying on it; "
        f"{', '.join(DEFAULT_SNAPSHOT_COLUMNS)} come from the folder names."
    )
    if dry_run:
        click.echo(f"inferred preset (dry run, not saved):\n{preset_to_toml(preset, comment)}")
    else:
        path = save_preset(preset, presets_dir, comment)
        click.echo(f"inferred preset {name!r} saved to {path}; review and edit it as needed")
    return preset


def _pg_settings(
    db_url: str | None, target: str, sslmode: str | None, env: Mapping[str, str]
) -> PostgresSettings:
    from data_platform.core.postgres import PostgresSettings

    if db_url:
        return PostgresSettings.from_url(db_url, sslmode=sslmode)
    if target == "rds":
        if not env.get("RDS_HOST"):
            raise click.ClickException(
                "--target rds needs RDS_HOST (and RDS_PORT, RDS_DB, RDS_USER, RDS_PASSWORD) "
                "in the environment, or --db-url"
            )
        return PostgresSettings.from_env(env, prefix="RDS_", rds=True, sslmode=sslmode)
    return PostgresSettings.from_env(env, sslmode=sslmode)


def _describe(load: SnapshotLoad) -> str:
    encodings = sorted({f.encoding or f.file_format for f in load.files})
    files = f"{len(load.files)} file(s)"
    return f"{load.snapshot.path()}: {files}, {load.rows:,} rows ({', '.join(encodings)})"


def _dry_run(preset: TablePreset, snapshots: dict[SnapshotKey, list[SourceFile]]) -> None:
    from data_platform.silver.loader import plan_snapshot

    total = 0
    for snapshot, files in snapshots.items():
        plan = plan_snapshot(preset, snapshot, files)
        total += plan.rows
        click.echo(_describe(plan))
        for file in plan.files:
            click.echo(f"  {file.name}  {file.encoding or file.file_format}  {file.rows:,} rows")
    click.echo(
        f"dry run: {len(snapshots)} snapshot(s), {total:,} rows would replace their snapshots "
        f"in {preset.schema}.{preset.table}; nothing was changed"
    )


class _Progress:
    """The file being loaded and its rows so far, on a terminal."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.index = 0
        self.line = StatusLine()

    def __call__(self, name: str, rows: int) -> None:
        shown = name if len(name) <= 60 else "..." + name[-57:]
        self.line.update(lambda: f"[{self.index}/{self.total}] {shown}: {rows:,} rows")

    def clear(self) -> None:
        self.line.clear()


def _load_all(
    settings: PostgresSettings,
    preset: TablePreset,
    snapshots: dict[SnapshotKey, list[SourceFile]],
    chunk_rows: int,
    jobs: int,
    allow_empty: bool,
) -> None:
    from data_platform.core.postgres import connect
    from data_platform.silver.errors import SilverLoadError
    from data_platform.silver.loader import load_snapshot

    started = time.monotonic()
    progress = _Progress(len(snapshots))
    failures: list[str] = []
    rows = 0
    conns = [connect(settings)]
    try:
        conns += [connect(settings) for _ in range(jobs - 1)]
        for snapshot, files in snapshots.items():
            progress.index += 1
            try:
                result = load_snapshot(
                    conns[0],
                    preset,
                    snapshot,
                    files,
                    copy_connections=conns[1:],
                    chunk_rows=chunk_rows,
                    on_progress=progress,
                    allow_empty=allow_empty,
                )
            except SilverLoadError as exc:
                progress.clear()
                failures.append(str(exc))
                click.echo(f"FAILED {snapshot.path()} (left as it was): {exc}", err=True)
                continue
            progress.clear()
            rows += result.rows
            click.echo(f"loaded {_describe(result)}")
    finally:
        for conn in conns:
            conn.close()
    loaded, seconds = len(snapshots) - len(failures), time.monotonic() - started
    click.echo(
        f"{loaded} snapshot(s), {rows:,} rows into {preset.schema}.{preset.table} "
        f"in {seconds:.1f} s ({settings.url()})"
    )
    if failures:
        raise click.ClickException(
            f"{len(failures)} of {len(snapshots)} snapshot(s) failed and were left unchanged; "
            "fix the files named above and run again"
        )
