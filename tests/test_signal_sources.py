"""Intake sources as an open set: the `Source` value type, `parse_any`'s dispatch by recognisers,
documents no source recognises, and a source registered by a test (a tiny Falco parser) end to end
through `parse_any` and the playbook loader.
"""

from __future__ import annotations

import copy
import json
import pickle
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from expected_targets import EXPECTED, fixture_path
from remediation.signals import (
    IntakeSource,
    InvalidEvent,
    Outcome,
    Rejection,
    Severity,
    Signal,
    Skip,
    Source,
    Targets,
    decode_batch,
    parse_any,
    register_source,
)
from remediation.signals.fields import parse_time
from remediation.signals.sources import intake_sources, unregister_source

UNKNOWN_SOURCE = "not an event this app reads (known sources: registry, defender)"


def only(outcomes: list[Outcome]) -> Outcome:
    assert len(outcomes) == 1, outcomes
    return outcomes[0]


def rejected(document: Any) -> Rejection:
    outcome = only(decode_batch(json.dumps(document), parse_any))
    assert isinstance(outcome, Rejection), outcome
    return outcome


# ---------------------------------------------------------------------------------------------------
# Source, the value type


def test_well_known_sources_are_single_instances_named_as_before() -> None:
    assert Source("registry") is Source.REGISTRY
    assert Source("defender") is Source.DEFENDER
    assert Source(Source.DEFENDER) is Source.DEFENDER
    assert [source.value for source in Source] == ["registry", "defender"]
    assert "registry" in Source and "falco" not in Source and 3 not in Source


def test_a_source_serialises_and_compares_as_its_bare_name() -> None:
    source = Source.REGISTRY
    assert source.value == "registry" and type(source.value) is str
    assert str(source) == f"{source}" == "registry" and type(str(source)) is str
    assert source == "registry" and hash(source) == hash("registry")
    assert json.dumps({"source": source}) == '{"source": "registry"}'
    assert repr(source) == "Source('registry')"


def test_a_source_survives_copies_and_pickles_as_the_same_instance() -> None:
    assert copy.copy(Source.DEFENDER) is Source.DEFENDER
    assert copy.deepcopy(Source.DEFENDER) is Source.DEFENDER
    assert pickle.loads(pickle.dumps(Source.DEFENDER)) is Source.DEFENDER


@pytest.mark.parametrize("value", ["falco", "Registry", "", None, 1])
def test_an_unregistered_name_is_not_a_source(value: Any) -> None:
    with pytest.raises(ValueError, match="is not a known source \\(known: registry, defender\\)"):
        Source(value)


@pytest.mark.parametrize("name", ["", "Falco", "fal:co", "a/b", "1falco", "x" * 33])
def test_a_source_name_is_lowercase_and_safe_as_an_id_prefix(name: str) -> None:
    with pytest.raises(ValueError, match="a source name is"):
        Source.register(name)


def test_registering_a_known_name_returns_the_same_source() -> None:
    assert Source.register("registry") is Source.REGISTRY


# ---------------------------------------------------------------------------------------------------
# documents no source recognises


@pytest.mark.parametrize(
    "name",
    ["samples/slack-block_actions.interaction-payload.json", "samples/slack-view_submission.interaction-payload.json"],
)
def test_a_slack_interaction_payload_is_no_sources_event(name: str) -> None:
    document = json.loads(fixture_path(name).read_bytes())
    rejection = rejected(document)
    assert rejection.reason == f"{UNKNOWN_SOURCE}; its type is {document['type']!r}"
    assert "Defender" not in rejection.reason


def test_an_empty_object_is_no_sources_event() -> None:
    assert rejected({}).reason == UNKNOWN_SOURCE


def test_an_envelope_of_another_service_names_its_type() -> None:
    document = json.loads(fixture_path("samples/eventgrid-deadletter.eventgrid.json").read_bytes())
    rejection = rejected(document)
    assert rejection.reason == f"{UNKNOWN_SOURCE}; its type is 'Microsoft.Storage.BlobCreated'"
    assert rejection.event_id == document["id"]


def test_a_string_in_a_batch_is_rejected_alone() -> None:
    outcomes = decode_batch(json.dumps(["an event", {"AlertType": "X"}]), parse_any)
    assert isinstance(outcomes[0], Rejection)
    assert outcomes[0].reason == f"{UNKNOWN_SOURCE}: an event must be a JSON object, got str"
    assert outcomes[0].index == 0
    assert isinstance(outcomes[1], Rejection) and "SystemAlertId is missing" in outcomes[1].reason  # Defender's


# Keys some recogniser reads: a random object without them is nobody's.
_READ = {"eventType", "type", "specversion", "properties", "AlertType", "SystemAlertId", "AlertSeverity", "data"}


@settings(max_examples=100, deadline=None, database=None)
@given(
    document=st.dictionaries(
        st.text(max_size=12).filter(lambda key: key not in _READ),
        st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8), st.lists, max_leaves=5),
        max_size=6,
    )
)
def test_a_random_object_is_no_sources_event(document: dict[str, Any]) -> None:
    assert rejected(document).reason == UNKNOWN_SOURCE


