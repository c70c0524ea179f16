"""The `events` table: the EventLedger that dedups deliveries across Function instances.

Neighbours: `remediation.intake` defines the `EventLedger` protocol (and `MemoryLedger`, whose
semantics this mirrors) and calls `claim_all`/`complete_all`/`release_all` once per batch; the
Functions layer builds a `TableEventLedger.from_storage` from the app's `StorageAccess`.

One row per delivered id. PartitionKey is the id's source prefix (before the first ':'), RowKey the
id itself or its sha256 where the id is not a valid table key. `create_entity` is the atomic claim;
an expired lease is taken over with an ETag-conditional update, so one claimer wins every race.
A batch is claimed, completed and released in entity-group transactions of up to 100 rows of one
partition: a round trip per hundred ids instead of one per id. A transaction is all or nothing, so
when one of its ids is claimed already (a redelivery, a race) the ledger falls back to claiming
that hundred row by row, with the single-row semantics above: nothing held elsewhere is taken or
dropped. Errors other than the expected conflicts propagate, so the host retries the batch.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Self

from remediation.clock import utcnow
from remediation.intake import CLAIM_LEASE_SECONDS, Claim, claim_one
from remediation.store.clients import StorageAccess, make_table_client
from remediation.store.closing import Closing

if TYPE_CHECKING:
    from azure.data.tables import TableClient, TableEntity

DEFAULT_TABLE = "events"
DEFAULT_PARTITION = "event"
MAX_KEY_UTF16_UNITS = 512  # 1 KiB per key
TRANSACTION_ROWS = 100  # the most an entity-group transaction takes
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


_ADDRESS = ("PartitionKey", "RowKey")


def _chunks(keys: Sequence[str]) -> Iterator[list[str]]:
    """Distinct `keys` in groups an entity-group transaction takes: one partition, at most 100 rows."""
    partitions: dict[str, list[str]] = {}
    for key in keys:
        partitions.setdefault(row_address(key)[0], []).append(key)
    for chunk in partitions.values():
        for start in range(0, len(chunk), TRANSACTION_ROWS):
            yield chunk[start : start + TRANSACTION_ROWS]


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

    def claim_all(self, keys: Sequence[str]) -> dict[str, Claim]:
        """Claim distinct `keys`: one transaction per hundred of a partition; row by row where one
        of a hundred is claimed already."""
        from azure.data.tables import TableTransactionError

        claims: dict[str, Claim] = {}
        for chunk in _chunks(keys):
            if len(chunk) > 1:
                try:
                    self._table.submit_transaction([("create", self._entity(key, CLAIMED)) for key in chunk])
                except TableTransactionError as conflict:
                    if conflict.status_code != 409:
                        raise
                else:
                    claims.update(dict.fromkeys(chunk, Claim.CLAIMED))
                    continue
            claims.update({key: claim_one(self, key) for key in chunk})
        return claims

    def complete_all(self, keys: Sequence[str]) -> None:
        from azure.data.tables import UpdateMode

        for chunk in _chunks(keys):
            if len(chunk) == 1:
                self.complete(chunk[0])
            else:
                merge = {"mode": UpdateMode.MERGE}
                self._table.submit_transaction([("upsert", self._entity(key, DONE), merge) for key in chunk])

    def release_all(self, keys: Sequence[str]) -> None:
        from azure.data.tables import TableTransactionError

        for chunk in _chunks(keys):
            if len(chunk) > 1:
                try:
                    self._table.submit_transaction(
                        [("delete", dict(zip(_ADDRESS, row_address(key), strict=True))) for key in chunk]
                    )
                except TableTransactionError as missing:
                    if missing.status_code != 404:
                        raise
                else:
                    continue
            for key in chunk:  # one of them is gone already (released, or never created)
                self.release(key)

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
