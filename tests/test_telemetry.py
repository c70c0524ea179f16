"""Telemetry of the whole chain: one trace per incident's journey, and the metrics docs/operations.md names.

The OpenTelemetry SDK is set up here as the Functions Python worker sets it up in Azure (global
providers), with an in-memory span exporter and metric reader instead of Application Insights. The
chain is the one of tests/test_e2e_chain.py: a Defender alert over HTTP, the Slack message, a signed
Approve click, the work queue in Azurite, the executor on kmock. The HTTP calls run inside a span
standing for the worker's invocation span, as they would in Azure.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Sampler, SamplingResult

import host
from harness import Chain
from harness import chain_fixture as chain_fixture  # the `chain` fixture
from kube_api import KubeServer
from remediation import telemetry
from remediation.incidents import IncidentState
from slack_server import slack_fixture as slack_fixture  # the `slack` fixture
from test_e2e_chain import ALERT, APPROVER
from test_e2e_chain import cluster_fixture as cluster_fixture  # the `cluster` fixture

pytest_plugins = ["kube_api"]


class Recording(SimpleSpanProcessor):
    """Exports while this module runs; afterwards it lets every span go, silently (a processor that
    is shut down logs a warning per span, and other tests count log lines)."""

    on = True

    def on_end(self, span: ReadableSpan) -> None:
        if self.on:
            super().on_end(span)


class Switch(Sampler):
    """Samples while this module runs; afterwards spans are not recorded, so later tests see the
    app as it is with telemetry off (no `traceparent` in messages)."""

    on = True

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        return (ALWAYS_ON if self.on else ALWAYS_OFF).should_sample(*args, **kwargs)

    def get_description(self) -> str:
        return "Switch"


class Telemetry:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.metrics = InMemoryMetricReader()
        self.processor = Recording(self.spans)

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def points(self, name: str) -> dict[frozenset[tuple[str, Any]], Any]:
        """The metric's data points, by their attributes: a counter's value, a histogram's count."""
        data = self.metrics.get_metrics_data()
        found: dict[frozenset[tuple[str, Any]], Any] = {}
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        for point in metric.data.data_points:
                            found[frozenset((point.attributes or {}).items())] = getattr(point, "value", None) or (
                                getattr(point, "count", None)
                            )
        return found


@pytest.fixture(name="otel", scope="module")
def otel_fixture() -> Iterator[Telemetry]:
    """Global providers, as the worker installs them; they can be set once per process, so an SDK
    provider set before is reused, and nothing is recorded once this module is done."""
    recorder = Telemetry()
    switch = Switch()
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(TracerProvider(sampler=switch))
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    provider.add_span_processor(recorder.processor)
    metrics.set_meter_provider(MeterProvider(metric_readers=[recorder.metrics]))
    yield recorder
    recorder.processor.on = switch.on = False
    recorder.spans.clear()


@pytest.fixture(name="recorded")
def recorded_fixture(otel: Telemetry) -> Telemetry:
    otel.spans.clear()
    return otel


def invocation(name: str) -> Any:
    """The span the Python worker opens around an invocation (its own trace, from the host)."""
    return trace.get_tracer("test-worker").start_as_current_span(name, kind=trace.SpanKind.SERVER)


