"""Builds the engine objects the triggers share, once per worker and only when first needed.

Kept out of module import so a cold start loads no storage SDK, YAML or pydantic until an event
arrives. Nothing is cached after a failure, so the next invocation tries again.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

from remediation.intake import Intake
from remediation.settings import Settings, SettingsError

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient

    from bot.config import SlackSettings
    from bot.directory import SlackDirectory
    from bot.notifier import SlackNotifier
    from remediation.actions.dispatch import ActionSet
    from remediation.engine import Engine
    from remediation.executor import Executor
    from remediation.registry_policy import FindingsRecheck
    from remediation.store.snapshots import BlobSnapshotStore

logger = logging.getLogger(__name__)


@functools.cache
def intake() -> Intake:
    from remediation.store.events import TableEventLedger

    settings = _settings()
    ledger = TableEventLedger.from_connection_string(settings.storage_connection, table_name=settings.events_table)
    return Intake(ledger=ledger, sink=engine())


@functools.cache
def engine() -> Engine:
    """The engine with the playbooks of REMEDIATION_PLAYBOOKS_DIR; an invalid set handles no event.

    Each problem is logged, and the error propagates so the host retries the event later, once
    someone has fixed the playbooks: no event is handled by half a policy, and none is lost.
    """
    from remediation.engine import Engine
    from remediation.executor import Previewer
    from remediation.playbooks import PlaybookErrors, load_playbooks
    from remediation.registry_policy.build import push_policy
    from remediation.store.incidents import TableIncidentStore
    from remediation.store.work import StorageWorkQueue

    settings = _settings()
    try:
        playbooks = load_playbooks(settings.playbooks_dir)
    except PlaybookErrors as problems:
        for problem in problems.errors:
            logger.error("invalid playbook: %s", problem, extra={"playbooks_dir": str(settings.playbooks_dir)})
        raise
    incidents = TableIncidentStore.from_connection_string(
        settings.storage_connection, table_name=settings.incidents_table, audit_table=settings.audit_table
    )
    work = StorageWorkQueue.from_connection_string(settings.storage_connection, queue_name=settings.actions_queue)
    notifier, directory = slack_notifier(), slack_directory()
    return Engine(
        playbooks=playbooks,
        incidents=incidents,
        work=work,
        notifier=notifier,
        directory=directory,
        enrich=push_policy().enrich,
        previewer=Previewer(actions=actions(), snapshots=snapshots()),
    )


@functools.cache
def executor() -> Executor:
    from remediation.executor import Executor

    engine_ = engine()
    return Executor(incidents=engine_.incidents, actions=actions(), snapshots=snapshots(), notifier=engine_.notifier)


@functools.cache
def actions() -> ActionSet:
    from remediation.actions.dispatch import from_env

    return from_env()


@functools.cache
def snapshots() -> BlobSnapshotStore:
    from remediation.store.snapshots import BlobSnapshotStore

    settings = _settings()
    return BlobSnapshotStore.from_connection_string(settings.storage_connection, container=settings.snapshots_container)


@functools.cache
def findings_recheck() -> FindingsRecheck:
    from remediation.registry_policy.build import findings_recheck

    return findings_recheck()


@functools.cache
def slack() -> tuple[SlackSettings, WebClient] | None:
    """Slack's settings and the one Web API client, when SLACK_BOT_TOKEN is set (None otherwise)."""
    from bot.config import SlackSettings
    from bot.web import make_client

    settings = SlackSettings.from_env()
    return (
        None if settings is None else (settings, make_client(token=settings.bot_token, base_url=settings.api_base_url))
    )


@functools.cache
def slack_notifier() -> SlackNotifier | None:
    """The engine's notifier when Slack is configured; None (the engine logs instead) otherwise."""
    from bot.messages import TableMessageStore
    from bot.notifier import SlackNotifier

    if (configured := slack()) is None:
        return None
    settings, client = configured
    messages = TableMessageStore.from_connection_string(
        _settings().storage_connection, table_name=settings.messages_table
    )
    return SlackNotifier(client=client, messages=messages, default_channel=settings.default_channel)


def slack_directory() -> SlackDirectory | None:
    from bot.directory import SlackDirectory

    return None if (configured := slack()) is None else SlackDirectory(client=configured[1])


@functools.cache
def slack_app() -> App:
    """The Bolt app on the engine; SettingsError when Slack is not configured."""
    from bot.app import build_app

    if (configured := slack()) is None:
        raise SettingsError("SLACK_BOT_TOKEN is not set: the Slack endpoint cannot answer")
    settings, client = configured
    notifier = slack_notifier()
    note = notifier.note if notifier is not None else None
    return build_app(engine=engine(), client=client, signing_secret=settings.signing_secret, note=note)


def reset() -> None:
    """Forget the built objects (settings changed); the next call builds them anew."""
    intake.cache_clear()
    engine.cache_clear()
    executor.cache_clear()
    actions.cache_clear()
    snapshots.cache_clear()
    findings_recheck.cache_clear()
    slack.cache_clear()
    slack_notifier.cache_clear()
    slack_app.cache_clear()


def _settings() -> Settings:
    from remediation import logcontext

    # The SDKs log every request and response at INFO: a flood, and headers do not belong in logs.
    logging.getLogger("azure").setLevel(logging.WARNING)
    logcontext.install()
    return Settings.from_env()
