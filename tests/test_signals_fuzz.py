"""Property tests: whatever arrives, `decode_batch` returns well-formed Outcomes and never raises.

Inputs are random JSON values (biased towards the keys and values the normalisers look for), random
mutations of every fixture (delete a key, replace a value at a random path, wrap in a list) and random
bytes, each thrown at `decode_batch` with every parser.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from expected_targets import EXPECTED, fixture_path
from remediation.signals import (
    TARGET_FIELDS,
    Outcome,
    Parser,
    Rejection,
    Severity,
    Signal,
    Skip,
    Source,
    Targets,
    decode_batch,
    parse_any,
    parse_defender_alert,
    parse_registry_event,
)

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,  # never write a hypothesis database into the repository
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

PARSERS = pytest.mark.parametrize(
    "parse",
    [parse_any, parse_registry_event, parse_defender_alert],
    ids=["parse_any", "parse_registry_event", "parse_defender_alert"],
)

FIXTURES: dict[str, Any] = {name: json.loads(fixture_path(name).read_bytes()) for name in sorted(EXPECTED)}

# Keys and values the normalisers read, so random documents reach past the first check.
KEYS = [
    "id", "eventType", "type", "specversion", "source", "topic", "subject", "eventTime", "time", "data",
    "dataVersion", "target", "repository", "tag", "digest", "request", "host", "actor", "name", "timestamp",
    "properties", "alertType", "systemAlertId", "severity", "startTimeUtc", "entities", "extendedProperties",
    "resourceIdentifiers", "azureResourceId", "AlertType", "SystemAlertId", "Severity", "AlertSeverity",
    "StartTimeUtc", "StartTime", "TimeGenerated", "Entities", "ExtendedProperties", "AzureResourceId",
    "ResourceId", "ResourceIdentifiers", "AlertDisplayName", "DisplayName", "$id", "$ref", "Type", "Name",
    "ImageId", "Image", "Pod", "Namespace", "CloudResource", "HostName", "Resource type", "Resource name",
    "resourceType", "clusterRoleBindingName", "username", "EffectiveAzureResourceId",
]  # fmt: skip
CLUSTER = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks"
TEXTS = [
    "", "1.0", "0.3", "1", "2", "ImagePushed", "ImageDeleted", "ChartPushed", "ChartDeleted",
    "Microsoft.ContainerRegistry.ImagePushed", "Microsoft.EventGrid.SubscriptionValidationEvent",
    "Microsoft.Security/assessments", "Microsoft.Security/Locations/alerts", "High", "low", "Informational",
    "K8s-cluster", "K8s-namespace", "K8s-pod", "container", "container-image", "host", "azure-resource",
    "clusterrolebindings", "2024-05-01T10:00:00Z", "2024-05-01T10:00:00.1234567+02:00", "019-03-12T22:42:08Z",
    "myreg.azurecr.io/a/b:1@sha256:" + "0" * 64, "localhost:5000/x", "sha256:" + "f" * 64, CLUSTER,
    '[{"$id":"1","Type":"K8s-pod","Name":"p"},{"$ref":"1"}]', '{"clusterRoleBindingName":"x"}', "[", "null",
]  # fmt: skip

# Times are kept inside years 1970-2100: `parse_time` crashes on valid ISO times at the edge of datetime's
# range (test_signals.py::test_time_out_of_range_after_utc_conversion_is_a_rejection, a known bug).
iso_times = st.builds(
    lambda moment, offset: moment.replace(tzinfo=timezone(timedelta(minutes=offset))).isoformat(),
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1)),
    st.integers(min_value=-14 * 60, max_value=14 * 60),
)
scalars = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | st.sampled_from(TEXTS) | iso_times
)
keys = st.sampled_from(KEYS) | st.text(max_size=8)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=6),
    max_leaves=25,
)
small_json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=3),
    max_leaves=6,
)
ref_ids = st.sampled_from(["1", "2", "3", "4"]) | st.integers(0, 3) | st.none()
entity_fields = st.sampled_from(["Type", "Name", "ImageId", "HostName", "ResourceId", "Image", "Pod", "Namespace",
                                 "CloudResource", "Cluster"])  # fmt: skip
# Entities: strings, `{"$ref": id}` pointers and `{"$id": id, ...}` objects nesting more of the same.
entity_bodies: st.SearchStrategy[dict[str, Any]]
entity_values: st.SearchStrategy[Any] = st.deferred(
    lambda: (
        st.sampled_from(TEXTS)
        | st.builds(lambda ref: {"$ref": ref}, ref_ids)
        | st.builds(lambda ident, body: {"$id": ident, **body}, ref_ids, entity_bodies)
    )
)
entity_bodies = st.dictionaries(entity_fields, entity_values, max_size=4)
entities = st.lists(entity_values, max_size=8)


def check(outcomes: list[Outcome], document: Any = None) -> None:
    """Every outcome well formed; one per event."""
    assert isinstance(outcomes, list)
    if document is not None:
        assert len(outcomes) == (len(document) if isinstance(document, list) else 1)
    for outcome in outcomes:
        if isinstance(outcome, Signal):
            assert isinstance(outcome.source, Source)
            assert isinstance(outcome.type, str) and outcome.type
            assert isinstance(outcome.id, str) and outcome.id
            assert isinstance(outcome.severity, Severity)
            assert isinstance(outcome.time, datetime)
            assert outcome.time.tzinfo is not None
            assert outcome.time.utcoffset() == timedelta(0)
            assert outcome.time.tzinfo == UTC
            assert isinstance(outcome.targets, Targets)
            for name in TARGET_FIELDS:
                value = getattr(outcome.targets, name)
                assert value is None or (isinstance(value, str) and value), (name, value)
            assert isinstance(outcome.title, str)
            assert isinstance(outcome.description, str)
            assert outcome.link is None or isinstance(outcome.link, str)
            assert outcome.actor is None or isinstance(outcome.actor, str)
            for key, value in outcome.extended_properties.items():
                assert isinstance(key, str) and isinstance(value, str)
            json.dumps(outcome.summary())  # the JSON-ready view really is
        elif isinstance(outcome, Skip):
            assert isinstance(outcome.kind, str) and outcome.kind
            assert outcome.event_id is None or isinstance(outcome.event_id, str)
        else:
            assert isinstance(outcome, Rejection), outcome
            assert isinstance(outcome.reason, str) and outcome.reason
            assert outcome.event_id is None or isinstance(outcome.event_id, str)
            assert outcome.index is None or (isinstance(outcome.index, int) and outcome.index >= 0)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value inside `node` (not the root)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        yield (*prefix, key)
        yield from paths(child, (*prefix, key))


def parent_of(document: Any, path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        document = document[key]
    return document


@st.composite
def mutated_fixtures(draw: st.DrawFn) -> Any:
    document = copy.deepcopy(FIXTURES[draw(st.sampled_from(sorted(FIXTURES)))])
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        operation = draw(st.sampled_from(["delete", "replace", "wrap", "wrap-root"]))
        if operation == "wrap-root":
            document = [document]
            continue
        candidates = list(paths(document))
        if not candidates:
            continue
        path = draw(st.sampled_from(candidates))
        parent, key = parent_of(document, path), path[-1]
        if operation == "delete":
            del parent[key]
        elif operation == "replace":
            parent[key] = draw(json_values)
        else:
            parent[key] = [parent[key]]
    return document


@PARSERS
@FUZZ
@given(document=json_values)
def test_random_json(parse: Parser, document: Any) -> None:
    check(decode_batch(json.dumps(document).encode(), parse), document)


@PARSERS
@FUZZ
@given(document=st.lists(st.dictionaries(keys, small_json_values, max_size=8), max_size=4))
def test_random_arrays_of_objects(parse: Parser, document: list[dict[str, Any]]) -> None:
    check(decode_batch(json.dumps(document).encode(), parse), document)


@PARSERS
@FUZZ
@given(document=mutated_fixtures())
def test_mutated_fixtures(parse: Parser, document: Any) -> None:
    check(decode_batch(json.dumps(document).encode(), parse), document)


@PARSERS
@FUZZ
@given(body=st.binary(max_size=200) | st.text(max_size=200))
def test_random_bytes_and_text(parse: Parser, body: bytes | str) -> None:
    check(decode_batch(body, parse))


@PARSERS
@FUZZ
@given(document=mutated_fixtures(), cut=st.integers(min_value=0))
def test_truncated_fixtures(parse: Parser, document: Any, cut: int) -> None:
    body = json.dumps(document).encode()
    check(decode_batch(body[: cut % (len(body) + 1)], parse))


@FUZZ
@given(graph=entities, extended=st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), small_json_values))
def test_random_entity_graphs(graph: list[Any], extended: dict[str, Any]) -> None:
    alert = {
        "AlertType": "K8S_Fuzz",
        "SystemAlertId": "fuzz",
        "Severity": "High",
        "StartTimeUtc": "2024-05-01T10:00:00Z",
        "Entities": graph,
        "ExtendedProperties": extended,
    }
    row = {**alert, "AlertSeverity": "High", "StartTime": alert["StartTimeUtc"], "Entities": json.dumps(graph)}
    for body in (alert, row):  # the flat shape, and a Log Analytics row with Entities as a JSON string
        outcomes = decode_batch(json.dumps(body).encode(), parse_defender_alert)
        check(outcomes, body)
        assert isinstance(outcomes[0], Signal), outcomes  # a well-typed alert is never refused for its graph


@FUZZ
@given(document=mutated_fixtures())
def test_decoding_is_deterministic(document: Any) -> None:
    body = json.dumps(document).encode()
    assert decode_batch(body, parse_any) == decode_batch(body, parse_any)
