"""The `audit` table: `TableAuditLog`, the hash-chained, append-only AuditLog on Azure Tables.

Neighbours: `remediation.audit` defines the records, the hashing and the chain check this module
stores and reads; `remediation.store.incidents.TableIncidentStore` appends one record per audited
change; the executor may append its own. Clients come from `remediation.store.clients.StorageAccess`.

Each log seals with the `AuditKeys` it is given (`compose` and `remediate audit verify` pass the
keys from settings); `key_id` is stored as a column of keyed records.

Layout: PartitionKey = incident id; RowKey = the zero-padded seq of a record, or "head" for the
row holding count, last hash and highest revision. An append is ONE entity-group transaction
(create the record + ETag-conditional replace, or create, of the head): of two concurrent appends
exactly one commits, the other re-reads the head and chains after it, so the chain never forks.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Self

from remediation.audit import (
    GENESIS_HASH,
    NO_KEYS,
    AuditEvent,
    AuditHead,
    AuditKeys,
    AuditProblem,
    AuditRecord,
    canonical_json,
    check_chain,
    seal,
)
from remediation.store.clients import StorageAccess, make_table_client
from remediation.store.closing import Closing

if TYPE_CHECKING:
    from azure.data.tables import TableClient, TableEntity

DEFAULT_TABLE = "audit"
HEAD_ROW = "head"
SEQ_DIGITS = 10
MAX_ATTEMPTS = 60
_CONFLICTS = frozenset({409, 412})


class StoreContention(RuntimeError):
    """Too many concurrent writers kept winning; the bounded retries are spent (the host may retry)."""


def pause_before_retry(attempt: int) -> None:
    """Full-jitter exponential backoff, capped at 50 ms: contention between writers clears fast."""
    time.sleep(random.uniform(0, min(0.05, 0.001 * 2**attempt)))


class TableAuditLog(Closing):
    """An AuditLog on an Azure Table; safe across threads, processes and instances."""

    def __init__(
        self,
        *,
        table_client: TableClient,
        keys: AuditKeys = NO_KEYS,
        max_attempts: int = MAX_ATTEMPTS,
        pause: Callable[[int], None] = pause_before_retry,
    ) -> None:
        self._table = table_client
        self._keys = keys
        self._max_attempts = max_attempts
        self._pause = pause

    def with_keys(self, keys: AuditKeys) -> TableAuditLog:
        """The same table, sealed and verified with `keys` (REMEDIATION_AUDIT_KEY and the old ones)."""
        return TableAuditLog(table_client=self._table, keys=keys, max_attempts=self._max_attempts, pause=self._pause)

    @classmethod
    def from_storage(
        cls,
        storage: StorageAccess | str,
        *,
        table_name: str = DEFAULT_TABLE,
        create: bool = True,
        keys: AuditKeys = NO_KEYS,
        **client_kwargs: Any,
    ) -> Self:
        """Connect (see `make_table_client`) and create the table if it does not exist yet; with
        `create=False` nothing is created (read-only tools: a missing table fails on first use)."""
        from azure.core.exceptions import ResourceExistsError

        table_client = make_table_client(storage, table_name=table_name, **client_kwargs)
        if create:
            with contextlib.suppress(ResourceExistsError):
                table_client.create_table()
        return cls(table_client=table_client, keys=keys)

    @classmethod
    def from_connection_string(cls, conn_str: str, **kwargs: Any) -> Self:
        """`from_storage` on a connection string (local runs, Azurite, tests)."""
        return cls.from_storage(conn_str, **kwargs)

    def append(self, *, incident_id: str, event: AuditEvent, revision: int | None = None) -> AuditRecord | None:
        from azure.data.tables import TableTransactionError

        for attempt in range(self._max_attempts):
            head_row = self._head_row(incident_id)
            head = _head(head_row) if head_row is not None else AuditHead(count=0, last_hash=GENESIS_HASH)
            if revision is not None and head.revision >= revision:
                return None
            record = seal(
                incident_id=incident_id, seq=head.count + 1, prev_hash=head.last_hash, event=event, keys=self._keys
            )
            new_head = AuditHead(count=record.seq, last_hash=record.hash, revision=max(head.revision, revision or 0))
            try:
                self._table.submit_transaction(_append_operations(record, new_head, head_row))
            except TableTransactionError as conflict:
                if conflict.status_code not in _CONFLICTS:
                    raise
                self._pause(attempt)
                continue
            return record
        raise StoreContention(f"audit {incident_id}: no append won in {self._max_attempts} attempts")

    def records(self, incident_id: str) -> list[AuditRecord]:
        rows = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": incident_id})
        return sorted((_record(row) for row in rows if row["RowKey"] != HEAD_ROW), key=lambda r: r.seq)

    def verify(self, incident_id: str | None = None) -> list[AuditProblem]:
        if incident_id is None:
            rows: Iterable[TableEntity] = self._table.list_entities()
        else:
            rows = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": incident_id})
        chains: dict[str, list[TableEntity]] = defaultdict(list)
        for row in rows:
            chains[row["PartitionKey"]].append(row)
        return [problem for one, chain in sorted(chains.items()) for problem in _verify_rows(one, chain, self._keys)]

    def close(self) -> None:
        self._table.close()

    def _head_row(self, incident_id: str) -> TableEntity | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self._table.get_entity(incident_id, HEAD_ROW)
        except ResourceNotFoundError:
            return None


def _verify_rows(incident_id: str, rows: list[TableEntity], keys: AuditKeys) -> list[AuditProblem]:
    head: AuditHead | None = None
    records: list[AuditRecord] = []
    problems: list[AuditProblem] = []
    for row in rows:
        try:
            if row["RowKey"] == HEAD_ROW:
                head = _head(row)
            else:
                records.append(_record(row))
        except (KeyError, ValueError, TypeError) as unreadable:
            seq = int(row["RowKey"]) if str(row["RowKey"]).isdigit() else None
            problems.append(AuditProblem(incident_id, seq, "unreadable", f"row {row['RowKey']}: {unreadable!r}"))
    return problems + check_chain(incident_id, records, head, keys=keys)


def _append_operations(record: AuditRecord, head: AuditHead, head_row: TableEntity | None) -> list[Any]:
    from azure.core import MatchConditions
    from azure.data.tables import UpdateMode

    head_entity = {
        "PartitionKey": record.incident_id,
        "RowKey": HEAD_ROW,
        "count": head.count,
        "last_hash": head.last_hash,
        "revision": head.revision,
    }
    if head_row is None:
        head_operation: tuple[Any, ...] = ("create", head_entity)
    else:
        conditions = {"mode": UpdateMode.REPLACE, "etag": head_row.metadata["etag"]}
        head_operation = ("update", head_entity, {**conditions, "match_condition": MatchConditions.IfNotModified})
    return [("create", _entity(record)), head_operation]


def _entity(record: AuditRecord) -> dict[str, Any]:
    entity: dict[str, Any] = {"PartitionKey": record.incident_id, "RowKey": f"{record.seq:0{SEQ_DIGITS}d}"}
    for key, value in record.body().items():
        if value is not None:
            entity[key] = canonical_json(value) if key == "details" else value
    return {**entity, "hash": record.hash}


def _record(row: TableEntity) -> AuditRecord:
    return AuditRecord(
        seq=int(row["seq"]),
        at=row["at"],
        incident_id=row["incident_id"],
        kind=row["kind"],
        actor=row["actor"],
        from_state=row.get("from_state"),
        to_state=row.get("to_state"),
        details=json.loads(row["details"]),
        prev_hash=row["prev_hash"],
        hash=row["hash"],
        key_id=row.get("key_id"),
    )


def _head(row: TableEntity) -> AuditHead:
    return AuditHead(count=int(row["count"]), last_hash=row["last_hash"], revision=int(row.get("revision", 0)))
