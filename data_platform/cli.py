"""The `data-platform` command. Subcommand groups load on first use, so `--help` and every
command pay only for the libraries they need (dagster, polars and boto3 each cost 0.6-0.8 s)."""

from __future__ import annotations

import importlib

import click

# name -> (module:attribute, one-line help shown without importing the module)
COMMAND_GROUPS: dict[str, tuple[str, str]] = {
    "aws": ("data_platform.core.aws_cli:aws", "AWS sessions: MFA login and cached credentials."),
    "s3": ("data_platform.s3sync.cli:s3", "Sync a local folder with an S3 prefix."),
    "silver": ("data_platform.silver.cli:silver", "Load raw CSV/Parquet snapshots into Postgres."),
    "dev": ("data_platform.devstack_cli:dev", "Throwaway Postgres + S3 server, demo and Dagit."),
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


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages to stderr.")
def main(verbose: bool) -> None:
    """data_platform: S3 sync, silver loads and the other platform jobs, without Dagster."""
    import logging

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


if __name__ == "__main__":
    main()
