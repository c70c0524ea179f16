"""Builds the engine objects the triggers share, once per worker and only when first needed.

Kept out of module import so a cold start loads no storage SDK until an event arrives.
"""

from __future__ import annotations

import functools
import logging

from remediation.intake import DiscardingSink, Intake
from remediation.settings import Settings


@functools.cache
def intake() -> Intake:
    from remediation.store.events import TableEventLedger

    # The SDKs log every request and response at INFO: a flood, and headers do not belong in logs.
    logging.getLogger("azure").setLevel(logging.WARNING)
    settings = Settings.from_env()
    ledger = TableEventLedger.from_connection_string(settings.storage_connection, table_name=settings.events_table)
    return Intake(ledger=ledger, sink=DiscardingSink())