def test_an_alert_approved_and_executed_is_one_connected_trace(
    cluster: KubeServer, chain: Chain, recorded: Telemetry
) -> None:
    with invocation("defender_alerts_http") as alert_call:
        assert chain.post_alert(ALERT).status_code == 200
    incident = chain.the_incident()
    with invocation("slack_events") as click_call:
        chain.click("incident.approve", incident.id, user=APPROVER)
    chain.run_executor()
    assert chain.the_incident().state is IncidentState.SUCCEEDED

    spans = recorded.finished()
    journey = telemetry.journey("defender:" + ALERT["SystemAlertId"]).trace_id
    ours = [s for s in spans if s.context.trace_id == journey]
    names = {s.name for s in ours}
    assert {"intake.signal", "incident.open", "slack.job", "incident.decide", "remediation-actions process"} <= names
    assert {"incident.execute"} <= names
    [intake] = [s for s in ours if s.name == "intake.signal"]
    assert [link.context.span_id for link in intake.links] == [alert_call.get_span_context().span_id]
    [decision] = [s for s in ours if s.name == "incident.decide"]
    assert [link.context.span_id for link in decision.links] == [click_call.get_span_context().span_id]
    for span in ours:
        if span.name != "intake.signal":
            assert span.attributes is not None and span.attributes.get("incident_id") == incident.id, span.name
    [opened] = [s for s in ours if s.name == "incident.open"]
    assert opened.attributes is not None and opened.attributes["playbook"] == incident.playbook
    # A batch is handled after all of it is claimed: the opening is in the journey, linked to the invocation.
    assert [link.context.span_id for link in opened.links] == [alert_call.get_span_context().span_id]
    assert opened.parent is not None and opened.parent.span_id == intake.parent.span_id  # the journey's root

    actions = [s for s in ours if s.attributes and "action" in s.attributes]
    assert [s.attributes["action"] for s in actions if s.attributes] == [step.action for step in incident.plan.steps]
    [execute] = [s for s in ours if s.name == "incident.execute"]
    assert all(s.parent is not None and s.parent.span_id == execute.context.span_id for s in actions)
    [process] = [s for s in ours if s.name == "remediation-actions process"]
    assert execute.parent is not None and execute.parent.span_id == process.context.span_id
    assert process.parent is not None and process.parent.span_id == decision.context.span_id
    # Nothing of the incident's journey strayed into the invocations' own traces.
    strays = [s.name for s in spans if s.attributes and s.attributes.get("incident_id") and s not in ours]
    assert strays == []

    events = recorded.points("remediation.events")
    assert events[frozenset({("trigger", "defender_alerts_http"), ("outcome", "accepted")})] >= 1
    assert recorded.points("remediation.incidents.opened")[frozenset({("playbook", incident.playbook)})] >= 1
    assert (
        recorded.points("remediation.approval.duration")[frozenset({("playbook", incident.playbook), ("by", "people")})]
        >= 1
    )
    done = recorded.points("remediation.actions")
    for step in incident.plan.steps:
        assert any(("action", step.action) in key and ("call", "apply") in key for key in done), step.action


def test_duplicates_rejections_poison_and_throttling_are_counted(
    cluster: KubeServer, chain: Chain, recorded: Telemetry
) -> None:
    assert chain.post_alert(ALERT).status_code == 200
    assert chain.post_alert(ALERT).status_code == 200
    assert chain.post_alert({"AlertType": "K8S_PrivilegedContainer"}).status_code == 400
    events = recorded.points("remediation.events")
    assert events[frozenset({("trigger", "defender_alerts_http"), ("outcome", "duplicate")})] >= 1
    assert events[frozenset({("trigger", "defender_alerts_http"), ("outcome", "rejected")})] >= 1

    chain.slack.api.fail_next("chat.update", status=429, retry_after=30)
    chain.click("incident.approve", chain.the_incident().id, user=APPROVER)
    throttled = recorded.points("remediation.slack.throttled")
    assert throttled[frozenset({("method", "chat_update")})] >= 1

    host.call("remediation_executor", host.queue_message(b"not json", message_id="m1", dequeue_count=1))
    work = json.dumps({"incident_id": "inc-missing", "kind": "execute"}).encode()
    with pytest.raises(Exception, match="inc-missing"):
        host.call("remediation_executor", host.queue_message(work, message_id="m2", dequeue_count=5))
    poison = recorded.points("remediation.poison")
    assert poison[frozenset({("queue", "remediation-actions"), ("kind", "malformed")})] >= 1
    assert poison[frozenset({("queue", "remediation-actions"), ("kind", "execute")})] >= 1


def test_messages_carry_the_w3c_context_only_inside_a_span(otel: Telemetry) -> None:
    from remediation.work import work_message

    assert json.loads(work_message(incident_id="i", kind="execute")) == {"incident_id": "i", "kind": "execute"}
    with telemetry.journey_span("t", key="k", attributes={}) as span:
        message = json.loads(work_message(incident_id="i", kind="execute"))
    trace_id = f"{span.get_span_context().trace_id:032x}"
    assert message["traceparent"].split("-")[1] == trace_id == f"{telemetry.journey('k').trace_id:032x}"
