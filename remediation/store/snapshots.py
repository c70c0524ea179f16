"""The `snapshots` blob container: write-once copies of targets before destructive steps (undo sources).

Neighbours: actions save through the `SnapshotStore` protocol of `remediation.actions.runtime`;
undo loads them. `InMemorySnapshotStore` has the same semantics for tests and the CLI.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self

from remediation.store.clients import CLIENT_DEFAULTS, StorageAccess
from remediation.store.closing import Closing

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient

DEFAULT_CONTAINER = "snapshots"
BLOB_DEFAULTS: dict[str, Any] = {**CLIENT_DEFAULTS, "read_timeout": 20}  # a snapshot is larger than a row


class SnapshotMissing(LookupError):
    def __init__(self, key: str) -> None:
        super().__init__(f"no snapshot {key}")
        self.key = key


class BlobSnapshotStore(Closing):
    def __init__(self, *, container: ContainerClient) -> None:
        self._container = container

    @classmethod
    def from_storage(cls, storage: StorageAccess | str, *, container: str = DEFAULT_CONTAINER, **kwargs: Any) -> Self:
        """Connect with bounded timeouts and retries, creating the container if it does not exist."""
        from azure.core.exceptions import ResourceExistsError

        client = StorageAccess.coerce(storage).container_client(container, **{**BLOB_DEFAULTS, **kwargs})
        with contextlib.suppress(ResourceExistsError):
            client.create_container()
        return cls(container=client)

    @classmethod
    def from_connection_string(cls, conn_str: str, **kwargs: Any) -> Self:
        """`from_storage` on a connection string (local runs, Azurite, tests)."""
        return cls.from_storage(conn_str, **kwargs)

    def save(self, *, key: str, document: Mapping[str, Any]) -> str:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError

        body = json.dumps(document, sort_keys=True).encode()
        # If-None-Match: * makes the write atomic and once-only.
        with contextlib.suppress(ResourceExistsError, ResourceModifiedError):
            self._container.upload_blob(key, body, overwrite=True, match_condition=MatchConditions.IfMissing)
        return key

    def load(self, key: str) -> dict[str, Any]:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            data = self._container.download_blob(key).readall()
        except ResourceNotFoundError:
            raise SnapshotMissing(key) from None
        document: dict[str, Any] = json.loads(data)
        return document

    def close(self) -> None:
        self._container.close()


class InMemorySnapshotStore:
    def __init__(self) -> None:
        self._documents: dict[str, str] = {}
        self._lock = threading.Lock()

    def save(self, *, key: str, document: Mapping[str, Any]) -> str:
        with self._lock:
            self._documents.setdefault(key, json.dumps(document, sort_keys=True))
        return key

    def load(self, key: str) -> dict[str, Any]:
        with self._lock:
            if key not in self._documents:
                raise SnapshotMissing(key)
            document: dict[str, Any] = json.loads(self._documents[key])
            return document
