"""Normalise any input into typed Signals: the front door of the engine.

Triggers in `functions/` and the CLI hand raw bodies or decoded events here and get back one
Outcome per event: a Signal, a Skip (well formed, not ours) or a Rejection (why it was refused).
`parse_any` (in `sources`) reads a document of any registered source. Nothing in here touches the
network; `remediation.intake` takes the Signals on.
"""

from __future__ import annotations

import json
from typing import Any

from remediation.signals.acr import parse_registry_event
from remediation.signals.defender import parse_defender_alert
from remediation.signals.model import (
    TARGET_FIELDS,
    InvalidEvent,
    Outcome,
    Rejection,
    Severity,
    Signal,
    Skip,
    Source,
    Targets,
)
from remediation.signals.sources import IntakeSource, Parser, Recogniser, parse_any, register_source

__all__ = [
    "MAX_EVENT_BYTES",
    "TARGET_FIELDS",
    "IntakeSource",
    "InvalidEvent",
    "Outcome",
    "Parser",
    "Recogniser",
    "Rejection",
    "Severity",
    "Signal",
    "Skip",
    "Source",
    "Targets",
    "decode_batch",
    "normalise",
    "parse_any",
    "parse_defender_alert",
    "parse_registry_event",
    "register_source",
]

MAX_EVENT_BYTES = 1024 * 1024
"""Event Grid's limit for one event; we hold every sender to it."""


def normalise(obj: Any, parse: Parser, *, index: int | None = None) -> Outcome:
    """Run one parser; bad input of any kind comes back as a Rejection, never as an exception."""
    try:
        return parse(obj)
    except InvalidEvent as problem:
        return Rejection(reason=str(problem), event_id=_event_id(obj), index=index)
    except RecursionError:
        return Rejection(reason="the event is nested too deeply", event_id=None, index=index)


def decode_batch(body: bytes | str, parse: Parser) -> list[Outcome]:
    """A JSON body holding one event or an array of events, each normalised on its own."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as problem:
        return [Rejection(reason=f"the body is not valid JSON: {_short(problem)}")]
    body_bytes = len(body.encode("utf-8", "surrogatepass")) if isinstance(body, str) else len(body)
    if isinstance(document, dict):
        if body_bytes > MAX_EVENT_BYTES:
            return [_too_large(document, body_bytes, None)]
        return [normalise(document, parse)]
    if not isinstance(document, list):
        return [Rejection(reason=f"the body must be a JSON object or array, got {type(document).__name__}")]
    large = body_bytes > MAX_EVENT_BYTES
    outcomes: list[Outcome] = []
    for index, item in enumerate(document):
        # An item's size as compact UTF-8 JSON: its size as sent, less insignificant whitespace.
        size = len(_compact(item)) if large else 0
        if size > MAX_EVENT_BYTES:
            outcomes.append(_too_large(item, size, index))
        else:
            outcomes.append(normalise(item, parse, index=index))
    return outcomes


def _compact(item: Any) -> bytes:
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")


def _too_large(obj: Any, size: int, index: int | None) -> Rejection:
    return Rejection(
        reason=f"the event is {size} bytes, over the {MAX_EVENT_BYTES}-byte limit",
        event_id=_event_id(obj),
        index=index,
    )


def _event_id(obj: Any) -> str | None:
    """The best id we can name in a rejection, read defensively from any shape."""
    if not isinstance(obj, dict):
        return None
    props = obj.get("properties")
    for source in (obj, props if isinstance(props, dict) else {}):
        for key in ("id", "SystemAlertId", "systemAlertId"):
            value = source.get(key)
            if isinstance(value, str) and value:
                return value[:200]
    return None


def _short(problem: Exception) -> str:
    return str(problem)[:200]
