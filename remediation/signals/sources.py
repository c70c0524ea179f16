"""The intake sources `parse_any` knows, each with how it recognises its own documents.

An intake source is a name (a `Source`), a recogniser and a parser. The recogniser answers from a
few key lookups on the decoded object, never a walk of the document: `parse_any` runs on the hot
intake path and asks each source in registration order, so a document costs O(number of sources)
cheap checks before its one parser runs. Event Grid system events (subscription validation,
deletion notices) belong to the transport, not to a source, and are skipped before any is asked.

The container registry (`acr`) and Defender (`defender`) are registered here; a new intake source
calls `register_source` once, at import, before playbooks are loaded. Triggers that serve a single
source call its parser directly; the CLI, the Slack `/remediate simulate` command and the bench use
`parse_any`. `remediation.signals` re-exports what callers need.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from remediation.signals.acr import is_registry_event, parse_registry_event
from remediation.signals.defender import is_defender_document, parse_defender_alert
from remediation.signals.envelope import is_system_envelope, read_envelope
from remediation.signals.model import InvalidEvent, Outcome, Skip, Source

Parser = Callable[[Any], Outcome]
Recogniser = Callable[[Mapping[str, Any]], bool]
"""True when a top-level JSON object is this source's to parse (well formed or not)."""


@dataclass(frozen=True, slots=True)
class IntakeSource:
    source: Source
    recognises: Recogniser
    parse: Parser


_REGISTERED: list[IntakeSource] = []
"""In registration order; read on every event, written only at import (and by tests)."""


def register_source(name: str, *, recognises: Recogniser, parse: Parser) -> IntakeSource:
    """Make `name` a Source and have `parse_any` hand it the documents `recognises` claims.

    Recognisers are asked in registration order, so a new source cannot take documents the
    registry or Defender already read.
    """
    source = Source.register(name)
    if any(known.source is source for known in _REGISTERED):
        raise ValueError(f"the source {name!r} already has an intake parser")
    intake = IntakeSource(source=source, recognises=recognises, parse=parse)
    _REGISTERED.append(intake)
    return intake


def unregister_source(intake: IntakeSource) -> None:
    """Undo `register_source` (for tests); the built-in sources stay."""
    if intake.source is Source.REGISTRY or intake.source is Source.DEFENDER:
        raise ValueError(f"the built-in source {intake.source.value!r} cannot be unregistered")
    _REGISTERED.remove(intake)
    Source._forget(intake.source)  # the one caller: what registered it undoes it


def intake_sources() -> tuple[IntakeSource, ...]:
    return tuple(_REGISTERED)


def parse_any(obj: Any) -> Outcome:
    """The document's own source parses it; a document no source recognises is an InvalidEvent."""
    if not isinstance(obj, dict):
        raise InvalidEvent(f"{_not_known()}: an event must be a JSON object, got {type(obj).__name__}")
    if is_system_envelope(obj):
        envelope = read_envelope(obj)  # validated as every source's parser would
        return Skip(kind=envelope.type, event_id=envelope.id)
    for intake in _REGISTERED:
        if intake.recognises(obj):
            return intake.parse(obj)
    kind = obj.get("eventType", obj.get("type"))
    named = f"; its type is {kind[:100]!r}" if isinstance(kind, str) else ""
    raise InvalidEvent(f"{_not_known()}{named}")


def _not_known() -> str:
    return f"not an event this app reads (known sources: {', '.join(intake.source.value for intake in _REGISTERED)})"


register_source(Source.REGISTRY.value, recognises=is_registry_event, parse=parse_registry_event)
register_source(Source.DEFENDER.value, recognises=is_defender_document, parse=parse_defender_alert)
