"""The `incidents` table: `TableIncidentStore`, the durable IncidentStore with ETag concurrency.

Neighbours: the pure rules come from `remediation.incidents` (open/fold/decisions, `describe` for
audit); the `InMemoryIncidentStore` there has the same semantics. Every audited change is chained
into a `remediation.audit.AuditLog` (`TableAuditLog` in `remediation.store.audit`) by this store.

Layout, all in PartitionKey "incident" so that opening is one entity-group transaction:
- RowKey = incident id (`inc-...`): the incident, scalar fields as columns, plan/signal/approvals/
  inputs as JSON text, plus `revision` and `outbox` (audit events not yet confirmed in the log).
- RowKey = "group-" + sha256(group key): the group pointer naming the group's latest incident.
  Opening creates the incident and creates the pointer (or replaces a stale one on its ETag) in
  one transaction, so a storm never opens two incidents and no incident exists without its pointer.
Folds and updates are ETag-conditional replaces, retried (bounded) after a 412 on fresh state.

Audit without holes or reordering: an update writes its audit event into the row's outbox in the
same conditional write, then appends the outbox to the log (idempotent by revision) and clears it.
A crash in between leaves the event in the outbox; the next write of that incident, or
`flush_pending_audit` (the timer), appends it. A writer that lost a race never audits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Self

from remediation.audit import AuditEvent, AuditLog, canonical_json
from remediation.clock import timestamp
from remediation.incidents import (
    WAITING,
    Change,
    Incident,
    IncidentState,
    UnknownIncident,
    can_fold,
    checked,
    describe,
    fold,
    open_incident,
)
from remediation.plans import Plan
from remediation.signals.model import Signal
from remediation.store.audit import MAX_ATTEMPTS, StoreContention, TableAuditLog, pause_before_retry
from remediation.store.clients import make_table_client
from remediation.store.closing import Closing

if TYPE_CHECKING:
    from azure.data.tables import TableClient, TableEntity

DEFAULT_TABLE = "incidents"
PARTITION = "incident"
GROUP_PREFIX = "group-"
MAX_PROPERTY_BYTES = 63 * 1024  # a Table string property holds 64 KiB of UTF-16
_JSON_COLUMNS = frozenset({"plan", "signal", "approvals", "inputs", "step_results", "previews"})
_INCIDENT_ROWS = "PartitionKey eq @pk and RowKey ge 'inc-' and RowKey lt 'inc.'"
_CONFLICTS = frozenset({409, 412})
GROUP_LOCK_STRIPES = 64


@dataclasses.dataclass(frozen=True, slots=True)
class _Row:
    incident: Incident
    revision: int
    outbox: tuple[tuple[int, AuditEvent], ...]  # (revision, event), oldest first


class TableIncidentStore(Closing):
    """An IncidentStore on an Azure Table; safe across threads, processes and instances."""

    def __init__(
        self,
        *,
        table_client: TableClient,
        audit: AuditLog,
        max_attempts: int = MAX_ATTEMPTS,
        pause: Callable[[int], None] = pause_before_retry,
    ) -> None:
        self._table = table_client
        self.audit = audit
        self._max_attempts = max_attempts
        self._pause = pause
        self._group_locks = tuple(threading.Lock() for _ in range(GROUP_LOCK_STRIPES))

    @classmethod
    def from_connection_string(
        cls, conn_str: str, *, table_name: str = DEFAULT_TABLE, audit_table: str = "audit", **client_kwargs: Any
    ) -> Self:
        """Connect both tables (see `make_table_client`), creating them if they do not exist yet."""
        from azure.core.exceptions import ResourceExistsError

        table_client = make_table_client(conn_str, table_name=table_name, **client_kwargs)
        with contextlib.suppress(ResourceExistsError):
            table_client.create_table()
        audit = TableAuditLog.from_connection_string(conn_str, table_name=audit_table, **client_kwargs)
        return cls(table_client=table_client, audit=audit)

    def open_or_fold(
        self, *, plan: Plan, signal: Signal, now: datetime, requester: str | None = None
    ) -> tuple[Incident, bool]:
        grouped = bool(plan.group_key) and requester is None
        if not grouped:
            return self._open_or_fold(plan=plan, signal=signal, now=now, requester=requester, grouped=False)
        # Threads of this instance take turns on a group instead of wasting round trips on 412s;
        # other instances still race, and the ETags decide.
        with self._group_locks[hash(plan.group_key) % len(self._group_locks)]:
            return self._open_or_fold(plan=plan, signal=signal, now=now, requester=requester, grouped=True)

    def _open_or_fold(
        self, *, plan: Plan, signal: Signal, now: datetime, requester: str | None, grouped: bool
    ) -> tuple[Incident, bool]:
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        pointer_key = _group_row(plan.group_key)
        pointer = self._entity(pointer_key) if grouped else None
        for attempt in range(self._max_attempts):
            current = self._read(pointer["incident_id"]) if pointer is not None else None
            if current is not None and can_fold(current.incident, plan=plan, now=now):
                try:
                    return self._write(current, fold(current.incident, now=now), event=None), False
                except ResourceModifiedError:
                    self._pause(attempt)  # another fold won: re-read the incident the pointer still names
                    continue
                except ResourceNotFoundError:
                    pass
            else:
                opened = open_incident(plan=plan, signal=signal, now=now, requester=requester)
                created = self._create(opened, pointer=pointer, grouped=grouped)
                if created is not None:
                    return created, True
            self._pause(attempt)
            pointer = self._entity(pointer_key) if grouped else None
        raise StoreContention(f"group {plan.group_key!r}: no open or fold won in {self._max_attempts} attempts")

    def get(self, incident_id: str) -> Incident | None:
        row = self._read(incident_id)
        return None if row is None else row.incident

    def due(self, now: datetime) -> list[Incident]:
        states = " or ".join(f"state eq '{state.value}'" for state in sorted(WAITING))
        query = f"{_INCIDENT_ROWS} and ({states}) and deadline le @now"
        rows = self._table.query_entities(query, parameters={"pk": PARTITION, "now": timestamp(now)})
        return sorted((_row(entity).incident for entity in rows), key=lambda i: (i.deadline or now, i.id))

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
        """Append audit events a crashed writer left in outboxes; returns how many incidents had some."""
        rows = self._table.query_entities(f"{_INCIDENT_ROWS} and outbox ne '[]'", parameters={"pk": PARTITION})
        pending = [_row(entity) for entity in rows]
        for row in pending:
            self._flush(row.incident, row.outbox)
        return len(pending)

    def list(self, *, states: Iterable[IncidentState] | None = None) -> list[Incident]:
        query, parameters = _INCIDENT_ROWS, {"pk": PARTITION}
        if states is not None:
            wanted = sorted({IncidentState(state) for state in states})
            if not wanted:
                return []
            parameters |= {f"s{index}": state.value for index, state in enumerate(wanted)}
            choices = " or ".join(f"state eq @s{index}" for index in range(len(wanted)))
            query += f" and ( {choices} )"  # the SDK finds @names only between spaces
        return [_row(entity).incident for entity in self._table.query_entities(query, parameters=parameters)]

    def close(self) -> None:
        self._table.close()

    def _entity(self, row_key: str) -> TableEntity | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self._table.get_entity(PARTITION, row_key)
        except ResourceNotFoundError:
            return None

    def _read(self, incident_id: str) -> _Row | None:
        entity = self._entity(incident_id)
        return None if entity is None else _row(entity)

    def _write(self, current: _Row, new: Incident, *, event: AuditEvent | None) -> Incident:
        """Replace `current` by `new` if nobody wrote it meanwhile (else ResourceModifiedError), then audit."""
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        revision = current.revision + 1
        outbox = (*current.outbox, (revision, event)) if event is not None else current.outbox
        written = self._table.update_entity(
            _to_entity(new, revision=revision, outbox=outbox),
            mode=UpdateMode.REPLACE,
            etag=current.incident.etag,
            match_condition=MatchConditions.IfNotModified,
        )
        return self._flush(dataclasses.replace(new, etag=written["etag"]), outbox)

    def _create(self, incident: Incident, *, pointer: TableEntity | None, grouped: bool) -> Incident | None:
        """Create `incident` (and point its group at it) atomically; None if another opener won."""
        from azure.core import MatchConditions
        from azure.data.tables import TableTransactionError, UpdateMode

        event = describe(None, incident)
        outbox = ((1, event),) if event is not None else ()
        operations: list[Any] = [("create", _to_entity(incident, revision=1, outbox=outbox))]
        if grouped:
            target = {"PartitionKey": PARTITION, "RowKey": _group_row(incident.group_key), "incident_id": incident.id}
            if pointer is None:
                operations.append(("create", target))
            else:
                condition = {"etag": pointer.metadata["etag"], "match_condition": MatchConditions.IfNotModified}
                operations.append(("update", target, {"mode": UpdateMode.REPLACE, **condition}))
        try:
            results = self._table.submit_transaction(operations)
        except TableTransactionError as conflict:
            if conflict.status_code in _CONFLICTS:
                return None
            raise
        return self._flush(dataclasses.replace(incident, etag=results[0]["etag"]), outbox)

    def _flush(self, incident: Incident, outbox: Sequence[tuple[int, AuditEvent]]) -> Incident:
        """Append the outbox to the audit log, then empty it unless someone wrote the row since."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError
        from azure.data.tables import UpdateMode

        if not outbox:
            return incident
        for revision, event in outbox:
            self.audit.append(incident_id=incident.id, event=event, revision=revision)
        cleared = {"PartitionKey": PARTITION, "RowKey": incident.id, "outbox": "[]"}
        try:
            written = self._table.update_entity(
                cleared, mode=UpdateMode.MERGE, etag=incident.etag, match_condition=MatchConditions.IfNotModified
            )
        except ResourceModifiedError:
            return incident  # a newer write carries these events on, and the log skips them by revision
        return dataclasses.replace(incident, etag=written["etag"])


