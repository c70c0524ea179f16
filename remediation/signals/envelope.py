"""Event Grid schema and CloudEvents 1.0 envelopes, read into one shape.

Used by the registry normaliser, by the Defender normaliser for alerts that reach us through an
Event Grid custom topic, and by `sources.parse_any` to skip Event Grid's own system events.
Validation is ours: the azure-eventgrid models do not validate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from remediation.signals.fields import optional_str, required_str
from remediation.signals.model import InvalidEvent

SYSTEM_EVENT_PREFIX = "Microsoft.EventGrid."


@dataclass(frozen=True, slots=True)
class Envelope:
    schema: str  # "eventgrid" or "cloudevents"
    id: str
    type: str
    topic: str | None
    subject: str | None
    time: str | None
    data: Any
    data_version: str | None


def is_envelope(obj: Mapping[str, Any]) -> bool:
    return "specversion" in obj or "eventType" in obj


def read_envelope(obj: Mapping[str, Any]) -> Envelope:
    if "specversion" in obj:
        spec = obj.get("specversion")
        if spec != "1.0":
            raise InvalidEvent(f"specversion {spec!r} is not CloudEvents 1.0")
        return Envelope(
            schema="cloudevents",
            id=required_str(obj, "id", where=""),
            type=required_str(obj, "type", where=""),
            topic=required_str(obj, "source", where=""),
            subject=optional_str(obj, "subject", where=""),
            time=optional_str(obj, "time", where=""),
            data=obj.get("data"),
            data_version=optional_str(obj, "dataschema", where=""),
        )
    if "eventType" in obj:
        return Envelope(
            schema="eventgrid",
            id=required_str(obj, "id", where=""),
            type=required_str(obj, "eventType", where=""),
            topic=optional_str(obj, "topic", where=""),
            subject=optional_str(obj, "subject", where=""),
            time=optional_str(obj, "eventTime", where=""),
            data=obj.get("data"),
            data_version=optional_str(obj, "dataVersion", where=""),
        )
    raise InvalidEvent("not an Event Grid event (no eventType) nor a CloudEvent (no specversion)")


def is_system_envelope(obj: Mapping[str, Any]) -> bool:
    """`is_system_event` read off the raw object (the type key `read_envelope` would use), unvalidated."""
    kind = obj.get("type") if "specversion" in obj else obj.get("eventType")
    return isinstance(kind, str) and kind.startswith(SYSTEM_EVENT_PREFIX)


def is_system_event(envelope: Envelope) -> bool:
    """Subscription validation and deletion notices: handled by the host, never ours to act on."""
    return envelope.type.startswith(SYSTEM_EVENT_PREFIX)
