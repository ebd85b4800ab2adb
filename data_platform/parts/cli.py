"""`data-platform parts run/failed`: the daily price pipeline for one day, without Dagster.

httpx, polars, psycopg2 and boto3 are imported inside the commands, so the CLI starts fast.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from data_platform.core.aws import AwsSettings
from data_platform.core.aws_cli import aws_options, cli_object_store
from data_platform.core.terminal import StatusLine

if TYPE_CHECKING:
    from data_platform.core.objectstore import ObjectStore
    from data_platform.parts.config import SupplierConfig
    from data_platform.parts.report import DayReport

USER_SUPPLIERS_DIR = Path("suppliers")


@click.group()
def parts() -> None:
    """Daily automotive parts prices: crawl suppliers, self-heal failures, upsert price ranges."""


def _day(_ctx: click.Context, _param: click.Parameter, value: str) -> date:
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date: use YYYY-MM-DD") from None


date_option = click.option(
    "--date", "day", required=True, callback=_day, help="The day to run (YYYY-MM-DD)."
)
db_option = click.option(
    "--db-url",
    envvar="DATA_PLATFORM_PG_URL",
    show_envvar=True,
    required=True,
    help="postgresql://... holding parts_prices and parts_failed_urls.",
)


supplier_config_option = click.option(
    "--supplier-config",
    "config_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Supplier TOML file (repeatable; default: the built-in suppliers and ./suppliers/*.toml).",
)


@parts.command("run")
@date_option
@supplier_config_option
@db_option
@click.option(
    "--store",
    envvar="DATA_PLATFORM_RAW_URL",
    show_envvar=True,
    required=True,
    help="Raw store for the pages: s3://bucket/prefix or a folder.",
)
@click.option(
    "--mart",
    envvar="DATA_PLATFORM_MART_URL",
    show_envvar=True,
    default=None,
    help="Store for the Parquet price files (default: the raw store, under mart/).",
)
@click.option(
    "--slack-webhook",
    envvar="DATA_PLATFORM_SLACK_WEBHOOK_URL",
    show_envvar=True,
    default=None,
    help="Slack incoming webhook URL (a secret: prefer the variable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@aws_options
def run(
    day: date,
    config_files: tuple[Path, ...],
    db_url: str,
    store: str,
    mart: str | None,
    slack_webhook: str | None,
    as_json: bool,
    aws_settings: AwsSettings,
) -> None:
    """Run every stage for one day and supplier: requests, crawl, summary, self-healing rounds,
    transform, load (or skip an empty day), report. URLs still failing are reported, not errors."""
    from data_platform.core.objectstore import ObjectStoreError
    from data_platform.core.postgres import PostgresError
    from data_platform.parts.errors import PartsError

    try:
        suppliers = _suppliers(config_files)
        raw_store = cli_object_store(store, aws_settings)
        mart_store = cli_object_store(mart, aws_settings) if mart else raw_store
        reports = [
            _run_one(config, day, raw_store, mart_store, db_url, slack_webhook)
            for config in suppliers
        ]
    except (PartsError, PostgresError, ObjectStoreError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(_totals(reports), ensure_ascii=False, indent=2))


def _suppliers(config_files: tuple[Path, ...]) -> list[SupplierConfig]:
    from data_platform.parts.config import BUILTIN_SUPPLIERS_DIR, load_supplier, load_suppliers
    from data_platform.parts.errors import PartsError

    if config_files:
        return [load_supplier(path) for path in config_files]
    found = list(load_suppliers([BUILTIN_SUPPLIERS_DIR, USER_SUPPLIERS_DIR]).values())
    if not found:
        raise PartsError("no supplier configs found: pass --supplier-config FILE")
    return found


def _run_one(
    config: SupplierConfig,
    day: date,
    raw_store: ObjectStore,
    mart_store: ObjectStore,
    db_url: str,
    slack_webhook: str | None,
) -> DayReport:
    import logging

    from data_platform.parts.notify import Fanout, slack_notifier
    from data_platform.parts.pipeline import DayRun

    line = StatusLine()
    done = {"ok": 0, "failed": 0}

    def progress(outcome: Any) -> None:
        done["ok" if outcome.ok else "failed"] += 1
        line.update(lambda: f"{config.code} {day}: {done['ok']} pages, {done['failed']} failed")

    notifier = Fanout(logging.getLogger("data_platform.parts").info, slack_notifier(slack_webhook))
    day_run = DayRun(config, day, raw_store, mart_store, db_url, notifier, on_outcome=progress)
    report = day_run.run_all()
    line.clear()
    click.echo(_summary(report))
    return report


def _summary(report: DayReport) -> str:
    from data_platform.parts.report import unconfigured_note

    loaded = (
        "skipped (no valid offers)" if report.skipped else f"{report.rows_upserted} rows upserted"
    )
    return (
        f"{report.supplier} {report.day}: {report.requests} requests, {report.succeeded} ok, "
        f"{report.failed} failed, {report.healed} healed, {len(report.still_failing)} still "
        f"failing{unconfigured_note(report.unconfigured_failing)}; {report.offers} offers, "
        f"{report.dropped} dropped; {loaded}"
    )


def _totals(reports: list[DayReport]) -> dict[str, Any]:
    names = ("requests", "succeeded", "failed", "healed", "unconfigured_failing", "offers",
             "dropped", "rows_upserted")  # fmt: skip
    totals: dict[str, Any] = {name: sum(getattr(r, name) for r in reports) for name in names}
    totals["still_failing"] = sum(len(r.still_failing) for r in reports)
    totals["skipped"] = all(r.skipped for r in reports)
    totals["suppliers"] = [r.to_json() for r in reports]
    return totals


@parts.command("failed")
@date_option
@click.option("--supplier", default=None, help="Only this supplier code.")
@supplier_config_option
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print the URLs as a JSON list.")
def failed(
    day: date, supplier: str | None, config_files: tuple[Path, ...], db_url: str, as_json: bool
) -> None:
    """List the day's URLs that still fail, with their attempts and last error. URLs of car types
    the supplier configs no longer list are left out (and counted).

    Example: data-platform parts failed --date 2026-11-20 --supplier demo --json"""
    from data_platform.core.postgres import PostgresError, connection
    from data_platform.parts.errors import PartsError
    from data_platform.parts.failed_urls import configured_only, list_failed
    from data_platform.parts.report import unconfigured_note

    try:
        car_types = {config.code: config.car_types for config in _suppliers(config_files)}
        with connection(db_url) as conn:
            rows, left_out = configured_only(list_failed(conn, day, supplier), car_types)
    except (PartsError, PostgresError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        items = [
            {"supplier": r.supplier, "url": r.url, "car_type": r.car_type, "page": r.page,
             "status": r.status, "error": r.error, "attempts": r.attempts, "rounds": r.rounds,
             "last_attempt_at": r.last_attempt_at.isoformat()}
            for r in rows
        ]  # fmt: skip
        click.echo(json.dumps(items, ensure_ascii=False, indent=2))
        if left_out:
            click.echo(unconfigured_note(left_out).strip(" ()"), err=True)
        return
    for r in rows:
        click.echo(f"{r.supplier}  {r.url}  {r.error}  attempts={r.attempts} rounds={r.rounds}")
    click.echo(
        f"{len(rows)} failed URL(s) on {day}"
        + (f" for {supplier}" if supplier else "")
        + unconfigured_note(left_out)
    )
