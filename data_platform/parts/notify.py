"""Slack messages: an incoming webhook (POST `{"text": ...}`, the seed's way), a bot token through
a slack_sdk WebClient (what dagster-slack's SlackResource hands out), or nowhere (the caller's log
only). A message that cannot be delivered is logged as a warning and never fails a run."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from data_platform.parts.errors import PartsError

log = logging.getLogger(__name__)


class Notifier(Protocol):
    def send(self, text: str) -> bool:
        """Deliver `text`; False (with a warning logged) when it could not be delivered."""


class LogOnly:
    def __init__(self, write: Callable[[str], None] | None = None) -> None:
        self.write = write or log.info

    def __repr__(self) -> str:
        return "LogOnly()"

    def send(self, text: str) -> bool:
        self.write(text)
        return True


class SlackWebhook:
    """Incoming webhook; the URL is a secret and never appears in reprs, logs or errors."""

    def __init__(self, url: str, timeout_seconds: float = 10.0) -> None:
        self._url = url
        self.timeout_seconds = timeout_seconds

    def __repr__(self) -> str:
        return "SlackWebhook(url=***)"

    def send(self, text: str) -> bool:
        import httpx

        try:
            response = httpx.post(self._url, json={"text": text}, timeout=self.timeout_seconds)
        except httpx.HTTPError as exc:
            log.warning("Slack webhook not reached (%s); message dropped", type(exc).__name__)
            return False
        if response.is_error:
            log.warning("Slack webhook answered HTTP %d; message dropped", response.status_code)
            return False
        return True


class SlackBot:
    """A bot token's `chat.postMessage` through a slack_sdk WebClient."""

    def __init__(self, client: Any, channel: str) -> None:
        self.client = client
        self.channel = channel

    def __repr__(self) -> str:
        return f"SlackBot(channel={self.channel!r})"

    def send(self, text: str) -> bool:
        from slack_sdk.errors import SlackApiError, SlackClientError

        try:
            self.client.chat_postMessage(channel=self.channel, text=text)
        except (SlackApiError, SlackClientError, OSError) as exc:
            # Slack's error code (e.g. channel_not_found), never the request with its token
            error = exc.response.get("error") if isinstance(exc, SlackApiError) else None
            log.warning("Slack chat.postMessage failed (%s)", error or type(exc).__name__)
            return False
        return True


class Fanout:
    """Write every message to the run log and to Slack (when configured)."""

    def __init__(self, write: Callable[[str], None], slack: Notifier | None) -> None:
        self.log = LogOnly(write)
        self.slack = slack

    def __repr__(self) -> str:
        return f"Fanout(slack={self.slack!r})"

    def send(self, text: str) -> bool:
        self.log.send(text)
        return self.slack.send(text) if self.slack is not None else True


def slack_notifier(
    webhook_url: str | None, bot_token: str | None = None, channel: str | None = None
) -> Notifier | None:
    """The webhook wins when both are set; None when neither is."""
    if webhook_url:
        return SlackWebhook(webhook_url)
    if bot_token:
        from slack_sdk import WebClient

        if not channel:
            raise PartsError("a Slack bot token needs a channel: set the channel (e.g. #parts)")
        return SlackBot(WebClient(token=bot_token), channel)
    return None
