"""The parts resource: supplier settings, the mart store, Slack and the Dagit link."""

import os
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from data_platform.parts.config import BUILTIN_SUPPLIERS_DIR, SupplierConfig, load_suppliers

USER_SUPPLIERS_DIR = Path("suppliers")  # relative to where Dagster starts, like silver presets


class PartsResource(dg.ConfigurableResource):
    """Parts settings. Unset fields fall back, when a run starts, to DATA_PLATFORM_MART_URL,
    DATA_PLATFORM_SLACK_WEBHOOK_URL, DATA_PLATFORM_SLACK_BOT_TOKEN (+ DATA_PLATFORM_SLACK_CHANNEL)
    and DATA_PLATFORM_DAGIT_URL (Dagster's EnvVar cannot be optional)."""

    # Settings for known supplier codes read at run time (a new supplier's code must be in the
    # built-in folder or ./suppliers when the code location loads: it is a partition).
    suppliers_dir: str | None = None
    base_urls: dict[str, str] = Field(default_factory=dict)  # code -> base_url (staging, demo)
    mart_url: str | None = None
    slack_webhook_url: str | None = None
    slack_bot_token: str | None = None
    slack_channel: str | None = None
    dagit_url: str | None = None

    def supplier(self, code: str) -> SupplierConfig:
        from data_platform.parts.errors import PartsError

        dirs = [BUILTIN_SUPPLIERS_DIR, USER_SUPPLIERS_DIR]
        if self.suppliers_dir:
            dirs.append(Path(self.suppliers_dir))
        config = load_suppliers(dirs).get(code)
        if config is None:
            raise PartsError(
                f"no supplier config with code {code!r} in {', '.join(map(str, dirs))}"
            )
        base_url = self.base_urls.get(code)
        return config.model_copy(update={"base_url": base_url}) if base_url else config

    def slack(self) -> Any:
        """The Slack notifier (webhook first, then bot token via dagster-slack), or None."""
        from data_platform.parts.notify import SlackBot, slack_notifier

        webhook = self.slack_webhook_url or os.environ.get("DATA_PLATFORM_SLACK_WEBHOOK_URL")
        if webhook:
            return slack_notifier(webhook)
        token = self.slack_bot_token or os.environ.get("DATA_PLATFORM_SLACK_BOT_TOKEN")
        if not token:
            return None
        from dagster_slack import SlackResource

        channel = self.slack_channel or os.environ.get("DATA_PLATFORM_SLACK_CHANNEL") or "#parts"
        return SlackBot(SlackResource(token=token).get_client(), channel)

    def mart_store_url(self) -> str | None:
        return self.mart_url or os.environ.get("DATA_PLATFORM_MART_URL") or None

    def run_link(self, run_id: str) -> str:
        base = (
            self.dagit_url or os.environ.get("DATA_PLATFORM_DAGIT_URL") or "http://127.0.0.1:3000"
        )
        return f"{base.rstrip('/')}/runs/{run_id}"


def supplier_codes() -> list[str]:
    return list(load_suppliers([BUILTIN_SUPPLIERS_DIR, USER_SUPPLIERS_DIR]))
