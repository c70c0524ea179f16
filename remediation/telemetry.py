"""Traces and metrics of an incident's journey, through the OpenTelemetry API only.

Neighbours: intake, the engine and the executor open spans and count through this module; the
queue producers (`remediation.work.work_message`, `bot.outbox.Outbox`) put `carrier()` into their
messages and the consumers (`functions/executor.py`, `bot.outbox.OutboxWorker`) continue it with
`consumed`. Nothing here configures an SDK: the API is a no-op until the Functions Python worker
(`PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true`, `APPLICATIONINSIGHTS_CONNECTION_STRING`) or a
test sets providers, and the proxies made at import bind to them then. docs/operations.md has the
names, the attributes and the queries.

One trace per journey: an incident's trace id is derived from its opening Signal's id (SHA-256),
so a Slack click or the minute timer, which start traces of their own, rejoin the incident's trace
without anything stored; the span they started from is kept as a link. Between processes the W3C
`traceparent`/`tracestate` travel in the queue messages.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

NAME = "remediation"
_tracer = trace.get_tracer(NAME)
_meter = metrics.get_meter(NAME)
_propagator = TraceContextTextMapPropagator()

EVENTS = _meter.create_counter(
    "remediation.events", unit="{event}", description="Events received, by trigger and outcome"
)
INCIDENTS_OPENED = _meter.create_counter(
    "remediation.incidents.opened", unit="{incident}", description="Incidents opened, by playbook"
)
APPROVAL_SECONDS = _meter.create_histogram(
    "remediation.approval.duration", unit="s", description="From an incident's opening to its approval"
)
ACTIONS = _meter.create_counter(
    "remediation.actions", unit="{call}", description="Action calls (apply, undo), by action and outcome"
)
POISON = _meter.create_counter(
    "remediation.poison", unit="{message}", description="Queue messages given up after their last delivery"
)
SLACK_THROTTLED = _meter.create_counter(
    "remediation.slack.throttled", unit="{call}", description="Slack Web API calls answered 429, by method"
)


def carrier() -> dict[str, str]:
    """The current span's W3C context (`traceparent`, `tracestate`) for a queue message; {} when no
    span is recorded (telemetry off, or not sampled: the consumer then rejoins by `journey`)."""
    fields: dict[str, str] = {}
    if trace.get_current_span().is_recording():
        _propagator.inject(fields)
    return fields


def journey(key: str) -> SpanContext:
    """The parent every span of the incident opened by Signal `key` hangs from: same key, same trace."""
    digest = hashlib.sha256(key.encode()).digest()
    return SpanContext(
        trace_id=int.from_bytes(digest[:16], "big") or 1,
        span_id=int.from_bytes(digest[16:24], "big") or 1,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )


def journey_key(incident: Any) -> str:
    """An incident's journey key: the id of the Signal that opened it (a manual run's too)."""
    signal = getattr(incident, "signal", None) or {}
    return str(signal.get("id") or incident.id)


@contextmanager
def journey_span(name: str, *, key: str, attributes: Mapping[str, Any]) -> Iterator[trace.Span]:
    """A span in the journey of `key`: a child of the current span when that is already in the
    journey (a continued message), else of the journey's root, linked to the current span."""
    current = trace.get_current_span().get_span_context()
    root = journey(key)
    if current.is_valid and current.trace_id == root.trace_id:
        parent, links = otel_context.get_current(), []
    else:
        parent = trace.set_span_in_context(NonRecordingSpan(root))
        links = [Link(current)] if current.is_valid else []
    with _tracer.start_as_current_span(name, context=parent, links=links, attributes=_clean(attributes)) as span:
        yield span


@contextmanager
def span(name: str, *, attributes: Mapping[str, Any], kind: SpanKind = SpanKind.INTERNAL) -> Iterator[trace.Span]:
    """A child of the current span; an exception marks it failed and propagates."""
    with _tracer.start_as_current_span(name, kind=kind, attributes=_clean(attributes)) as current:
        yield current


@contextmanager
def consumed(name: str, message: Mapping[str, Any], *, attributes: Mapping[str, Any]) -> Iterator[trace.Span]:
    """A queue consumer's span, continuing the trace whose context `message` carries (if any)."""
    fields = {key: str(message[key]) for key in ("traceparent", "tracestate") if message.get(key)}
    parent = _propagator.extract(fields) if fields else None
    with _tracer.start_as_current_span(
        name, context=parent, kind=SpanKind.CONSUMER, attributes=_clean(attributes)
    ) as current:
        yield current


def note(**attributes: Any) -> None:
    """Attributes learnt along the way (an end state, an outcome) on the current span."""
    trace.get_current_span().set_attributes(_clean(attributes))


def failed(error: BaseException | str, *, current: trace.Span | None = None) -> None:
    """Mark the current span (or `current`) failed when the code handles the error itself."""
    (current or trace.get_current_span()).set_status(Status(StatusCode.ERROR, str(error)[:500]))


def _clean(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """OpenTelemetry takes str, bool, int, float (and sequences of them); None is left out."""
    return {key: value for key, value in attributes.items() if value is not None}
