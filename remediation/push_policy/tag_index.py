"""The `tagindex` table: which digest each tag of our registries points at, to catch tag overwrites.

Neighbours: `push_policy.PushPolicy` records every ImagePushed and ImageDeleted signal here and
marks a push that moved an existing tag. One row per (registry, repository, tag): PartitionKey the
login server, RowKey `repository:tag` with `/` as `|` (a table key may not hold `/`). Updates are
ETag-conditional, so two pushes racing on one tag each see the digest the other replaced. A
redelivered push (same event id) gets the same answer again, and an event older than the row
(Event Grid does not order deliveries) does not move the tag back.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any, Self

from remediation.store.clients import StorageAccess, make_table_client

if TYPE_CHECKING:
    from azure.data.tables import TableClient

logger = logging.getLogger(__name__)

DEFAULT_TABLE = "tagindex"
_ATTEMPTS = 5


def row_key(repository: str, tag: str) -> str:
    return f"{repository.replace('/', '|')}:{tag}"


class TableTagIndex:
    def __init__(self, *, table_client: TableClient) -> None:
        self._table = table_client

    @classmethod
    def from_storage(cls, storage: StorageAccess | str, *, table_name: str = DEFAULT_TABLE, **kwargs: Any) -> Self:
        from azure.core.exceptions import ResourceExistsError

        table = make_table_client(storage, table_name=table_name, **kwargs)
        with contextlib.suppress(ResourceExistsError):
            table.create_table()
        return cls(table_client=table)

    @classmethod
    def from_connection_string(cls, conn_str: str, **kwargs: Any) -> Self:
        """`from_storage` on a connection string (local runs, Azurite, tests)."""
        return cls.from_storage(conn_str, **kwargs)

    def record_push(
        self, *, registry: str, repository: str, tag: str, digest: str, event_id: str, time: datetime
    ) -> str | None:
        """The digest the tag pointed at before this push, when the push moved it; otherwise None."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        partition, row_id = registry.lower(), row_key(repository, tag)
        entity = {
            "PartitionKey": partition,
            "RowKey": row_id,
            "Repository": repository,
            "Tag": tag,
            "Digest": digest,
            "EventId": event_id,
            "PushedAt": time,
        }
        for _ in range(_ATTEMPTS):
            try:
                row = self._table.get_entity(partition, row_id)
            except ResourceNotFoundError:
                with contextlib.suppress(ResourceExistsError):
                    self._table.create_entity({**entity, "PreviousDigest": ""})
                    return None
                continue  # another push created it first: read it
            if row.get("EventId") == event_id:
                return row.get("PreviousDigest") or None  # a redelivery: the same answer
            if row.get("Digest") == digest or _older(time, row.get("PushedAt")):
                return None
            with contextlib.suppress(ResourceModifiedError, ResourceNotFoundError):
                self._table.update_entity(
                    {**entity, "PreviousDigest": row["Digest"]},
                    mode=UpdateMode.REPLACE,
                    etag=row.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
                return str(row["Digest"])
        raise RuntimeError(f"tag index: {repository}:{tag} kept changing under {_ATTEMPTS} attempts")

    def record_delete(self, *, registry: str, repository: str, digest: str | None, tag: str | None) -> int:
        """Forget the tags of a deleted image (or the one deleted tag); the number of rows removed."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        partition = registry.lower()
        if tag is not None:
            rows = [r for r in self._rows(partition, repository) if r["Tag"] == tag]
        else:
            rows = [r for r in self._rows(partition, repository) if r.get("Digest") == digest]
        removed = 0
        for row in rows:
            if digest is not None and row.get("Digest") != digest:
                continue  # the tag was pushed again since: keep it
            with contextlib.suppress(ResourceModifiedError, ResourceNotFoundError):
                self._table.delete_entity(row, etag=row.metadata["etag"], match_condition=MatchConditions.IfNotModified)
                removed += 1
        return removed

    def _rows(self, partition: str, repository: str) -> list[Any]:
        query = "PartitionKey eq @p and Repository eq @r"
        return list(self._table.query_entities(query, parameters={"p": partition, "r": repository}))

    def close(self) -> None:
        self._table.close()


def _older(time: datetime, stored: object) -> bool:
    return isinstance(stored, datetime) and time < stored
