"""Slack's part of the object graph: the Web API client, the notifier, the directory and the Bolt app.

Neighbours: `remediation.compose` builds the rest and calls `slack_notifications` for the engine's
notifier and approver directory; `functions/wiring.py` asks `slack_app` for the endpoint. Nothing
here reads the environment: the values come from `Settings.slack`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from remediation.settings import SettingsError, SlackSettings

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient

    from bot.directory import SlackDirectory
    from bot.notifier import SlackNotifier
    from remediation.compose import Components


@dataclass(frozen=True, slots=True)
class Slack:
    settings: SlackSettings
    client: WebClient
    notifier: SlackNotifier
    directory: SlackDirectory


def slack_notifications(components: Components) -> Slack | None:
    """The Slack notifier and directory when Slack is configured; None (the engine logs) otherwise."""
    from bot.directory import SlackDirectory
    from bot.messages import TableMessageStore
    from bot.notifier import SlackNotifier
    from bot.web import make_client

    settings = components.settings.slack
    if settings is None:
        return None
    client = make_client(token=settings.bot_token, base_url=settings.api_base_url)
    messages = TableMessageStore.from_connection_string(
        components.settings.storage_connection, table_name=settings.messages_table
    )
    notifier = SlackNotifier(
        client=client, messages=messages, default_channel=settings.default_channel, clock=components.clock
    )
    return Slack(settings=settings, client=client, notifier=notifier, directory=SlackDirectory(client=client))


def slack_app(components: Components) -> App:
    """The Bolt app on the engine; SettingsError (naming what is wrong) when Slack is off."""
    from bot.app import build_app

    slack = components.notifications()
    if not isinstance(slack, Slack):
        problem = components.settings.slack_problem
        raise SettingsError(problem or "SLACK_BOT_TOKEN is not set: the Slack endpoint cannot answer")
    return build_app(
        engine=components.engine(),
        client=slack.client,
        signing_secret=slack.settings.signing_secret,
        note=slack.notifier.note,
    )
