"""The `slackmessages` table: which Slack message shows which incident, and what it last showed.

Neighbours: `bot.notifier` posts one message per incident and records it here (`create`), then
updates it; `claim` is an ETag-conditional replace, so across Function instances only one writer
renders each change and folds are throttled to one `chat.update` per interval. Connection handling
follows `remediation.store.events` (bounded timeouts, table created on first use).

One row per incident: PartitionKey "message", RowKey the incident id; columns channel, ts, the time
of the last update, and the rendered state (state, approvers, completed steps, the incident's
updated_at) from which the next update tells what is new.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any, Self

from remediation.incidents import Incident
from remediation.store.clients import StorageAccess, make_table_client

if TYPE_CHECKING:
    from azure.data.tables import TableClient, TableEntity

PARTITION = "message"


@dataclasses.dataclass(frozen=True, slots=True)
class MessageRef:
    incident_id: str
    channel: str
    ts: str
    updated_at: datetime  # when the message was last written
    state: str
    approvers: tuple[str, ...]
    completed_steps: int
    incident_revision: int  # the incident's revision the message shows: newer is larger
    etag: str | None = dataclasses.field(default=None, compare=False)

    @classmethod
    def showing(cls, incident: Incident, *, channel: str, ts: str, now: datetime) -> MessageRef:
        return cls(
            incident_id=incident.id,
            channel=channel,
            ts=ts,
            updated_at=now,
            state=incident.state.value,
            approvers=incident.approved_by,
            completed_steps=incident.completed_steps,
            incident_revision=incident.revision,
        )


class TableMessageStore:
    def __init__(self, *, table_client: TableClient) -> None:
        self._table = table_client

    @classmethod
    def from_storage(cls, storage: StorageAccess | str, *, table_name: str, **client_kwargs: Any) -> Self:
        from azure.core.exceptions import ResourceExistsError

        table_client = make_table_client(storage, table_name=table_name, **client_kwargs)
        with contextlib.suppress(ResourceExistsError):
            table_client.create_table()
        return cls(table_client=table_client)

    @classmethod
    def from_connection_string(cls, conn_str: str, **kwargs: Any) -> Self:
        """`from_storage` on a connection string (local runs, Azurite, tests)."""
        return cls.from_storage(conn_str, **kwargs)

    def get(self, incident_id: str) -> MessageRef | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return _ref(self._table.get_entity(PARTITION, incident_id))
        except ResourceNotFoundError:
            return None

    def create(self, ref: MessageRef) -> bool:
        """Record a posted message; False when the incident already has one."""
        from azure.core.exceptions import ResourceExistsError

        try:
            self._table.create_entity(_entity(ref))
        except ResourceExistsError:
            return False
        return True

    def claim(self, old: MessageRef, new: MessageRef) -> MessageRef | None:
        """Replace `old` by `new` unless another writer changed the row since `old` was read; `new` as
        stored (with its ETag), or None when another writer won."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        try:
            written = self._table.update_entity(
                _entity(new), mode=UpdateMode.REPLACE, etag=old.etag, match_condition=MatchConditions.IfNotModified
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return None
        return dataclasses.replace(new, etag=written["etag"])

    def close(self) -> None:
        self._table.close()


def _entity(ref: MessageRef) -> dict[str, Any]:
    return {
        "PartitionKey": PARTITION,
        "RowKey": ref.incident_id,
        "channel": ref.channel,
        "ts": ref.ts,
        "updated_at": ref.updated_at,
        "state": ref.state,
        "approvers": json.dumps(list(ref.approvers)),
        "completed_steps": ref.completed_steps,
        "incident_revision": ref.incident_revision,
    }


def _ref(entity: TableEntity) -> MessageRef:
    return MessageRef(
        incident_id=entity["RowKey"],
        channel=entity["channel"],
        ts=entity["ts"],
        updated_at=entity["updated_at"],
        state=entity["state"],
        approvers=tuple(json.loads(entity["approvers"])),
        completed_steps=int(entity["completed_steps"]),
        incident_revision=int(entity.get("incident_revision", 0)),
        etag=entity.metadata["etag"],
    )
