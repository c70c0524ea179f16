"""The `remediation-actions` queue: approved incidents waiting for the executor.

Neighbours: the engine enqueues an incident id when an incident becomes approved (by people, by
`mode: auto`, or break-glass at timeout); the queue-triggered executor takes it. Messages are
base64 text, as the Functions queue trigger expects by default. `InMemoryWorkQueue` has the same
interface for tests and the CLI.
"""

from __future__ import annotations

import contextlib
import json
import threading
from typing import TYPE_CHECKING, Any, Protocol, Self

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient

DEFAULT_QUEUE = "remediation-actions"
CLIENT_DEFAULTS: dict[str, Any] = {"connection_timeout": 5, "read_timeout": 10, "retry_total": 2}


class WorkQueue(Protocol):
    def enqueue(self, *, incident_id: str, kind: str = "execute") -> None:
        """Ask the executor to run (`execute`) or undo (`undo`) an incident."""
        ...


def base64_queue(conn_str: str, *, queue_name: str, **kwargs: Any) -> QueueClient:
    """A queue client speaking base64, as Functions queue triggers expect, with bounded timeouts and
    retries (`kwargs` override them); the queue is created if it does not exist."""
    from azure.core.exceptions import ResourceExistsError
    from azure.storage.queue import BinaryBase64DecodePolicy, BinaryBase64EncodePolicy, QueueClient

    queue = QueueClient.from_connection_string(
        conn_str,
        queue_name,
        message_encode_policy=BinaryBase64EncodePolicy(),
        message_decode_policy=BinaryBase64DecodePolicy(),
        **{**CLIENT_DEFAULTS, **kwargs},
    )
    with contextlib.suppress(ResourceExistsError):
        queue.create_queue()
    return queue


def work_message(*, incident_id: str, kind: str) -> str:
    return json.dumps({"incident_id": incident_id, "kind": kind}, sort_keys=True)


class StorageWorkQueue:
    def __init__(self, *, queue: QueueClient) -> None:
        self._queue = queue

    @classmethod
    def from_connection_string(cls, conn_str: str, *, queue_name: str = DEFAULT_QUEUE, **kwargs: Any) -> Self:
        """Connect with bounded timeouts and retries, creating the queue if it does not exist."""
        return cls(queue=base64_queue(conn_str, queue_name=queue_name, **kwargs))

    def enqueue(self, *, incident_id: str, kind: str = "execute") -> None:
        self._queue.send_message(work_message(incident_id=incident_id, kind=kind).encode())

    def close(self) -> None:
        self._queue.close()


class InMemoryWorkQueue:
    def __init__(self) -> None:
        self.messages: list[str] = []
        self._lock = threading.Lock()

    def enqueue(self, *, incident_id: str, kind: str = "execute") -> None:
        with self._lock:
            self.messages.append(work_message(incident_id=incident_id, kind=kind))
