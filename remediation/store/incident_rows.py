"""How an incident is laid out in the `incidents` table: partitions, row keys, columns, the audit outbox.

Neighbours: `remediation.store.incidents.TableIncidentStore` reads and writes rows through these;
the benchmarks and tests seed rows with `entity_of`. See that module's docstring for the layout and
why it is so.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from remediation.audit import AuditEvent, canonical_json
from remediation.clock import timestamp
from remediation.incidents import Incident

if TYPE_CHECKING:
    from azure.data.tables import TableEntity

LEGACY_PARTITION = "incident"
PARTITION_PREFIX = "incident-"
TAG_DIGITS = 8
GROUP_PREFIX = "group-"
INDEX_SUFFIX = "live"
INDEX_PARTITION = "live"
ORPHAN_GRACE = timedelta(hours=1)  # far beyond any writer's time between its index row and its write
MAX_PROPERTY_BYTES = 63 * 1024  # a Table string property holds 64 KiB of UTF-16
_HEX = frozenset("0123456789abcdef")
_JSON_COLUMNS = frozenset(
    {"plan", "signal", "approvals", "inputs", "step_results", "previews", "recent_signals", "undo", "blast_radius"}
)


@dataclasses.dataclass(frozen=True, slots=True)
class Row:
    incident: Incident
    revision: int
    outbox: tuple[tuple[int, AuditEvent], ...]  # (revision, event), oldest first


def digest(group_key: str) -> str:
    return hashlib.sha256(group_key.encode("utf-8", "surrogatepass")).hexdigest()


def group_row(group_key: str) -> str:
    return GROUP_PREFIX + digest(group_key)


def tag(group_key: str) -> str:
    """The id suffix naming the partition: the group's, or a partition of its own when ungrouped."""
    return digest(group_key)[:TAG_DIGITS] if group_key else secrets.token_hex(TAG_DIGITS // 2)


def group_partition(group_key: str) -> str:
    return PARTITION_PREFIX + tag(group_key)


def partition_of(incident_id: str) -> str | None:
    """Where the row of `incident_id` lives; None for a text no store ever gave out."""
    digits = incident_id.removeprefix("inc-")
    if digits == incident_id or not set(digits) <= _HEX:
        return None
    if len(digits) == 20 + TAG_DIGITS:
        return PARTITION_PREFIX + digits[-TAG_DIGITS:]
    return LEGACY_PARTITION if len(digits) == 20 else None


def entity_of(incident: Incident, *, revision: int = 1) -> dict[str, Any]:
    """The row of a new `incident` with nothing pending: what a bulk loader (the benchmark) writes."""
    return to_entity(incident, revision=revision, outbox=())


def to_entity(incident: Incident, *, revision: int, outbox: Sequence[tuple[int, AuditEvent]]) -> dict[str, Any]:
    partition = partition_of(incident.id)
    if partition is None:
        raise ValueError(f"{incident.id!r} is not an id this store gave out")
    entity: dict[str, Any] = {"PartitionKey": partition, "RowKey": incident.id, "revision": revision}
    columns = {**incident.to_json(), "outbox": [_event_json(r, e) for r, e in outbox]}
    for key, value in columns.items():
        if key in _JSON_COLUMNS or key == "outbox":
            value = canonical_json(value)
        if isinstance(value, str) and len(value.encode("utf-16-le", "surrogatepass")) > MAX_PROPERTY_BYTES:
            raise ValueError(f"incident {incident.id}: {key} is too large to store ({len(value)} characters)")
        if value is not None:
            entity[key] = value
    return entity


def row_of(entity: TableEntity) -> Row:
    data = {key: json.loads(value) if key in _JSON_COLUMNS else value for key, value in entity.items()}
    outbox = tuple(_event_from_json(item) for item in json.loads(entity.get("outbox", "[]")))
    revision = int(entity.get("revision", 0))
    incident = dataclasses.replace(Incident.from_json(data, etag=entity.metadata["etag"]), revision=revision)
    return Row(incident=incident, revision=revision, outbox=outbox)


def _event_json(revision: int, event: AuditEvent) -> dict[str, Any]:
    return {**dataclasses.asdict(event), "at": timestamp(event.at), "revision": revision}


def _event_from_json(data: dict[str, Any]) -> tuple[int, AuditEvent]:
    fields = {key: value for key, value in data.items() if key != "revision"}
    return int(data["revision"]), AuditEvent(**{**fields, "at": datetime.fromisoformat(fields["at"])})