def test_event_grid_system_events_are_still_skipped() -> None:
    name = "samples/eventgrid-subscriptionvalidation.request.eventgrid.json"
    outcome = only(decode_batch(fixture_path(name).read_bytes(), parse_any))
    assert isinstance(outcome, Skip)
    assert outcome.kind == "Microsoft.EventGrid.SubscriptionValidationEvent"


# ---------------------------------------------------------------------------------------------------
# a new intake source, defined only here

_FALCO_PRIORITY = {"emergency": "critical", "alert": "critical", "critical": "critical", "error": "high"}


def _is_falco_event(obj: Mapping[str, Any]) -> bool:
    return "rule" in obj and "output_fields" in obj


def _parse_falco_event(obj: Any) -> Outcome:
    fields = obj["output_fields"]
    if not isinstance(fields, dict):
        raise InvalidEvent("output_fields must be an object")
    severity = Severity.parse(_FALCO_PRIORITY.get(str(obj.get("priority")).lower(), "medium"))
    assert severity is not None
    return Signal(
        source=Source("falco-test"),
        type=str(obj["rule"]),
        id=f"falco-test:{obj['uuid']}",
        time=parse_time(obj["time"], field="time"),
        severity=severity,
        targets=Targets(namespace=fields.get("k8s.ns.name"), pod=fields.get("k8s.pod.name")),
        title=str(obj.get("output", "")),
        raw=obj,
    )


FALCO_EVENT = {
    "uuid": "1b5f0f1e-4c3a-4d7e-9a35-6f0c0e1f2a3b",
    "output": "A shell was spawned in a container (user=root shell=bash)",
    "priority": "Critical",
    "rule": "Terminal shell in container",
    "time": "2024-05-01T10:00:00.123456789Z",
    "output_fields": {"k8s.ns.name": "payments", "k8s.pod.name": "api-7d9f"},
}


@pytest.fixture
def falco() -> Iterator[IntakeSource]:
    intake = register_source("falco-test", recognises=_is_falco_event, parse=_parse_falco_event)
    try:
        yield intake
    finally:
        unregister_source(intake)
    assert "falco-test" not in Source
    assert [known.source for known in intake_sources()] == [Source.REGISTRY, Source.DEFENDER]


def test_a_registered_source_reads_its_own_documents(falco: IntakeSource) -> None:
    outcome = only(decode_batch(json.dumps(FALCO_EVENT), parse_any))
    assert isinstance(outcome, Signal), outcome
    assert outcome.source is falco.source is Source("falco-test")
    assert outcome.summary()["source"] == "falco-test"
    assert (outcome.type, outcome.severity, outcome.targets.pod) == (
        "Terminal shell in container",
        Severity.CRITICAL,
        "api-7d9f",
    )
    assert [source.value for source in Source] == ["registry", "defender", "falco-test"]


def test_unknown_documents_name_the_registered_source_too(falco: IntakeSource) -> None:
    assert rejected({}).reason == "not an event this app reads (known sources: registry, defender, falco-test)"


def test_a_registered_source_does_not_take_the_older_sources_documents(falco: IntakeSource) -> None:
    greedy = register_source("greedy-test", recognises=lambda obj: True, parse=_parse_falco_event)
    try:
        for name in sorted(EXPECTED):
            if any(outcome["outcome"] == "signal" for outcome in EXPECTED[name]):
                for outcome in decode_batch(fixture_path(name).read_bytes(), parse_any):
                    assert not isinstance(outcome, Signal) or outcome.source in (Source.REGISTRY, Source.DEFENDER)
    finally:
        unregister_source(greedy)


def test_a_source_is_registered_once(falco: IntakeSource) -> None:
    with pytest.raises(ValueError, match="already has an intake parser"):
        register_source("falco-test", recognises=_is_falco_event, parse=_parse_falco_event)


def test_the_built_in_sources_stay_registered() -> None:
    registry, _ = intake_sources()
    with pytest.raises(ValueError, match="cannot be unregistered"):
        unregister_source(registry)
    assert Source("registry") is Source.REGISTRY


_PLAYBOOK = """\
    name: falco-shell
    description: A shell in a container.
    on: {source: falco-test, types: [Terminal shell in container]}
    when: [{field: source, equals: falco-test}]
    steps: [{action: notify, params: {message: "shell in ${targets.pod}"}}]
    approval: {mode: auto}
    """


def test_playbooks_may_answer_a_registered_source(falco: IntakeSource, tmp_path: Path) -> None:
    from remediation.playbooks import load_playbooks  # here: the intake tests need not load the actions

    (tmp_path / "falco.yaml").write_text(textwrap.dedent(_PLAYBOOK).replace("Terminal shell in container", "Shell"))
    signal = _parse_falco_event(FALCO_EVENT | {"rule": "Shell"})
    assert isinstance(signal, Signal)
    [plan] = load_playbooks(tmp_path).match(signal)
    assert plan.playbook == "falco-shell"


def test_playbooks_for_an_unregistered_source_are_a_clear_error(tmp_path: Path) -> None:
    from remediation.playbooks import check_playbooks

    (tmp_path / "falco.yaml").write_text(textwrap.dedent(_PLAYBOOK).replace("Terminal shell in container", "Shell"))
    problems = check_playbooks(tmp_path)
    assert any("on.source: expected one of registry, defender, got 'falco-test'" in problem for problem in problems)
    assert any("unknown source 'falco-test' (expected one of registry, defender)" in problem for problem in problems)