def _group_row(group_key: str) -> str:
    return GROUP_PREFIX + hashlib.sha256(group_key.encode("utf-8", "surrogatepass")).hexdigest()


def _to_entity(incident: Incident, *, revision: int, outbox: Sequence[tuple[int, AuditEvent]]) -> dict[str, Any]:
    entity: dict[str, Any] = {"PartitionKey": PARTITION, "RowKey": incident.id, "revision": revision}
    columns = {**incident.to_json(), "outbox": [_event_json(r, e) for r, e in outbox]}
    for key, value in columns.items():
        if key in _JSON_COLUMNS or key == "outbox":
            value = canonical_json(value)
        if isinstance(value, str) and len(value.encode("utf-16-le", "surrogatepass")) > MAX_PROPERTY_BYTES:
            raise ValueError(f"incident {incident.id}: {key} is too large to store ({len(value)} characters)")
        if value is not None:
            entity[key] = value
    return entity


def _row(entity: TableEntity) -> _Row:
    data = {key: json.loads(value) if key in _JSON_COLUMNS else value for key, value in entity.items()}
    outbox = tuple(_event_from_json(item) for item in json.loads(entity.get("outbox", "[]")))
    incident = Incident.from_json(data, etag=entity.metadata["etag"])
    return _Row(incident=incident, revision=int(entity.get("revision", 0)), outbox=outbox)


def _event_json(revision: int, event: AuditEvent) -> dict[str, Any]:
    return {**dataclasses.asdict(event), "at": timestamp(event.at), "revision": revision}


def _event_from_json(data: dict[str, Any]) -> tuple[int, AuditEvent]:
    fields = {key: value for key, value in data.items() if key != "revision"}
    return int(data["revision"]), AuditEvent(**{**fields, "at": datetime.fromisoformat(fields["at"])})
