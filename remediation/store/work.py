"""The `remediation-actions` queue on Azure Storage: the `WorkQueue` the engine enqueues on in Azure.

Messages are `remediation.work.work_message` as base64 text, as the Functions queue trigger
expects by default; the queue-triggered executor takes them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

from remediation.store.clients import StorageAccess, base64_queue
from remediation.work import work_message

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient

DEFAULT_QUEUE = "remediation-actions"


class StorageWorkQueue:
    def __init__(self, *, queue: QueueClient) -> None:
        self._queue = queue

    @classmethod
    def from_storage(cls, storage: StorageAccess | str, *, queue_name: str = DEFAULT_QUEUE, **kwargs: Any) -> Self:
        """Connect with bounded timeouts and retries, creating the queue if it does not exist."""
        return cls(queue=base64_queue(storage, queue_name=queue_name, **kwargs))

    @classmethod
    def from_connection_string(cls, conn_str: str, **kwargs: Any) -> Self:
        """`from_storage` on a connection string (local runs, Azurite, tests)."""
        return cls.from_storage(conn_str, **kwargs)

    def enqueue(self, *, incident_id: str, kind: str = "execute") -> None:
        self._queue.send_message(work_message(incident_id=incident_id, kind=kind).encode())

    def close(self) -> None:
        self._queue.close()
