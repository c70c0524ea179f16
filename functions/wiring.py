"""The app's objects for the triggers: one composition (`remediation.compose`) per worker, built on first use.

Kept out of module import so a cold start loads no storage SDK, YAML or pydantic until an event
arrives. Settings come from the environment (`Settings.from_env`), read once per composition;
`reset()` forgets it (tests change settings between cases). `use()` hands the composition what no
setting can say: a credential, a clock, a sleep (tests pass fakes; the host passes nothing).
Nothing is cached after a failure, so the next invocation tries again.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient

    from bot.compose import Slack
    from bot.notifier import SlackNotifier
    from bot.outbox import OutboxWorker
    from remediation.actions.dispatch import ActionSet
    from remediation.compose import Components
    from remediation.engine import Engine
    from remediation.executor import Executor
    from remediation.intake import Intake
    from remediation.push_policy import FindingsRecheck
    from remediation.settings import SlackSettings
    from remediation.store.snapshots import BlobSnapshotStore

_overrides: dict[str, Any] = {}


def use(**overrides: Any) -> None:
    """What the next composition takes besides settings (`credential`, `clock`, `sleep`)."""
    _overrides.clear()
    _overrides.update(overrides)
    reset()


@functools.cache
def components() -> Components:
    from bot.compose import slack_notifications
    from remediation import logcontext
    from remediation.compose import compose
    from remediation.settings import Settings

    # The SDKs log every request and response at INFO: a flood, and headers do not belong in logs.
    logging.getLogger("azure").setLevel(logging.WARNING)
    logcontext.install()
    return compose(Settings.from_env(), notifications=slack_notifications, **_overrides)


def intake() -> Intake:
    return components().intake()


def engine() -> Engine:
    return components().engine()


def executor() -> Executor:
    return components().executor()


def actions() -> ActionSet:
    return components().actions()


def snapshots() -> BlobSnapshotStore:
    return components().snapshots()


def findings_recheck() -> FindingsRecheck:
    return components().findings_recheck()


def slack() -> tuple[SlackSettings, WebClient] | None:
    """Slack's settings and the one Web API client, when Slack is configured (None otherwise)."""
    configured: Slack | None = components().notifications()  # type: ignore[assignment]
    return None if configured is None else (configured.settings, configured.client)


def slack_notifier() -> SlackNotifier | None:
    """What makes Slack show an incident (the outbox worker's); None when Slack is off."""
    configured: Slack | None = components().notifications()  # type: ignore[assignment]
    return None if configured is None else configured.publisher


@functools.cache
def outbox_worker() -> OutboxWorker:
    """The Slack outbox's worker; SettingsError when Slack is not configured."""
    from bot.compose import outbox_worker as build

    return build(components())


@functools.cache
def slack_app() -> App:
    """The Bolt app on the engine; SettingsError when Slack is not configured."""
    from bot.compose import slack_app as build

    return build(components())


def reset() -> None:
    """Forget the composition (settings changed); the next call builds it anew."""
    if components.cache_info().currsize:
        components().close()
    components.cache_clear()
    slack_app.cache_clear()
    outbox_worker.cache_clear()
