"""What the Functions host does for our bindings, for tests: the registered functions, and binding
objects built with the Python worker's own converters from the bytes a sender would send."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import azure.functions as func
from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter
from azure.functions.eventhub import EventHubTriggerConverter
from azure.functions.queue import QueueMessageInConverter


@functools.cache
def registered() -> dict[str, Any]:
    """name -> FunctionBuilder's Function; `get_functions()` may be called once per app."""
    import function_app

    return {fn.get_function_name(): fn for fn in function_app.app.get_functions()}


def bindings(name: str) -> list[dict[str, Any]]:
    return list(json.loads(registered()[name].get_function_json())["bindings"])


# What the host runs after each invocation, when a test has the host do it (the Slack outbox's
# trigger, which a real host runs within moments of an enqueue).
after_call: list[Callable[[], None]] = []


def call(name: str, *args: Any) -> Any:
    try:
        return registered()[name].get_user_function()(*args)
    finally:
        if name != "slack_outbox":
            for hook in list(after_call):
                hook()


def event_grid_event(event: dict[str, Any]) -> func.EventGridEvent:
    """One event of an Event Grid delivery, decoded as the worker decodes it."""
    decoded: func.EventGridEvent = EventGridEventInConverter.decode(
        meta.Datum(json.dumps(event), "json"), trigger_metadata={}
    )
    return decoded


def event_hub_batch(bodies: list[bytes]) -> list[func.EventHubEvent]:
    """A cardinality-many Event Hub batch, decoded as the worker decodes it."""
    now = datetime.now(UTC).isoformat()
    properties = [
        {"EnqueuedTimeUtc": now, "SequenceNumber": i, "Offset": i * 100, "PartitionKey": None}
        for i in range(len(bodies))
    ]
    metadata = {"SystemPropertiesArray": meta.Datum(json.dumps(properties), "json")}
    events: list[func.EventHubEvent] = EventHubTriggerConverter.decode(
        meta.Datum(SimpleNamespace(bytes=bodies), "collection_bytes"), trigger_metadata=metadata
    )
    return events


def http_post(route: str, body: bytes, headers: dict[str, str] | None = None) -> func.HttpRequest:
    return func.HttpRequest(
        "POST",
        f"http://localhost:7071/api/{route}",
        headers={"Content-Type": "application/json", **(headers or {})},
        body=body,
    )


def queue_message(body: bytes, *, message_id: str = "m-1", dequeue_count: int = 1) -> func.QueueMessage:
    """A queue message as the worker hands it to a queue trigger (the host has base64-decoded it)."""
    metadata = {"Id": meta.Datum(message_id, "string"), "DequeueCount": meta.Datum(dequeue_count, "int")}
    message: func.QueueMessage = QueueMessageInConverter.decode(meta.Datum(body, "bytes"), trigger_metadata=metadata)
    return message
