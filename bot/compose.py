"""Slack's part of the object graph: the outbox the engine notifies through, its worker, the Bolt app.

Neighbours: `remediation.compose` builds the rest and calls `slack_notifications` for the engine's
notifier (`Outbox`: an enqueue on the Slack outbox queue) and approver directory; `functions/wiring.py`
asks `slack_app` for the endpoint and `outbox_worker` for the `slack_outbox` trigger. Nothing here
reads the environment: the values come from `Settings`.
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
    from bot.outbox import Outbox, OutboxWorker
    from remediation.compose import Components


@dataclass(frozen=True, slots=True)
class Slack:
    settings: SlackSettings
    client: WebClient
    notifier: Outbox  # what the engine calls: jobs on the outbox queue
    publisher: SlackNotifier  # what the outbox worker calls: Slack itself
    directory: SlackDirectory


def slack_notifications(components: Components) -> Slack | None:
    """Slack's notifier and directory when Slack is configured; None (the engine logs) otherwise."""
    from bot.directory import SlackDirectory
    from bot.messages import TableMessageStore
    from bot.notifier import SlackNotifier
    from bot.outbox import Outbox, StorageJobQueue
    from bot.web import make_client

    settings = components.settings.slack
    if settings is None:
        return None
    client = make_client(token=settings.bot_token, base_url=settings.api_base_url)
    storage = components.storage()
    messages = TableMessageStore.from_storage(storage, table_name=settings.messages_table)
    publisher = SlackNotifier(
        client=client, messages=messages, default_channel=settings.default_channel, clock=components.clock
    )
    outbox = Outbox(queue=StorageJobQueue(storage=storage, queue_name=components.settings.slack_outbox_queue))
    return Slack(
        settings=settings, client=client, notifier=outbox, publisher=publisher, directory=SlackDirectory(client=client)
    )


def _slack(components: Components) -> Slack:
    slack = components.notifications()
    if not isinstance(slack, Slack):
        problem = components.settings.slack_problem
        raise SettingsError(problem or "SLACK_BOT_TOKEN is not set: the Slack endpoint cannot answer")
    return slack


def slack_app(components: Components) -> App:
    """The Bolt app on the engine; SettingsError (naming what is wrong) when Slack is off."""
    from bot.app import build_app

    slack = _slack(components)
    return build_app(
        engine=components.engine(),
        client=slack.client,
        signing_secret=slack.settings.signing_secret,
        outbox=slack.notifier,
        viewers=components.settings.viewers,
    )


def outbox_worker(components: Components) -> OutboxWorker:
    """What the `slack_outbox` trigger runs; SettingsError when Slack is off."""
    from bot.outbox import OutboxWorker

    slack = _slack(components)
    return OutboxWorker(engine=components.engine(), notifier=slack.publisher, outbox=slack.notifier)
