"""The `data-platform` command. Subcommand groups load on first use, so `--help` and every
command pay only for the libraries they need (dagster, polars and boto3 each cost 0.6-0.8 s)."""

from __future__ import annotations

import atexit
import gc
import importlib
import os
from pathlib import Path

import click

# name -> (module:attribute, one-line help shown without importing the module)
COMMAND_GROUPS: dict[str, tuple[str, str]] = {
    "aws": ("data_platform.core.aws_cli:aws", "AWS sessions: MFA login and cached credentials."),
    "s3": ("data_platform.s3sync.cli:s3", "Sync a local folder with an S3 prefix."),
    "silver": ("data_platform.silver.cli:silver", "Load raw CSV/Parquet snapshots into Postgres."),
    "parts": ("data_platform.parts.cli:parts", "Daily parts prices: crawl, heal, upsert."),
    "replicate": ("data_platform.replication.cli:replicate", "Copy tables between Postgres DBs."),
    "tiers": (
        "data_platform.tiers.cli:tiers",
        "Hot/warm Parquet change log: ingest, compact, read.",
    ),
    "dev": ("data_platform.devstack_cli:dev", "Throwaway Postgres + S3 server, demo and Dagit."),
    "training": (
        "data_platform.training.cli:training",
        "Training samples: stats, export, PII checks.",
    ),
    "celery": ("data_platform.execution_cli:celery", "Celery workers for distributed runs."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMAND_GROUPS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMAND_GROUPS:
            return None
        module_name, attribute = COMMAND_GROUPS[cmd_name][0].split(":")
        return getattr(importlib.import_module(module_name), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMAND_GROUPS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def load_dotenv(path: Path) -> None:
    """Set the variables of a .env file that the environment does not already set. Parsed by
    python-dotenv, as `dagster dev` does, so the CLI and Dagit read one file the same way
    (imported only when the file exists)."""
    if not path.is_file():
        return
    from dotenv import dotenv_values

    for name, value in dotenv_values(path).items():
        if value is not None:
            os.environ.setdefault(name, value)


# Loggers that print secrets at DEBUG: request headers (X-Amz-Security-Token), STS responses.
_WIRE_LOGGERS = ("botocore", "boto3", "s3transfer", "urllib3")


def configure_logging(verbose: bool, debug_loggers: tuple[str, ...]) -> None:
    """Warnings from everyone; DEBUG from our own loggers with -v, and from other libraries
    only when named with --debug-logger (with a warning for the ones that print secrets)."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if verbose:
        logging.getLogger("data_platform").setLevel(logging.DEBUG)
    for name in debug_loggers:
        logging.getLogger(name).setLevel(logging.DEBUG)
        if name.split(".")[0] in _WIRE_LOGGERS:
            click.echo(
                f"warning: the {name} debug log prints request headers and responses, "
                "including session tokens and secret keys; do not share it",
                err=True,
            )


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log data_platform's debug messages to stderr.")
@click.option(
    "--debug-logger",
    "debug_loggers",
    multiple=True,
    metavar="NAME",
    help="Also log this library at DEBUG (repeatable), e.g. botocore: it prints secrets.",
)
@click.option(
    "--env-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path(".env"),
    show_default=True,
    help="Read unset environment variables from this file if it exists.",
)
def main(verbose: bool, debug_loggers: tuple[str, ...], env_file: Path) -> None:
    """data_platform: S3 sync, silver loads and the other platform jobs, without Dagster."""
    # At exit the interpreter's last garbage collections walk every object the libraries made
    # (~65 ms after importing polars, measured); frozen objects are skipped there and are still
    # freed by reference counting, so open files are flushed and closed as before.
    atexit.register(gc.freeze)
    load_dotenv(env_file)
    configure_logging(verbose, debug_loggers)


if __name__ == "__main__":
    main()
