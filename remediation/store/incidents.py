"""The `incidents` table: `TableIncidentStore`, the durable IncidentStore with ETag concurrency.

Neighbours: the pure rules come from `remediation.incidents` (open/fold/decisions, `describe` for
audit); the `InMemoryIncidentStore` there has the same semantics. Every audited change is chained
into a `remediation.audit.AuditLog` (`TableAuditLog` in `remediation.store.audit`) by this store.

Layout: one partition per group, PartitionKey "incident-" + the first 8 hex digits of
sha256(group key), so writes of different groups spread over partitions while a group's incident
and its pointer share one, and opening stays one entity-group transaction:
- RowKey = incident id: the incident, scalar fields as columns, plan/signal/approvals/inputs as
  JSON text, plus `revision` and `outbox` (audit events not yet confirmed in the log). The id is
  `new_incident_id` + those 8 digits (`inc-` + 28 hex digits), so `get(id)` reads one partition.
  An ungrouped incident gets 8 random digits: a partition of its own.
- RowKey = "group-" + sha256(group key): the group pointer naming the group's latest incident.
  Opening creates the incident and creates the pointer (or replaces a stale one on its ETag) in
  one transaction, so a storm never opens two incidents and no incident exists without its pointer.
Folds and updates are ETag-conditional replaces, retried (bounded) after a 412 on fresh state.
Rows of PartitionKey "incident" (ids of 20 hex digits) predate the partitioning: read and written
by id as before, listed and pruned, but not migrated, so never in the live index.

The live index, table `<incidents>live`, PartitionKey "live", RowKey = incident id: one row per
live incident (`is_live`), so the timer and App Home read only those (`live`, `due`,
`flush_pending_audit`), however many closed ones the table keeps. A crash never hides a live
incident: the row is written before the incident becomes live (before the open transaction, before
a write that makes a closed incident live) and removed only after a write closed it and its audit
was appended, on the ETag read before that write, so an index row written meanwhile by another
writer stays. A row whose incident is closed or missing (a crashed or lost open) is removed when a
reader finds it, once older than `orphan_grace`: a writer between its index row and its write is
never undercut. `prune` deletes closed incidents past the retention.

Audit without holes or reordering: an update writes its audit event into the row's outbox in the
same conditional write, then appends the outbox to the log (idempotent by revision) and clears it.
A crash in between leaves the event in the outbox; the next write of that incident, or
`flush_pending_audit` (the timer), appends it. A writer that lost a race never audits.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Self

from remediation.audit import AuditEvent, AuditLog
from remediation.clock import Clock, timestamp, utcnow
from remediation.incidents import (
    TERMINAL_FOR_GROUPING,
    Change,
    Incident,
    IncidentState,
    UnknownIncident,
    can_fold,
    checked,
    describe,
    fold,
    new_incident_id,
    open_incident,
)
from remediation.incidents.storage import deadline_order, is_due, is_live
from remediation.plans import Plan
from remediation.signals.model import Signal
from remediation.store.audit import MAX_ATTEMPTS, StoreContention, TableAuditLog, pause_before_retry
from remediation.store.clients import StorageAccess
from remediation.store.closing import Closing
from remediation.store.incident_rows import (
    INDEX_PARTITION,
    INDEX_SUFFIX,
    ORPHAN_GRACE,
    Row,
    group_partition,
    group_row,
    partition_of,
    row_of,
    tag,
    to_entity,
)

if TYPE_CHECKING:
    from azure.data.tables import TableClient, TableEntity

DEFAULT_TABLE = "incidents"
_INCIDENT_ROWS = "PartitionKey ge 'incident' and PartitionKey lt 'incident.' and RowKey ge 'inc-' and RowKey lt 'inc.'"
_CONFLICTS = frozenset({409, 412})
GROUP_LOCK_STRIPES = 64


class TableIncidentStore(Closing):
    """An IncidentStore on an Azure Table; safe across threads, processes and instances."""

    def __init__(
        self,
        *,
        table_client: TableClient,
        audit: AuditLog,
        index_client: TableClient | None = None,
        max_attempts: int = MAX_ATTEMPTS,
        pause: Callable[[int], None] = pause_before_retry,
        clock: Clock = utcnow,
        orphan_grace: timedelta = ORPHAN_GRACE,
    ) -> None:
        """`index_client`: the live index's table; None keeps the index in `table_client`'s table
        (its own partition: the same guarantees, but a query there also passes Azurite over the
        incidents)."""
        self._table = table_client
        self._index = index_client if index_client is not None else table_client
        self._clock = clock
        self._orphan_grace = orphan_grace
        self.audit = audit
        self._max_attempts = max_attempts
        self._pause = pause
        self._group_locks = tuple(threading.Lock() for _ in range(GROUP_LOCK_STRIPES))

    @classmethod
    def from_storage(
        cls,
        storage: StorageAccess | str,
        *,
        table_name: str = DEFAULT_TABLE,
        audit_table: str = "audit",
        create: bool = True,
        **client_kwargs: Any,
    ) -> Self:
        """Connect both tables (see `StorageAccess.table_client`), creating them if they do not exist yet;
        `create=False` touches nothing (read-only tools: a missing table then fails on first use)."""
        from azure.core.exceptions import ResourceExistsError

        storage = StorageAccess.coerce(storage)
        table_client = storage.table_client(table_name, **client_kwargs)
        index_client = storage.table_client(table_name + INDEX_SUFFIX, **client_kwargs)
        if create:
            for client in (table_client, index_client):
                with contextlib.suppress(ResourceExistsError):
                    client.create_table()
        audit = TableAuditLog.from_storage(storage, table_name=audit_table, create=create, **client_kwargs)
        return cls(table_client=table_client, audit=audit, index_client=index_client)

    @classmethod
    def from_connection_string(cls, conn_str: str, **kwargs: Any) -> Self:
        """`from_storage` on a connection string (local runs, Azurite, tests)."""
        return cls.from_storage(conn_str, **kwargs)

    def open_or_fold(
        self, *, plan: Plan, signal: Signal, now: datetime, requester: str | None = None
    ) -> tuple[Incident, bool]:
        if bool(plan.group_key) and requester is None:
            return self.open_or_fold_all(plan=plan, signals=(signal,), now=now)
        return self._open_or_fold(plan=plan, signals=(signal,), now=now, requester=requester, grouped=False)

    def open_or_fold_all(self, *, plan: Plan, signals: Sequence[Signal], now: datetime) -> tuple[Incident, bool]:
        """See `IncidentStore.open_or_fold_all`: the group pointer and the incident read once, one write."""
        if not plan.group_key:
            raise ValueError("only Signals of one group fold together; this plan has no group key")
        # Threads of this instance take turns on a group instead of wasting round trips on 412s;
        # other instances still race, and the ETags decide.
        with self._group_locks[hash(plan.group_key) % len(self._group_locks)]:
            return self._open_or_fold(plan=plan, signals=signals, now=now, requester=None, grouped=True)

    def _open_or_fold(
        self, *, plan: Plan, signals: Sequence[Signal], now: datetime, requester: str | None, grouped: bool
    ) -> tuple[Incident, bool]:
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        ids = [signal.id for signal in signals]
        pointer_key = (group_partition(plan.group_key), group_row(plan.group_key))
        pointer = self._entity(*pointer_key) if grouped else None
        for attempt in range(self._max_attempts):
            current = self._read(pointer["incident_id"]) if pointer is not None else None
            if current is not None and can_fold(current.incident, plan=plan, now=now):
                folded = fold(current.incident, now=now, signal_ids=ids)
                if folded is current.incident:
                    return current.incident, False  # these Signals are counted already
                try:
                    return self._write(current, folded, event=None), False
                except ResourceModifiedError:
                    self._pause(attempt)  # another fold won: re-read the incident the pointer still names
                    continue
                except ResourceNotFoundError:
                    pass
            else:
                incident_id = new_incident_id(now) + tag(plan.group_key)
                opened = open_incident(
                    plan=plan, signal=signals[0], now=now, requester=requester, incident_id=incident_id
                )
                if len(ids) > 1:
                    opened = fold(opened, now=now, signal_ids=ids[1:])
                created = self._create(opened, pointer=pointer, grouped=grouped)
                if created is not None:
                    return created, True
            self._pause(attempt)
            pointer = self._entity(*pointer_key) if grouped else None
        raise StoreContention(f"group {plan.group_key!r}: no open or fold won in {self._max_attempts} attempts")

    def get(self, incident_id: str) -> Incident | None:
        row = self._read(incident_id)
        return None if row is None else row.incident

    def live(self, *, states: Iterable[IncidentState] | None = None) -> builtins.list[Incident]:
        wanted = None if states is None else frozenset(IncidentState(state) for state in states)
        found = [incident for incident in self._sweep()[0] if wanted is None or incident.state in wanted]
        return sorted(found, key=lambda incident: incident.id)

    def due(self, now: datetime) -> builtins.list[Incident]:
        return sorted((incident for incident in self._sweep()[0] if is_due(incident, now)), key=deadline_order)

    def update(self, incident: Incident, change: Change, *, actor: str | None = None) -> Incident:
        """See `IncidentStore.update`. Every attempt starts from a fresh read, not `incident.etag`:
        the write must carry the row's pending audit outbox on, and the read is one cheap GET.
        """
        from azure.core.exceptions import ResourceModifiedError

        for attempt in range(self._max_attempts):
            current = self._read(incident.id)
            if current is None:
                raise UnknownIncident(incident.id)
            new = checked(current.incident, change(current.incident))
            if new == current.incident:
                return current.incident
            try:
                return self._write(current, new, event=describe(current.incident, new, actor=actor))
            except ResourceModifiedError:
                self._pause(attempt)
        raise StoreContention(f"incident {incident.id}: no update won in {self._max_attempts} attempts")

    def flush_pending_audit(self) -> int:
        """Append audit events a crashed writer left in outboxes; returns how many incidents had some.

        Only indexed incidents can hold any: a row leaves the index only once its outbox is empty.
        """
        return self._sweep()[1]

    def list(self, *, states: Iterable[IncidentState] | None = None) -> list[Incident]:
        """Every stored incident, a scan of the table: for the CLI and tests, never the timer."""
        query, parameters = _INCIDENT_ROWS, dict[str, str]()
        if states is not None:
            wanted = sorted({IncidentState(state) for state in states})
            if not wanted:
                return []
            parameters |= {f"s{index}": state.value for index, state in enumerate(wanted)}
            choices = " or ".join(f"state eq @s{index}" for index in range(len(wanted)))
            query += f" and ( {choices} )"  # the SDK finds @names only between spaces
        rows = self._table.query_entities(query, parameters=parameters)
        return sorted((row_of(entity).incident for entity in rows), key=lambda incident: incident.id)

    def prune(self, *, before: datetime) -> int:
        """See `IncidentStore.prune`: a scan of the closed rows, for a daily retention run."""
        closed = " or ".join(f"state eq '{state.value}'" for state in sorted(TERMINAL_FOR_GROUPING))
        query = f"{_INCIDENT_ROWS} and updated_at lt @before and ( {closed} )"
        pruned = 0
        for entity in self._table.query_entities(query, parameters={"before": timestamp(before)}):
            row = row_of(entity)
            incident = self._flush(row.incident, row.outbox)  # what the log lacks goes there first
            if is_live(incident) or (row.outbox and incident.etag == row.incident.etag):
                continue
            pruned += self._delete(incident, partition=entity["PartitionKey"])
        return pruned

    def close(self) -> None:
        self._table.close()
        if self._index is not self._table:
            self._index.close()

    def _entity(self, partition: str, row_key: str) -> TableEntity | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self._table.get_entity(partition, row_key)
        except ResourceNotFoundError:
            return None

    def _read(self, incident_id: str) -> Row | None:
        partition = partition_of(incident_id)
        entity = None if partition is None else self._entity(partition, incident_id)
        return None if entity is None else row_of(entity)

    def _sweep(self) -> tuple[builtins.list[Incident], int]:
        """Read the indexed incidents: the live ones, and how many had audit pending (appended now).
        An entry whose incident is closed (its audit appended) or missing is retired."""
        live, pending = [], 0
        for entry in self._index.query_entities("PartitionKey eq @pk", parameters={"pk": INDEX_PARTITION}):
            row = self._read(entry["RowKey"])
            if row is None:
                self._retire(entry)
                continue
            incident = self._flush(row.incident, row.outbox)
            pending += bool(row.outbox)
            if is_live(incident):
                live.append(incident)
            elif not row.outbox or incident.etag != row.incident.etag:
                self._retire(entry)
        return live, pending

    def _retire(self, entry: TableEntity) -> None:
        """Remove a stale index entry once older than the grace: a writer between its index row and
        its write (an open under way, an undo being requested) is never undercut."""
        written = entry.metadata.get("timestamp")
        if written is not None and self._clock() - written >= self._orphan_grace:
            self._unindex(entry["RowKey"], etag=str(entry.metadata["etag"]))

    def _indexed(self, incident_id: str) -> str:
        """Write the index row of `incident_id` (before it may become live); its ETag."""
        written = self._index.upsert_entity({"PartitionKey": INDEX_PARTITION, "RowKey": incident_id})
        return str(written["etag"])

    def _index_etag(self, incident_id: str) -> str:
        """The ETag of the index row of live `incident_id`, written if a crash or an old row left none."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return str(self._index.get_entity(INDEX_PARTITION, incident_id).metadata["etag"])
        except ResourceNotFoundError:
            return self._indexed(incident_id)

    def _unindex(self, incident_id: str, *, etag: str) -> None:
        """Remove the index row unless someone wrote it since `etag` was read (then it stays)."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError

        with contextlib.suppress(ResourceModifiedError):  # a missing row raises nothing
            self._index.delete_entity(
                INDEX_PARTITION, incident_id, etag=etag, match_condition=MatchConditions.IfNotModified
            )

    def _delete(self, incident: Incident, *, partition: str) -> int:
        """Delete a closed incident and the group pointer naming it, on their ETags; 1 if done."""
        from azure.core import MatchConditions
        from azure.data.tables import TableTransactionError

        unchanged = {"match_condition": MatchConditions.IfNotModified}
        operations: list[Any] = [
            ("delete", {"PartitionKey": partition, "RowKey": incident.id}, {**unchanged, "etag": incident.etag})
        ]
        pointer = self._entity(partition, group_row(incident.group_key)) if incident.group_key else None
        if pointer is not None and pointer.get("incident_id") == incident.id:
            operations.append(("delete", pointer, {**unchanged, "etag": pointer.metadata["etag"]}))
        try:
            self._table.submit_transaction(operations)
        except TableTransactionError as conflict:
            if conflict.status_code in (*_CONFLICTS, 404):
                return 0  # written or deleted meanwhile: the next run looks again
            raise
        self._index.delete_entity(INDEX_PARTITION, incident.id)  # a leftover entry, if any
        return 1

    def _write(self, current: Row, new: Incident, *, event: AuditEvent | None) -> Incident:
        """Replace `current` by `new` if nobody wrote it meanwhile (else ResourceModifiedError), then audit."""
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        revision = current.revision + 1
        outbox = (*current.outbox, (revision, event)) if event is not None else current.outbox
        index_etag = None
        if not is_live(current.incident):
            index_etag = self._indexed(new.id)  # before the write: it may make the incident live
        elif not is_live(new):
            index_etag = self._index_etag(new.id)  # read before the write: removed on it after
        written = self._table.update_entity(
            to_entity(new, revision=revision, outbox=outbox),
            mode=UpdateMode.REPLACE,
            etag=current.incident.etag,
            match_condition=MatchConditions.IfNotModified,
        )
        stored = self._flush(dataclasses.replace(new, etag=written["etag"], revision=revision), outbox)
        if index_etag is not None and not is_live(stored) and (not outbox or stored.etag != written["etag"]):
            self._unindex(new.id, etag=index_etag)  # closed and audited; an entry written since stays
        return stored

    def _create(self, incident: Incident, *, pointer: TableEntity | None, grouped: bool) -> Incident | None:
        """Create `incident` (and point its group at it) atomically; None if another opener won."""
        from azure.core import MatchConditions
        from azure.data.tables import TableTransactionError, UpdateMode

        event = describe(None, incident)
        outbox = ((1, event),) if event is not None else ()
        entity = to_entity(incident, revision=1, outbox=outbox)
        operations: list[Any] = [("create", entity)]
        if grouped:
            target = {"PartitionKey": entity["PartitionKey"], "RowKey": group_row(incident.group_key)}
            target["incident_id"] = incident.id
            if pointer is None:
                operations.append(("create", target))
            else:
                condition = {"etag": pointer.metadata["etag"], "match_condition": MatchConditions.IfNotModified}
                operations.append(("update", target, {"mode": UpdateMode.REPLACE, **condition}))
        index_etag = self._indexed(incident.id)  # before the incident exists: a crash leaves an orphan entry
        try:
            results = self._table.submit_transaction(operations)
        except TableTransactionError as conflict:
            if conflict.status_code in _CONFLICTS:
                self._unindex(incident.id, etag=index_etag)
                return None
            raise
        return self._flush(dataclasses.replace(incident, etag=results[0]["etag"], revision=1), outbox)

    def _flush(self, incident: Incident, outbox: Sequence[tuple[int, AuditEvent]]) -> Incident:
        """Append the outbox to the audit log, then empty it unless someone wrote the row since."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError
        from azure.data.tables import UpdateMode

        if not outbox:
            return incident
        for revision, event in outbox:
            self.audit.append(incident_id=incident.id, event=event, revision=revision)
        cleared = {"PartitionKey": partition_of(incident.id), "RowKey": incident.id, "outbox": "[]"}
        try:
            written = self._table.update_entity(
                cleared, mode=UpdateMode.MERGE, etag=incident.etag, match_condition=MatchConditions.IfNotModified
            )
        except ResourceModifiedError:
            return incident  # a newer write carries these events on, and the log skips them by revision
        return dataclasses.replace(incident, etag=written["etag"])
