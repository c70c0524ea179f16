"""Azure Container Registry events (Event Grid schema or CloudEvents) into Signals.

Covers ImagePushed, ImageDeleted, ChartPushed and ChartDeleted, dataVersion 1.0 and 2.0, and the
short event type forms (`ImageDeleted`) that older documentation and some senders still use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediation.signals.envelope import Envelope, is_system_event, read_envelope
from remediation.signals.fields import (
    optional_object,
    optional_str,
    parse_time,
    registry_id,
    required_str,
)
from remediation.signals.model import InvalidEvent, Outcome, Severity, Signal, Skip, Source, Targets

ACR_PREFIX = "Microsoft.ContainerRegistry."
ACR_EVENT_TYPES = frozenset(
    ACR_PREFIX + name for name in ("ImagePushed", "ImageDeleted", "ChartPushed", "ChartDeleted")
)
IMAGE_SCANNED = ACR_PREFIX + "ImageScanned"
DERIVED_EVENT_TYPES = frozenset({IMAGE_SCANNED})
"""Registry Signals the app makes itself (Defender findings that landed after a push); playbooks may
answer them, but no sender may deliver them: the registry trigger rejects them like any unknown type."""
_IMAGE_TYPES = frozenset({ACR_PREFIX + "ImagePushed", ACR_PREFIX + "ImageDeleted"})


def full_event_type(event_type: str) -> str:
    """`ImagePushed` and `Microsoft.ContainerRegistry.ImagePushed` name the same event."""
    return event_type if "." in event_type else ACR_PREFIX + event_type


def is_registry_event(obj: Mapping[str, Any]) -> bool:
    kind = obj.get("eventType", obj.get("type"))
    return isinstance(kind, str) and full_event_type(kind) in ACR_EVENT_TYPES


def parse_registry_event(obj: Any) -> Outcome:
    """One envelope in, one Signal or Skip out; InvalidEvent for anything malformed."""
    if not isinstance(obj, dict):
        raise InvalidEvent(f"an event must be a JSON object, got {type(obj).__name__}")
    envelope = read_envelope(obj)
    if is_system_event(envelope):
        return Skip(kind=envelope.type, event_id=envelope.id)
    event_type = full_event_type(envelope.type)
    if event_type not in ACR_EVENT_TYPES:
        raise InvalidEvent(f"event type {envelope.type!r} is not a container registry event")
    return _signal(envelope, event_type)


def _signal(envelope: Envelope, event_type: str) -> Signal:
    data = envelope.data
    if not isinstance(data, dict):
        raise InvalidEvent(f"data must be an object, got {type(data).__name__}")
    target = optional_object(data, "target", where="data.")
    request = optional_object(data, "request", where="data.")
    actor = optional_object(data, "actor", where="data.")
    repository = required_str(target, "repository", where="data.target.")
    tag = optional_str(target, "tag", where="data.target.")
    digest = optional_str(target, "digest", where="data.target.")
    if event_type in _IMAGE_TYPES and digest is None and tag is None:
        raise InvalidEvent("data.target has neither a tag nor a digest")
    login_server = optional_str(request, "host", where="data.request.")
    login_server = login_server.lower() if login_server else None
    name = f"{repository}:{tag}" if tag else f"{repository}@{digest}" if digest else repository
    return Signal(
        source=Source.REGISTRY,
        type=event_type,
        id=f"registry:{envelope.id}",
        time=_event_time(envelope, data),
        severity=Severity.INFORMATIONAL,
        targets=Targets(
            registry_login_server=login_server,
            registry_resource_id=registry_id(envelope.topic),
            repository=repository,
            tag=tag,
            digest=digest,
            image=_image(event_type, login_server, name),
        ),
        title=f"{event_type.removeprefix(ACR_PREFIX)} {name}",
        actor=optional_str(actor, "name", where="data.actor."),
        raw=_raw(envelope),
    )


def _image(event_type: str, login_server: str | None, name: str) -> str | None:
    """The pullable reference of an image event; a Helm chart is not a container image."""
    if event_type not in _IMAGE_TYPES:
        return None
    return f"{login_server}/{name}" if login_server else name


def _event_time(envelope: Envelope, data: Mapping[str, Any]) -> Any:
    """The envelope's time; the registry's own `data.timestamp` when the envelope's is unreadable.

    Published samples carry envelope times such as `019-03-12T...`: the registry's timestamp is the
    time of the same action, so the event is kept rather than lost for a cosmetic defect.
    """
    stamp = optional_str(data, "timestamp", where="data.")
    if envelope.time is not None:
        try:
            return parse_time(envelope.time, field="eventTime")
        except InvalidEvent:
            if stamp is None:
                raise
    if stamp is None:
        raise InvalidEvent("the event has no time (eventTime/time or data.timestamp)")
    return parse_time(stamp, field="data.timestamp")


def _raw(envelope: Envelope) -> dict[str, Any]:
    return {
        "schema": envelope.schema,
        "id": envelope.id,
        "type": envelope.type,
        "topic": envelope.topic,
        "subject": envelope.subject,
        "time": envelope.time,
        "dataVersion": envelope.data_version,
        "data": envelope.data,
    }
