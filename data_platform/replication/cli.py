"""`data-platform replicate run/sweep`: copy the tables of a YAML spec between Postgres databases.

psycopg2 and the engine are imported inside the commands so `--help` stays fast.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import click

from data_platform.core.terminal import StatusLine

if TYPE_CHECKING:
    from data_platform.replication.engine import CopyPlan, CopyResult
    from data_platform.replication.spec import ReplicationSpec

spec_option = click.option(
    "--spec",
    "spec_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="DATA_PLATFORM_REPLICATION_SPEC",
    default=Path("replication.yaml"),
    show_default=True,
    help="The YAML spec (connections and tables); also DATA_PLATFORM_REPLICATION_SPEC.",
)


@click.group()
def replicate() -> None:
    """Copy Postgres tables between databases through a staging table, merged by primary key."""


def _load(spec_path: Path) -> ReplicationSpec:
    from data_platform.replication.errors import SpecError
    from data_platform.replication.spec import load_spec

    try:
        return load_spec(spec_path)
    except SpecError as exc:
        raise click.ClickException(str(exc)) from None


@replicate.command("run")
@spec_option
@click.option("--table", "tables", multiple=True, help="Only this table (repeatable).")
@click.option("--dry-run", is_flag=True, help="Show what each table would do; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per table on stdout.")
def run(spec_path: Path, tables: Sequence[str], dry_run: bool, as_json: bool) -> None:
    """Copy the tables of the spec, in order. Exits 1 when any table failed.

    The spec's keys are listed in docs/replication.md. Rows whose watermark is NULL and
    were skipped (`null_watermark: skip`) are counted in each table's line, the summary
    and `skipped_rows` of --json.

    \b
    Example:
      export SOURCE_PG_URL=postgresql://app@src:5432/shop TARGET_PG_URL=postgresql://dw/dw
      data-platform replicate run --spec replication.yaml --table orders --dry-run
    """
    from data_platform.core.postgres import PostgresError
    from data_platform.replication.engine import CopyResult
    from data_platform.replication.errors import ReplicationError, SpecError
    from data_platform.replication.runner import plan_table, run_table

    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with `&`
    spec = _load(spec_path)
    try:
        selected = spec.select(tables)
    except SpecError as exc:
        raise click.ClickException(str(exc)) from None
    started = time.monotonic()
    failed = skipped = 0
    for table in selected:
        if dry_run:
            try:
                plan = plan_table(spec, table, os.environ)
                skipped += plan.skipped_rows
                _show_plan(plan, as_json)
            except (ReplicationError, PostgresError) as exc:
                failed += 1
                _show_result(
                    CopyResult(table.name, table.strategy, status="failed", error=str(exc)), as_json
                )
            continue
        progress = _Progress(table.name)
        result = run_table(spec, table, os.environ, on_progress=progress)
        progress.line.clear()
        failed += result.status != "ok"
        skipped += result.skipped_rows
        _show_result(result, as_json)
    verb = "planned" if dry_run else "copied"
    would = "would be " if dry_run else ""
    click.echo(
        f"{len(selected) - failed} of {len(selected)} table(s) {verb}, {failed} failed "
        f"in {time.monotonic() - started:.1f}s"
        + (f"; {skipped:,} row(s) with a NULL watermark {would}skipped" if skipped else "")
        + ("; nothing was changed" if dry_run else ""),
        err=as_json,
    )
    if failed:
        raise SystemExit(1)


@replicate.command("sweep")
@spec_option
@click.option(
    "--older-than",
    default="1h",
    show_default=True,
    help="Only staging tables created longer ago than this (30m, 1h, 2d).",
)
@click.option("--dry-run", is_flag=True, help="List the tables that would be dropped.")
def sweep_command(spec_path: Path, older_than: str, dry_run: bool) -> None:
    """Drop staging tables left behind in the spec's target databases (only this engine's).

    \b
    Example:
      data-platform replicate sweep --older-than 2d --dry-run
    """
    from data_platform.core.postgres import PostgresError
    from data_platform.replication.durations import parse_duration
    from data_platform.replication.errors import ReplicationError
    from data_platform.replication.runner import sweep

    try:
        age = parse_duration(older_than)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--older-than") from None
    spec = _load(spec_path)
    try:
        swept = sweep(spec, os.environ, age, dry_run)
    except (ReplicationError, PostgresError) as exc:
        raise click.ClickException(str(exc)) from None
    verb = "would drop" if dry_run else "dropped"
    for database in swept:
        for leftover in database.leftovers:
            created = f"{leftover.created:%Y-%m-%d %H:%M:%S %Z}"
            click.echo(f"{verb} {database.connection}: {leftover.table} (created {created})")
    count = sum(len(d.leftovers) for d in swept)
    click.echo(f"{count} staging table(s) {verb} in {len(swept)} target database(s)")


class _Progress:
    """Phase and bytes copied so far of the table being copied, on a terminal."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.line = StatusLine()

    def __call__(self, phase: str, copied: int) -> None:
        amount = f" {copied / (1 << 20):,.1f} MiB" if phase == "copying" else ""
        self.line.update(lambda: f"{self.table}: {phase}{amount}")


def _show_result(result: CopyResult, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(asdict(result)))
    elif result.status != "ok":
        click.echo(f"FAILED {result.table} (target left as it was): {result.error}", err=True)
    else:
        created = ", target created" if result.created_target else ""
        mark = f", watermark {result.high_water}" if result.high_water else ""
        click.echo(
            f"{result.table}: {result.strategy} {result.staged_rows:,} staged of "
            f"{result.source_rows:,} source rows{_nulls(result)}: {result.inserted:,} inserted, "
            f"{result.updated:,} updated, {result.deleted:,} deleted; {result.target_rows:,} "
            f"rows in target, checksum ok{created}{mark} ({result.seconds:.2f}s)"
        )


def _nulls(numbers: CopyResult | CopyPlan) -> str:
    """What happened to the source rows whose watermark is NULL, when there are any."""
    if not numbers.watermark_nulls:
        return ""
    if numbers.skipped_rows:
        return f" ({numbers.skipped_rows:,} with a NULL watermark skipped)"
    return f" (incl. {numbers.watermark_nulls:,} with a NULL watermark, copied every run)"


def _show_plan(plan: CopyPlan, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({**asdict(plan), "status": "planned"}))
        return
    target = "into the existing target" if plan.target_exists else "creating the target"
    method = f"; {plan.method}" if plan.method else ""
    since = f", rows with {plan.watermark} >= {plan.read_from}" if plan.read_from else ""
    click.echo(
        f"{plan.table}: would {plan.strategy} {plan.source_rows:,} source rows{since}"
        f"{_nulls(plan)} {target} "
        f"(key {', '.join(plan.primary_key)}; {len(plan.columns)} columns: "
        f"{', '.join(plan.columns)}; {plan.copy_format} COPY{method})"
    )
