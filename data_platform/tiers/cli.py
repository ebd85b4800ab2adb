"""`data-platform tiers`: ingest raw slots, compact, checkpoint, vacuum and read the change log.

polars, boto3 and the engine are imported inside each command, so `--help` stays fast.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click

from data_platform.core.aws_cli import aws_options, cli_object_store


@click.group()
def tiers() -> None:
    """Hot/warm Parquet change log: 10-minute hot files, m=8 compaction, point-in-time reads."""


def store_command(func: Callable[..., Any]) -> Callable[..., Any]:
    """--store/--provider/--environment/--json + AWS options; domain errors become one line."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from data_platform.core.objectstore import ObjectStoreError
        from data_platform.tiers import ConcurrencyConflictError, TiersError
        from data_platform.tiers.config import load_provider_file

        aws = kwargs.pop("aws_settings")
        providers = kwargs.pop("providers")
        ingesting = "raw_url" in kwargs  # ingest reads the raw store and may start a new store
        kwargs["store"] = cli_object_store(kwargs.pop("store"), aws, existing=not ingesting)
        if ingesting:
            kwargs["raw_store"] = cli_object_store(kwargs.pop("raw_url"), aws, existing=True)
        try:
            if providers is not None:
                load_provider_file(providers)
            return func(*args, **kwargs)
        except (TiersError, ConcurrencyConflictError, ObjectStoreError) as exc:
            raise click.ClickException(str(exc)) from None

    options = [
        click.option("--store", required=True, help="s3://bucket/prefix or a local folder."),
        click.option("--provider", default="aws", show_default=True, help="aws, azure, gcp…"),
        click.option(
            "--providers",
            type=click.Path(path_type=Path, dir_okay=False),
            help="TOML file of more providers ([name] tables; keys in docs/tiers.md).",
        ),
        click.option(
            "--environment",
            type=click.Choice(["production", "test"]),
            default="production",
            show_default=True,
            help="test puts every key under test/.",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print the result as JSON."),
    ]
    wrapper = aws_options(wrapper)
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def moment(_ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not ISO 8601, e.g. 2026-01-23T14:20:00Z") from None
    if parsed.tzinfo is None:
        raise click.BadParameter(f"{value!r} has no time zone; add Z or +09:00")
    return parsed


def duration(_ctx: click.Context, _param: click.Parameter, value: str) -> timedelta:
    units = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
    try:
        span = timedelta(**{units[value[-1]]: float(value[:-1])})
    except (KeyError, ValueError, IndexError, OverflowError):
        raise click.BadParameter(f"{value!r}: use a number with d, h, m or s (e.g. 7d)") from None
    if span < timedelta(0):
        raise click.BadParameter(f"{value!r} is negative: use 0s or more (e.g. 7d)")
    return span


def emit(as_json: bool, payload: dict[str, Any], summary: str) -> None:
    click.echo(json.dumps(payload, indent=2, default=str) if as_json else summary)


def write_frame(frame: Any, output: Path | None, as_json: bool) -> str:
    if output is None:
        if not as_json:
            click.echo(frame)
        return ""
    if output.suffix == ".csv":
        frame.write_csv(output)
    elif output.suffix == ".parquet":
        frame.write_parquet(output)
    else:
        raise click.BadParameter(f"{output}: use a .parquet or .csv file name")
    return f" -> {output}"


OUTPUT = click.option(
    "--output", type=click.Path(path_type=Path, dir_okay=False), help="state.parquet|state.csv"
)


@tiers.command("state")
@store_command
@click.option("--at", required=True, callback=moment, help="ISO moment with zone.")
@OUTPUT
def state_command(store, provider, environment, as_json, at, output) -> None:
    """The latest row per key at a moment, and how many objects the read opened.

    \b
    Example:
      data-platform tiers state --store s3://lake/tiers --at 2026-01-23T14:20Z --output s.csv
    """
    from data_platform.tiers.reader import read_state_with_stats

    frame, stats = read_state_with_stats(provider, at, store=store, environment=environment)
    written = write_frame(frame, output, as_json)
    payload = {
        "rows": frame.height,
        "objects_read": len(stats.objects),
        "bytes_read": stats.bytes,
        "objects": stats.objects,
    }
    summary = (
        f"{frame.height} live rows at {at.isoformat()} from {len(stats.objects)} objects "
        f"({stats.bytes:,} bytes){written}"
    )
    emit(as_json, payload, summary)


@tiers.command("changes")
@store_command
@click.option("--start", required=True, callback=moment, help="Inclusive ISO moment.")
@click.option("--end", required=True, callback=moment, help="Exclusive ISO moment.")
@OUTPUT
def changes_command(store, provider, environment, as_json, start, end, output) -> None:
    """Every change with start ≤ Time < end, in time order.

    \b
    Example:
      data-platform tiers changes --store ./lake --start 2026-01-23T00:00Z --end 2026-01-24T00:00Z
    """
    from data_platform.tiers import read_changes

    frame = read_changes(provider, start, end, store=store, environment=environment)
    written = write_frame(frame, output, as_json)
    emit(as_json, {"rows": frame.height}, f"{frame.height} changes{written}")


@tiers.command("ingest")
@store_command
@click.option("--raw", "raw_url", required=True, help="Store holding rawdata/<provider>/…")
@click.option("--start", required=True, callback=moment, help="First slot (inclusive).")
@click.option("--end", required=True, callback=moment, help="Last slot (exclusive).")
@click.option(
    "--allow-empty",
    is_flag=True,
    help="Ingest a raw snapshot with no rows (every key Ceased) instead of refusing it.",
)
def ingest_command(
    store, provider, environment, as_json, raw_store, start, end, allow_empty
) -> None:
    """Diff consecutive raw snapshots and write the hot files not yet written.

    \b
    Example:
      data-platform tiers ingest --store s3://lake/tiers --raw s3://raw \\
        --start 2026-01-23T00:00Z --end 2026-01-24T00:00Z
    """
    from data_platform.core.terminal import StatusLine
    from data_platform.tiers.ingest import ingest_raw

    status = StatusLine()
    result = ingest_raw(
        provider,
        start,
        end,
        raw_store=raw_store,
        store=store,
        environment=environment,
        on_slot=lambda r: status.update(lambda: f"{r.slots} slots, {r.written} written"),
        allow_empty=allow_empty,
    )
    status.clear()
    emit(
        as_json,
        vars(result),
        f"{result.slots} raw slots: {result.written} hot files written, "
        f"{result.unchanged} already there, {result.rows} change rows",
    )


@tiers.command("compact")
@store_command
@click.option("--month", required=True, help="YYYY-MM")
def compact_command(store, provider, environment, as_json, month) -> None:
    """Compact every hot file of a month that its manifest does not hold yet.

    \b
    Example:
      data-platform tiers compact --store s3://lake/tiers --provider azure --month 2026-01
    """
    from data_platform.tiers import compact_month

    result = compact_month(provider, month, store=store, environment=environment)
    emit(
        as_json,
        vars(result) | {"noop": result.noop},
        f"{month}: {len(result.compacted_keys)} hot files compacted, "
        f"{len(result.files_added)} files added, manifest version {result.sequence}, "
        f"levels {result.level_sizes}",
    )


@tiers.command("checkpoint")
@store_command
@click.option("--month", required=True, help="YYYY-MM: state at the first instant of it.")
def checkpoint_command(store, provider, environment, as_json, month) -> None:
    """(Re)build a month's state checkpoint from the month before.

    \b
    Example:
      data-platform tiers checkpoint --store s3://lake/tiers --month 2026-02
    """
    from data_platform.tiers.checkpoint import write_checkpoint

    result = write_checkpoint(provider, month, store=store, environment=environment)
    emit(
        as_json,
        vars(result),
        f"{result.key}: {result.rows} rows, built from manifest version "
        f"{result.previous_sequence} of the month before",
    )


@tiers.command("vacuum")
@store_command
@click.option("--retention", default="7d", show_default=True, callback=duration)
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
def vacuum_command(store, provider, environment, as_json, retention, dry_run) -> None:
    """Delete merged files and manifest versions no version within retention needs.

    \b
    Example:
      data-platform tiers vacuum --store s3://lake/tiers --retention 7d --dry-run
    """
    from data_platform.tiers import vacuum

    result = vacuum(
        provider, store=store, environment=environment, retention=retention, dry_run=dry_run
    )
    verb = "would delete" if dry_run else "deleted"
    if not as_json:
        for key in result.deleted:
            click.echo(f"{verb} {key}")
    emit(
        as_json,
        vars(result),
        f"{verb} {len(result.deleted)} objects ({result.bytes_freed:,} bytes) "
        f"in {result.months} months; kept {result.kept}",
    )


@tiers.command("manifest")
@store_command
@click.option("--month", required=True, help="YYYY-MM")
def manifest_command(store, provider, environment, as_json, month) -> None:
    """A month's levels, files, sizes and version, and whether it is consistent.

    \b
    Example:
      data-platform tiers manifest --store s3://lake/tiers --month 2026-01 --json
    """
    from data_platform.tiers.verify import verify_month

    report = verify_month(provider, month, store=store, environment=environment)
    manifest = report.manifest
    if as_json:
        click.echo(
            json.dumps(
                json.loads(manifest.to_json())
                | {"problems": report.problems, "pending": report.pending},
                indent=2,
            )
        )
        return
    click.echo(
        f"{month}: version {manifest.sequence} committed {manifest.committed_at} "
        f"(previous {manifest.previous}); {manifest.processed_count} hot files compacted, "
        f"{len(report.pending)} pending"
    )
    for level, files in enumerate(manifest.levels):
        size = sum(entry.bytes for entry in files)
        click.echo(f"  L{level}: {len(files)} files, {size:,} bytes")
        for entry in files:
            click.echo(f"    {entry.key}  ordinals {entry.first}-{entry.last}  {entry.bytes:,} B")
    for problem in report.problems:
        click.echo(f"  problem: {problem}")
    if report.problems:
        raise click.ClickException(f"{len(report.problems)} problem(s) in {month}'s manifest")
