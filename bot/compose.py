"""Slack's part of the object graph: the outbox the engine notifies through, its worker, the Bolt app.

Neighbours: `remediation.compose` builds the rest and calls `slack_notifications` for the engine's
notifier (`Outbox`: an enqueue on the Slack outbox queue) and approver directory; `functions/wiring.py`
asks `slack_app` for the endpoint and `outbox_worker` for the `slack_outbox` trigger. Nothing here
reads the environment: the values come from `Settings`. The Web API client, the publisher and its
message table are made when first used, so an event that only enqueues loads no slack_sdk.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from remediation.settings import SettingsError, SlackSettings

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient

    from bot.directory import SlackDirectory
    from bot.notifier import SlackNotifier
    from bot.outbox import Outbox, OutboxWorker
    from remediation.compose import Components
    from remediation.store.clients import StorageAccess


class Slack:
    """The Slack part: `settings` and `notifier` (the outbox, what the engine calls) at once; `client`,
    `publisher` (what the outbox worker calls: Slack itself) and the directory's client on first use."""

    def __init__(
        self, *, settings: SlackSettings, storage: StorageAccess, outbox_queue: str, clock: Callable[[], datetime]
    ) -> None:
        from bot.outbox import Outbox, StorageJobQueue

        self.settings = settings
        self.notifier: Outbox = Outbox(queue=StorageJobQueue(storage=storage, queue_name=outbox_queue))
        self.directory = DirectoryOnFirstUse(self._directory)
        self._storage = storage
        self._clock = clock
        self._lock = threading.Lock()
        self._client: WebClient | None = None
        self._publisher: SlackNotifier | None = None

    @property
    def client(self) -> WebClient:
        from bot.web import make_client

        with self._lock:
            if self._client is None:
                self._client = make_client(token=self.settings.bot_token, base_url=self.settings.api_base_url)
            return self._client

    @property
    def publisher(self) -> SlackNotifier:
        from bot.messages import TableMessageStore
        from bot.notifier import SlackNotifier

        client = self.client
        with self._lock:
            if self._publisher is None:
                messages = TableMessageStore.from_storage(self._storage, table_name=self.settings.messages_table)
                self._publisher = SlackNotifier(
                    client=client, messages=messages, default_channel=self.settings.default_channel, clock=self._clock
                )
            return self._publisher

    def _directory(self) -> SlackDirectory:
        from bot.directory import SlackDirectory

        return SlackDirectory(client=self.client)


class DirectoryOnFirstUse:
    """The approver directory (`ApproverDirectory`), asking Slack through a client made on first use."""

    def __init__(self, build: Callable[[], SlackDirectory]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._directory: SlackDirectory | None = None

    def members(self, handle: str) -> frozenset[str]:
        with self._lock:
            if self._directory is None:
                self._directory = self._build()
        return self._directory.members(handle)


def slack_notifications(components: Components) -> Slack | None:
    """Slack's notifier and directory when Slack is configured; None (the engine logs) otherwise."""
    settings = components.settings.slack
    if settings is None:
        return None
    return Slack(
        settings=settings,
        storage=components.storage(),
        outbox_queue=components.settings.slack_outbox_queue,
        clock=components.clock,
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
