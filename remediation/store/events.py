"""The `events` table: the EventLedger that dedups deliveries across Function instances.

Neighbours: `remediation.intake` defines the `EventLedger` protocol (and `MemoryLedger`, whose
semantics this mirrors) and calls `claim`/`complete`/`release` once per Signal; the Functions layer
builds a `TableEventLedger.from_storage` from the app's `StorageAccess`.

One row per delivered id. PartitionKey is the id's source prefix (before the first ':'), RowKey the
id itself or its sha256 where the id is not a valid table key. `create_entity` is the atomic claim;
an expired lease is taken over with an ETag-conditional update, so one claimer wins every race.
Errors other than the expected conflicts propagate, so the host retries the batch.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Self

from remediation.clock import utcnow
from remediation.intake import CLAIM_LEASE_SECONDS
from remediation.store.clients import StorageAccess, make_table_client
from remediation.store.closing import Closing

if TYPE_CHECKING:
    from azure.data.tables import TableClient, TableEntity

DEFAULT_TABLE = "events"
DEFAULT_PARTITION = "event"
MAX_KEY_UTF16_UNITS = 512  # 1 KiB per key
CLAIMED = "claimed"
DONE = "done"

# Bounded network behaviour: a dead storage account fails a call in seconds, not minutes.
_FORBIDDEN_IN_KEYS = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")


def _valid_table_key(value: str) -> bool:
    try:
        units = len(value.encode("utf-16-le")) // 2  # raises on lone surrogates
    except UnicodeEncodeError:
        return False
    return 0 < units <= MAX_KEY_UTF16_UNITS and not _FORBIDDEN_IN_KEYS.search(value)


def row_address(key: str) -> tuple[str, str]:
    """(PartitionKey, RowKey) of a delivered id."""
    prefix, sep, _ = key.partition(":")
    partition = prefix if sep and _valid_table_key(prefix) else DEFAULT_PARTITION
    if _valid_table_key(key):
        return partition, key
    return partition, hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class TableEventLedger(Closing):
    """An EventLedger on an Azure Table; safe across threads, processes and instances."""

    def __init__(
        self,
        *,
        table_client: TableClient,
        lease_seconds: float = CLAIM_LEASE_SECONDS,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._table = table_client
        self._lease = timedelta(seconds=lease_seconds)
        self._clock = clock

    @classmethod
    def from_storage(
        cls,
        storage: StorageAccess | str,
        *,
        table_name: str = DEFAULT_TABLE,
        lease_seconds: float = CLAIM_LEASE_SECONDS,
        clock: Callable[[], datetime] = utcnow,
        **client_kwargs: Any,
    ) -> Self:
        """Connect (see `StorageAccess.table_client`) and create the table if it does not exist yet."""
        from azure.core.exceptions import ResourceExistsError

        table_client = make_table_client(storage, table_name=table_name, **client_kwargs)
        with contextlib.suppress(ResourceExistsError):
            table_client.create_table()
        return cls(table_client=table_client, lease_seconds=lease_seconds, clock=clock)

    @classmethod
    def from_connection_string(cls, conn_str: str, **kwargs: Any) -> Self:
        """`from_storage` on a connection string (local runs, Azurite, tests)."""
        return cls.from_storage(conn_str, **kwargs)

    def claim(self, key: str) -> bool:
        """True for the one caller that may handle `key`: a new id, or an expired claim taken over."""
        for _ in range(2):  # a second round only when the row vanished (released) meanwhile
            if self._create(key):
                return True
            row = self._read(key)
            if row is None:
                continue
            if row.get("Status") != CLAIMED or not self._expired(row):
                return False
            taken = self._take_over(key, row)
            if taken is not None:
                return taken
        return False

    def complete(self, key: str) -> None:
        from azure.data.tables import UpdateMode

        self._table.upsert_entity(self._entity(key, DONE), mode=UpdateMode.MERGE)

    def release(self, key: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        partition, row = row_address(key)
        with contextlib.suppress(ResourceNotFoundError):
            self._table.delete_entity(partition, row)

    def is_done(self, key: str) -> bool:
        row = self._read(key)
        return row is not None and row.get("Status") == DONE

    def close(self) -> None:
        self._table.close()

    def _entity(self, key: str, status: str) -> dict[str, Any]:
        partition, row = row_address(key)
        event_id = key.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates escaped
        entity: dict[str, Any] = {
            "PartitionKey": partition,
            "RowKey": row,
            "EventId": event_id,
            "Status": status,
        }
        if status == CLAIMED:
            entity["ClaimedAt"] = self._clock()
        return entity

    def _create(self, key: str) -> bool:
        from azure.core.exceptions import ResourceExistsError

        try:
            self._table.create_entity(self._entity(key, CLAIMED))
        except ResourceExistsError:
            return False
        return True

    def _read(self, key: str) -> TableEntity | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self._table.get_entity(*row_address(key))
        except ResourceNotFoundError:
            return None

    def _expired(self, row: TableEntity) -> bool:
        claimed_at = row.get("ClaimedAt")
        if not isinstance(claimed_at, datetime):
            return True  # a claim row without a valid lease start cannot be live
        return self._clock() - claimed_at >= self._lease

    def _take_over(self, key: str, row: TableEntity) -> bool | None:
        """True if this caller replaced the expired claim, False if another did; None if it vanished."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        try:
            self._table.update_entity(
                self._entity(key, CLAIMED),
                mode=UpdateMode.REPLACE,
                etag=row.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceModifiedError:
            return False
        except ResourceNotFoundError:
            return None
        return True
