"""Builds the engine objects the triggers share, once per worker and only when first needed.

Kept out of module import so a cold start loads no storage SDK, YAML or pydantic until an event
arrives. Nothing is cached after a failure, so the next invocation tries again.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

from remediation.intake import Intake
from remediation.settings import Settings

if TYPE_CHECKING:
    from remediation.engine import Engine

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
    from remediation.playbooks import PlaybookErrors, load_playbooks
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
    return Engine(playbooks=playbooks, incidents=incidents, work=work)


def reset() -> None:
    """Forget the built objects (settings changed); the next call builds them anew."""
    intake.cache_clear()
    engine.cache_clear()


def _settings() -> Settings:
    # The SDKs log every request and response at INFO: a flood, and headers do not belong in logs.
    logging.getLogger("azure").setLevel(logging.WARNING)
    return Settings.from_env()
