"""The app's objects for the triggers: one composition (`remediation.compose`) per worker, built once.

Kept out of module import so a cold start loads no storage SDK, YAML or pydantic until it must.
Settings come from the environment (`Settings.from_env`), read once per composition; `reset()`
forgets it (tests change settings between cases). `use()` hands the composition what no setting can
say: a credential, a clock, a sleep (tests pass fakes; the host passes nothing).

`warm_up()`, which function_app.py calls as the worker loads the app, builds the composition and
what a first event needs (`Components.warm`) in a daemon thread when the settings ask for it
(REMEDIATION_PREWARM: under the Functions host unless turned off). The first invocation then waits
for that build instead of starting a second one. Nothing is kept after a failure, the warm-up's
included: the next caller builds anew and gets the error itself.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
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

logger = logging.getLogger(__name__)

WARM_UP_THREAD = "remediation-warm-up"

_overrides: dict[str, Any] = {}


class _Build:
    """One composition, built by the thread that started it; other callers wait for its end."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.components: Components | None = None  # None once done: the build failed


_lock = threading.Lock()
_current: _Build | None = None
_warm_up: threading.Thread | None = None
_handling = threading.Event()  # an invocation has asked for the composition


def use(**overrides: Any) -> None:
    """What the next composition takes besides settings (`credential`, `clock`, `sleep`)."""
    _overrides.clear()
    _overrides.update(overrides)
    reset()


def components() -> Components:
    """The composition: built by the first caller (or the warm-up) while later callers wait for it."""
    _handling.set()
    return _composition()


def _composition() -> Components:
    global _current
    while True:
        with _lock:
            build, mine = _current, _current is None
            if build is None:
                build = _current = _Build()
        if mine:
            return _build(build)
        build.done.wait()
        if build.components is not None:
            return build.components
        # That build failed and was forgotten: go round, and build (or wait for) the next one.


def _build(build: _Build) -> Components:
    global _current
    try:
        from bot.compose import slack_notifications
        from remediation import logcontext
        from remediation.compose import compose
        from remediation.settings import Settings

        # The SDKs log every request and response at INFO: a flood, and headers do not belong in logs.
        logging.getLogger("azure").setLevel(logging.WARNING)
        logcontext.install()
        build.components = compose(Settings.from_env(), notifications=slack_notifications, **_overrides)
        return build.components
    except BaseException:
        with _lock:
            if _current is build:
                _current = None
        raise
    finally:
        build.done.set()


def warm_up() -> threading.Thread | None:
    """Start building the composition in a daemon thread when the settings say so; the thread, or None.

    Settings that do not read are left for the first invocation to report."""
    global _warm_up
    from remediation.settings import Settings, SettingsError

    try:
        wanted = Settings.from_env(require_storage=False).prewarm
    except SettingsError:
        return None
    if not wanted:
        return None
    with _lock:
        if _warm_up is not None and _warm_up.is_alive():
            return _warm_up
        _warm_up = threading.Thread(target=_warm, name=WARM_UP_THREAD, daemon=True)
    _warm_up.start()
    return _warm_up


def _warm() -> None:
    started = time.perf_counter()
    try:
        _composition().warm(stop=_handling.is_set)
    except Exception as error:  # the first invocation builds again and reports it
        ms = round((time.perf_counter() - started) * 1000)
        logger.warning("warm-up failed after %d ms: %s", ms, error, extra={"warm_up_ms": ms, "reason": str(error)})
        return
    ms = round((time.perf_counter() - started) * 1000)
    logger.info("warm-up done in %d ms", ms, extra={"warm_up_ms": ms, "during_invocation": _handling.is_set()})


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
    """Forget the composition (settings changed); the next call builds it anew. A warm-up in flight
    is waited for, so that nothing it builds outlives the composition it belongs to."""
    global _current
    warming = _warm_up
    if warming is not None and warming is not threading.current_thread():
        warming.join()
    with _lock:
        build, _current = _current, None
    _handling.clear()
    if build is not None:
        build.done.wait()
        if build.components is not None:
            build.components.close()
    slack_app.cache_clear()
    outbox_worker.cache_clear()
