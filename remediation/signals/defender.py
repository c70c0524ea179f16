"""Microsoft Defender for Cloud alerts, in every shape real senders use, into Signals.

Shapes: the ARM REST resource (camelCase under `properties`); continuous export and workflow
automation (flat PascalCase); Log Analytics `SecurityAlert` rows (`AlertSeverity`, `ResourceId`,
`Entities` and `ExtendedProperties` as JSON strings); any of these as the `data` of an Event Grid
custom-topic event. Recommendations and sub-assessments that share a continuous-export stream are
recognised and skipped. `is_defender_document` tells `sources.parse_any` which documents these are.
Entity and ExtendedProperties reading lives in `defender_entities`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from remediation.signals.defender_entities import targets_from
from remediation.signals.envelope import is_envelope, is_system_event, read_envelope
from remediation.signals.fields import optional_str, parse_time
from remediation.signals.model import InvalidEvent, Outcome, Severity, Signal, Skip, Source

# Logical field -> (ARM camelCase key under properties, flat PascalCase key, Log Analytics key)
_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "type": (("alertType",), ("AlertType",), ("AlertType",)),
    "id": (("systemAlertId",), ("SystemAlertId",), ("SystemAlertId",)),
    "severity": (("severity",), ("Severity",), ("AlertSeverity",)),
    "time": (
        ("startTimeUtc", "timeGeneratedUtc"),
        ("StartTimeUtc", "TimeGenerated"),
        ("StartTime", "TimeGenerated"),
    ),
    "title": (("alertDisplayName",), ("AlertDisplayName",), ("DisplayName", "AlertName")),
    "description": (("description",), ("Description",), ("Description",)),
    "link": (("alertUri",), ("AlertUri",), ("AlertLink",)),
    "resource": ((), ("AzureResourceId",), ("ResourceId",)),
    "entities": (("entities",), ("Entities",), ("Entities",)),
    "extended": (("extendedProperties",), ("ExtendedProperties",), ("ExtendedProperties",)),
}
_ARM, _FLAT, _LOG_ANALYTICS = 0, 1, 2
_SECURITY_NAMESPACE = "microsoft.security/"


def is_defender_document(obj: Mapping[str, Any]) -> bool:
    """Whether `obj` is Defender's: an alert in one of its shapes, another Microsoft.Security export
    (skipped), or an Event Grid/CloudEvent envelope whose data is one of these. Key lookups only."""
    if is_envelope(obj):
        data = obj.get("data")
        return isinstance(data, dict) and _is_bare_document(data)
    return _is_bare_document(obj)


def _is_bare_document(obj: Mapping[str, Any]) -> bool:
    kind = obj.get("type")
    if isinstance(kind, str) and kind.lower().startswith(_SECURITY_NAMESPACE):
        return True  # an ARM alert (Microsoft.Security/Locations/alerts) or a recommendation, score...
    props = obj.get("properties")
    if isinstance(props, dict) and ("alertType" in props or "systemAlertId" in props):
        return True
    return "AlertType" in obj or "SystemAlertId" in obj or "AlertSeverity" in obj


def parse_defender_alert(obj: Any) -> Outcome:
    """One alert (or an Event Grid/CloudEvent envelope carrying one) into a Signal or Skip."""
    if not isinstance(obj, dict):
        raise InvalidEvent(f"an alert must be a JSON object, got {type(obj).__name__}")
    if is_envelope(obj):
        envelope = read_envelope(obj)
        if is_system_event(envelope):
            return Skip(kind=envelope.type, event_id=envelope.id)
        if not isinstance(envelope.data, dict):
            raise InvalidEvent(f"event {envelope.type!r} carries no alert object in its data")
        try:
            return parse_defender_alert(envelope.data)
        except InvalidEvent as problem:
            raise InvalidEvent(f"event {envelope.type!r}: {problem}") from None
    skipped = _non_alert(obj)
    if skipped is not None:
        return skipped
    props = obj.get("properties")
    if isinstance(props, dict) and ("alertType" in props or "systemAlertId" in props):
        return _signal(props, _ARM, fallback_id=obj.get("name"))
    if "AlertSeverity" in obj:
        return _signal(obj, _LOG_ANALYTICS)
    if "AlertType" in obj or "SystemAlertId" in obj:
        return _signal(obj, _FLAT)
    raise InvalidEvent("not a Defender alert: no alertType/AlertType or systemAlertId/SystemAlertId")


def _non_alert(obj: Mapping[str, Any]) -> Skip | None:
    """Recommendations, sub-assessments, secure scores: other Microsoft.Security exports."""
    kind = obj.get("type")
    if not isinstance(kind, str):
        return None
    lowered = kind.lower()
    if lowered.startswith(_SECURITY_NAMESPACE) and not lowered.endswith("/alerts"):
        event_id = obj.get("id")
        return Skip(kind=kind, event_id=event_id if isinstance(event_id, str) else None)
    return None


def _field(obj: Mapping[str, Any], shape: int, name: str) -> Any:
    for key in _KEYS[name][shape]:
        value = obj.get(key)
        if value is not None and value != "":
            return value
    return None


def _text(obj: Mapping[str, Any], shape: int, name: str) -> str | None:
    value = _field(obj, shape, name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidEvent(f"{_KEYS[name][shape][0]} must be a string, got {type(value).__name__}")
    return value


def _signal(obj: Mapping[str, Any], shape: int, fallback_id: Any = None) -> Signal:
    alert_type = _text(obj, shape, "type")
    if alert_type is None:
        raise InvalidEvent(f"{_KEYS['type'][shape][0]} is missing")
    alert_id = _text(obj, shape, "id") or (fallback_id if isinstance(fallback_id, str) and fallback_id else None)
    if alert_id is None:
        raise InvalidEvent(f"{_KEYS['id'][shape][0]} is missing")
    severity_text = _text(obj, shape, "severity")
    if severity_text is None:
        raise InvalidEvent(f"{_KEYS['severity'][shape][0]} is missing")
    severity = Severity.parse(severity_text)
    if severity is None:
        raise InvalidEvent(
            f"{_KEYS['severity'][shape][0]} {severity_text!r} is not one of informational, low, medium, high, critical"
        )
    time_text = _text(obj, shape, "time")
    if time_text is None:
        raise InvalidEvent(f"{'/'.join(_KEYS['time'][shape])} is missing")
    extended = _string_map(_decoded(_field(obj, shape, "extended"), _KEYS["extended"][shape][0]))
    entities = _decoded(_field(obj, shape, "entities"), _KEYS["entities"][shape][0])
    if entities is not None and not isinstance(entities, list):
        raise InvalidEvent(f"{_KEYS['entities'][shape][0]} must be a list, got {type(entities).__name__}")
    return Signal(
        source=Source.DEFENDER,
        type=alert_type,
        id=f"defender:{alert_id}",
        time=parse_time(time_text, field=_KEYS["time"][shape][0]),
        severity=severity,
        targets=targets_from(
            entities=entities or [],
            extended=extended,
            resource_ids=_resource_ids(obj, shape),
        ),
        title=_text(obj, shape, "title") or alert_type,
        description=_text(obj, shape, "description") or "",
        link=_text(obj, shape, "link"),
        actor=extended.get("username") or extended.get("UserName"),
        extended_properties=extended,
        raw=obj,
    )


def _decoded(value: Any, key: str) -> Any:
    """Log Analytics stores Entities and ExtendedProperties as JSON text."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        raise InvalidEvent(f"{key} is a string but not JSON") from None


def _string_map(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidEvent(f"ExtendedProperties must be an object, got {type(value).__name__}")
    return {
        str(k): v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
        for k, v in value.items()
        if v is not None
    }


def _resource_ids(obj: Mapping[str, Any], shape: int) -> list[str]:
    found: list[str] = []
    direct = optional_str(obj, _KEYS["resource"][shape][0], where="") if _KEYS["resource"][shape] else None
    if direct:
        found.append(direct)
    identifiers = obj.get("resourceIdentifiers" if shape == _ARM else "ResourceIdentifiers")
    if isinstance(identifiers, list):
        for item in identifiers:
            if isinstance(item, dict):
                value = item.get("azureResourceId", item.get("AzureResourceId"))
                if isinstance(value, str):
                    found.append(value)
    return found
