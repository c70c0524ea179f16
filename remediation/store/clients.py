"""How every storage adapter connects: bounded timeouts and retries, once.

Neighbours: the table adapters (`events`, `incidents`, `audit`, the push policy's tag index, the
bot's message store) take `make_table_client`; the queues (`work`, the findings re-check) take
`base64_queue`; `snapshots` takes `CLIENT_DEFAULTS` with a longer read for blobs. The SDKs are
imported inside, so importing an adapter costs nothing until it connects.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from azure.data.tables import TableClient
    from azure.storage.queue import QueueClient

CLIENT_DEFAULTS: dict[str, Any] = {"connection_timeout": 5, "read_timeout": 10, "retry_total": 2}


def make_table_client(conn_str: str, *, table_name: str, **kwargs: Any) -> TableClient:
    """A TableClient with `CLIENT_DEFAULTS` (timeouts, bounded retry), overridable by `kwargs`."""
    from azure.data.tables import TableClient

    return TableClient.from_connection_string(conn_str, table_name, **{**CLIENT_DEFAULTS, **kwargs})


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
