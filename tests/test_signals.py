"""The normalisers in `remediation.signals`: every fixture against its documented outcome, then the
edge cases one at a time (envelopes, times, the Entities graph, image references, severities, bad input).
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from expected_targets import EXPECTED, FIXTURES_DIR, fixture_path
from remediation.signals import (
    MAX_EVENT_BYTES,
    TARGET_FIELDS,
    InvalidEvent,
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
from remediation.signals.defender_entities import targets_from
from remediation.signals.fields import ImageReference, parse_image_reference, parse_time

SAMPLES = FIXTURES_DIR / "samples"
DIGEST = "sha256:" + "ab" * 32
CLUSTER = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg"
    "/providers/Microsoft.ContainerService/managedClusters/aks1"
)


# ---------------------------------------------------------------------------------------------------
# helpers


def load(name: str) -> Any:
    return json.loads(fixture_path(name).read_bytes())


def dumps(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def only(outcomes: list[Outcome]) -> Outcome:
    assert len(outcomes) == 1, outcomes
    return outcomes[0]


def one_signal(body: Any, parse: Parser = parse_any) -> Signal:
    outcome = only(decode_batch(body if isinstance(body, bytes | str) else dumps(body), parse))
    assert isinstance(outcome, Signal), outcome
    return outcome


def one_rejection(body: Any, parse: Parser = parse_any) -> Rejection:
    outcome = only(decode_batch(body if isinstance(body, bytes | str) else dumps(body), parse))
    assert isinstance(outcome, Rejection), outcome
    return outcome


def registry_event(**overrides: Any) -> dict[str, Any]:
    """A minimal valid Event Grid ImagePushed event; `overrides` replace top-level keys."""
    event: dict[str, Any] = {
        "id": "evt-1",
        "topic": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/reg1",
        "subject": "app:1.0",
        "eventType": "Microsoft.ContainerRegistry.ImagePushed",
        "eventTime": "2024-05-01T10:00:00.1234567Z",
        "data": {
            "id": "d-1",
            "timestamp": "2024-05-01T09:59:59.999999999Z",
            "action": "push",
            "target": {"repository": "app", "tag": "1.0", "digest": DIGEST},
            "request": {"host": "Reg1.AzureCR.io"},
            "actor": {"name": "ci-bot"},
        },
        "dataVersion": "1.0",
        "metadataVersion": "1",
    }
    event.update(overrides)
    return event


def flat_alert(**overrides: Any) -> dict[str, Any]:
    """A minimal valid flat (continuous-export) Defender alert; `overrides` replace keys (None deletes)."""
    alert: dict[str, Any] = {
        "AlertType": "K8S_PrivilegedContainer",
        "SystemAlertId": "alert-1",
        "Severity": "Medium",
        "StartTimeUtc": "2024-05-01T10:00:00Z",
        "AlertDisplayName": "Privileged container detected",
        "AzureResourceId": CLUSTER,
        "Entities": [],
        "ExtendedProperties": {},
    }
    alert.update(overrides)
    return {k: v for k, v in alert.items() if v is not None}


def assert_outcome(outcome: Outcome, expected: dict[str, Any]) -> None:
    kind = expected["outcome"]
    if kind == "signal":
        assert isinstance(outcome, Signal), outcome
        assert outcome.source is Source(expected["source"])
        assert outcome.type == expected["type"]
        assert outcome.id == expected["id"]
        assert outcome.severity.label == expected["severity"]
        assert outcome.time.tzinfo is not None
        assert outcome.time.isoformat() == expected["time"]
        unknown = set(expected["targets"]) - set(TARGET_FIELDS)
        assert not unknown, f"the table names unknown target fields {unknown}"
        actual = outcome.targets.as_dict()
        assert actual == {name: expected["targets"].get(name) for name in TARGET_FIELDS}
    elif kind == "skip":
        assert isinstance(outcome, Skip), outcome
        assert outcome.kind == expected["kind"]
        assert outcome.event_id == expected["event_id"]
    elif kind == "rejection":
        assert isinstance(outcome, Rejection), outcome
        assert expected["reason"] in outcome.reason
        assert outcome.event_id == expected["event_id"]
        assert outcome.index == expected["index"]
    else:  # pragma: no cover - a typo in the table
        pytest.fail(f"unknown outcome kind {kind!r}")


# ---------------------------------------------------------------------------------------------------
# every fixture against the table


UNKNOWN_SOURCE = "not an event this app reads (known sources: registry, defender)"
NOT_ANY_SOURCE = frozenset(
    {
        "samples/eventgrid-deadletter.eventgrid.json",
        "samples/eventgrid-subscriptionvalidation.response.json",
        "samples/slack-block_actions.interaction-payload.json",
        "samples/slack-slash-command.signed-request.json",
        "samples/slack-view_submission.interaction-payload.json",
    }
)
"""Fixtures no source recognises. EXPECTED (shared with the Functions tests) records what the
Defender endpoint says of them; `parse_any` says instead that they are not an event this app reads."""


def _entry_point_parser(name: str) -> Parser:
    return parse_registry_event if _is_registry_fixture(name) else parse_defender_alert


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_outcomes(name: str) -> None:
    outcomes = decode_batch(fixture_path(name).read_bytes(), parse_any)
    expected = EXPECTED[name]
    assert len(outcomes) == len(expected), outcomes
    for outcome, want in zip(outcomes, expected, strict=True):
        if name in NOT_ANY_SOURCE:
            want = want | {"reason": UNKNOWN_SOURCE}
        assert_outcome(outcome, want)


@pytest.mark.parametrize("name", sorted(NOT_ANY_SOURCE))
def test_documents_of_no_source_get_the_table_reason_from_their_endpoint(name: str) -> None:
    outcomes = decode_batch(fixture_path(name).read_bytes(), _entry_point_parser(name))
    for outcome, want in zip(outcomes, EXPECTED[name], strict=True):
        assert_outcome(outcome, want)


def test_every_fixture_file_is_in_the_table() -> None:
    # Event fixtures live at the top of tests/fixtures/ and in samples/; other subdirectories
    # (playbooks/, ...) belong to other tests.
    files = [*FIXTURES_DIR.glob("*.json"), *SAMPLES.glob("*.json")]
    on_disk = {path.relative_to(FIXTURES_DIR).as_posix() for path in files}
    assert on_disk == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_top_level_is_an_object_or_array(name: str) -> None:
    assert isinstance(load(name), dict | list)


def test_samples_are_verbatim_copies() -> None:
    shared = Path("/work/shared/samples")
    if not shared.is_dir():
        pytest.skip("the shared samples directory is not on this machine")
    for source in shared.iterdir():
        assert (SAMPLES / source.name).read_bytes() == source.read_bytes(), source.name
    assert (SAMPLES / "SOURCES.md").is_file()


@pytest.mark.parametrize(
    ("eventgrid", "cloudevents"),
    [
        ("acr-imagepushed.eventgrid.json", "acr-imagepushed.cloudevents.json"),
        ("acr-imagedeleted.eventgrid.json", "acr-imagedeleted.cloudevents.json"),
        ("acr-chartpushed.eventgrid.json", "acr-chartpushed.cloudevents.json"),
        ("acr-chartdeleted.eventgrid.json", "acr-chartdeleted.cloudevents.json"),
    ],
)
def test_both_envelopes_give_the_same_signal(eventgrid: str, cloudevents: str) -> None:
    first = one_signal((SAMPLES / eventgrid).read_bytes(), parse_registry_event)
    second = one_signal((SAMPLES / cloudevents).read_bytes(), parse_registry_event)
    assert first == second
    assert first.raw["schema"] == "eventgrid"
    assert second.raw["schema"] == "cloudevents"


def _is_registry_fixture(name: str) -> bool:
    return name.startswith("samples/acr-")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_entry_point_parser_agrees_with_parse_any(name: str) -> None:
    """The table holds for the parser each entry point uses, not only for parse_any."""
    body = fixture_path(name).read_bytes()
    by_endpoint, by_any = decode_batch(body, _entry_point_parser(name)), decode_batch(body, parse_any)
    if name in NOT_ANY_SOURCE:  # the same rejections, each with its parser's reason
        assert [(type(o), getattr(o, "event_id", None), getattr(o, "index", None)) for o in by_endpoint] == [
            (type(o), getattr(o, "event_id", None), getattr(o, "index", None)) for o in by_any
        ]
        assert all(isinstance(o, Rejection) and UNKNOWN_SOURCE in o.reason for o in by_any)
    else:
        assert by_endpoint == by_any


# ---------------------------------------------------------------------------------------------------
# container registry events


def test_short_event_type_is_normalised() -> None:
    signal = one_signal((SAMPLES / "acr-imagedeleted.eventgrid.json").read_bytes())
    assert signal.type == "Microsoft.ContainerRegistry.ImageDeleted"
    assert signal.raw["type"] == "ImageDeleted"  # the envelope as sent is kept in raw
    assert signal.title.startswith("ImageDeleted ")


@pytest.mark.parametrize("short", ["ImagePushed", "ImageDeleted", "ChartPushed", "ChartDeleted"])
@pytest.mark.parametrize("parse", [parse_any, parse_registry_event], ids=["parse_any", "parse_registry_event"])
def test_every_short_event_type_is_normalised(short: str, parse: Parser) -> None:
    signal = one_signal(registry_event(eventType=short), parse)
    assert signal.type == f"Microsoft.ContainerRegistry.{short}"
    assert signal.source is Source.REGISTRY


def test_image_deleted_has_a_digest_and_no_tag() -> None:
    signal = one_signal((SAMPLES / "acr-imagedeleted.eventgrid.json").read_bytes())
    assert signal.targets.tag is None
    assert signal.targets.digest == "sha256:213bbc182920ab41e18edc2001e06abcca6735d87782d9cef68abd83941cf0e5"
    assert signal.targets.image == f"demo.azurecr.io/aci-helloworld@{signal.targets.digest}"


def test_data_version_2_0_is_read() -> None:
    signal = one_signal((SAMPLES / "acr-imagepushed.eventgrid.json").read_bytes())
    assert signal.raw["dataVersion"] == "2.0"
    assert signal.raw["data"]["location"] == "chinanorth"
    assert signal.raw["data"]["connectedRegistry"] == {"name": "edge1"}
    assert signal.targets.tag == "v1"
    assert signal.targets.registry_login_server == "demo.azurecr.io"


def test_registry_signal_fields() -> None:
    signal = one_signal(registry_event())
    assert signal.severity is Severity.INFORMATIONAL
    assert signal.id == "registry:evt-1"
    assert signal.actor == "ci-bot"
    assert signal.title == "ImagePushed app:1.0"
    assert signal.targets.registry_login_server == "reg1.azurecr.io"  # lower-cased
    assert signal.targets.image == "reg1.azurecr.io/app:1.0"
    assert signal.targets.registry_resource_id == registry_event()["topic"]


@pytest.mark.parametrize("name", ["acr-chartdeleted.eventgrid.json", "acr-chartdeleted.cloudevents.json"])
def test_unreadable_envelope_time_falls_back_to_data_timestamp(name: str) -> None:
    document = json.loads((SAMPLES / name).read_bytes())
    assert document[0].get("eventTime", document[0].get("time")).startswith("019-03-12")
    signal = one_signal((SAMPLES / name).read_bytes())
    assert signal.time == datetime(2019, 3, 12, 22, 42, 8, 378377, tzinfo=UTC)


def test_missing_envelope_time_falls_back_to_data_timestamp() -> None:
    signal = one_signal(registry_event(eventTime=None))
    assert signal.time == datetime(2024, 5, 1, 9, 59, 59, 999999, tzinfo=UTC)


def test_envelope_time_wins_over_data_timestamp() -> None:
    assert one_signal(registry_event()).time == datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)


def test_both_times_unparseable_is_a_rejection_naming_the_time() -> None:
    event = registry_event(eventTime="019-03-12T22:42:08Z")
    event["data"]["timestamp"] = "last tuesday"
    rejection = one_rejection(event)
    assert "data.timestamp 'last tuesday' is not an ISO 8601 time" in rejection.reason
    assert rejection.event_id == "evt-1"


def test_unparseable_envelope_time_without_timestamp_names_event_time() -> None:
    event = registry_event(eventTime="019-03-12T22:42:08Z")
    del event["data"]["timestamp"]
    assert "eventTime '019-03-12T22:42:08Z' is not an ISO 8601 time" in one_rejection(event).reason


def test_no_time_at_all_is_a_rejection() -> None:
    event = registry_event(eventTime=None)
    del event["data"]["timestamp"]
    assert "has no time" in one_rejection(event).reason


def test_cloudevent_registry_event() -> None:
    event = {
        "specversion": "1.0",
        "id": "ce-1",
        "source": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/reg1",
        "type": "ImagePushed",
        "time": "2024-05-01T10:00:00Z",
        "data": registry_event()["data"],
    }
    signal = one_signal(event)
    assert signal.type == "Microsoft.ContainerRegistry.ImagePushed"
    assert signal.id == "registry:ce-1"
    assert signal.raw["schema"] == "cloudevents"


def test_validation_event_is_skipped_by_the_registry_parser() -> None:
    body = (SAMPLES / "eventgrid-subscriptionvalidation.request.eventgrid.json").read_bytes()
    assert decode_batch(body, parse_registry_event) == [
        Skip(kind="Microsoft.EventGrid.SubscriptionValidationEvent", event_id="2d1781af-3a4c-4d7c-bd0c-e34b19da4e66")
    ]


# ---------------------------------------------------------------------------------------------------
# times


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2018-04-25T21:39:47.6549614Z", datetime(2018, 4, 25, 21, 39, 47, 654961, tzinfo=UTC)),  # 7 digits
        ("2018-04-25T21:39:47.276585742Z", datetime(2018, 4, 25, 21, 39, 47, 276585, tzinfo=UTC)),  # 9 digits
        ("2019-03-12T22:42:08.3783775+00:00", datetime(2019, 3, 12, 22, 42, 8, 378377, tzinfo=UTC)),
        ("2024-05-01T12:00:00+02:00", datetime(2024, 5, 1, 10, 0, tzinfo=UTC)),  # converted to UTC
        ("2024-05-01T10:00:00", datetime(2024, 5, 1, 10, 0, tzinfo=UTC)),  # naive is UTC
    ],
)
def test_parse_time(text: str, expected: datetime) -> None:
    parsed = parse_time(text, field="t")
    assert parsed == expected
    offset = parsed.utcoffset()
    assert offset is not None
    assert offset.total_seconds() == 0


@pytest.mark.parametrize("text", ["019-03-12T22:42:08.7034064Z", "yesterday", "", "2024-13-01T00:00:00Z"])
def test_parse_time_rejects(text: str) -> None:
    with pytest.raises(InvalidEvent, match=r"^t .* is not an ISO 8601 time$"):
        parse_time(text, field="t")


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"])
def test_time_out_of_range_after_utc_conversion_is_a_rejection(text: str) -> None:
    # Valid ISO times at the edge of datetime's range overflow when converted to UTC.
    rejection = one_rejection(flat_alert(StartTimeUtc=text))
    assert "StartTimeUtc" in rejection.reason


# ---------------------------------------------------------------------------------------------------
# Defender alerts


def test_flat_alert_fields() -> None:
    signal = one_signal(flat_alert(Description="d", AlertUri="https://portal/x"))
    assert signal.source is Source.DEFENDER
    assert signal.id == "defender:alert-1"
    assert signal.severity is Severity.MEDIUM
    assert signal.title == "Privileged container detected"
    assert signal.description == "d"
    assert signal.link == "https://portal/x"
    assert signal.targets.cluster_resource_id == CLUSTER


def test_flat_alert_time_falls_back_to_time_generated() -> None:
    signal = one_signal(flat_alert(StartTimeUtc=None, TimeGenerated="2024-05-02T00:00:00Z"))
    assert signal.time == datetime(2024, 5, 2, tzinfo=UTC)


def test_arm_alert_uses_name_when_system_alert_id_is_missing() -> None:
    alert = load("samples/defender-alert.rest-api-2022-01-01.json")
    del alert["properties"]["systemAlertId"]
    alert["name"] = "from-name"
    assert one_signal(alert).id == "defender:from-name"


def test_log_analytics_row_reads_json_strings() -> None:
    signal = one_signal(load("defender-alert-k8s-clusteradminbinding.log-analytics-row.json"))
    assert signal.actor == "dev-user@contoso.com"
    assert signal.extended_properties["subjectKind"] == "User"
    assert signal.extended_properties["subjectName"] == "dev-user@contoso.com"
    assert signal.title == "Role binding to the cluster-admin role detected"
    assert signal.link is not None
    assert signal.link.startswith("https://portal.azure.com/")


def test_log_analytics_row_time_falls_back_to_time_generated() -> None:
    row = load("defender-alert-k8s-clusteradminbinding.log-analytics-row.json")
    del row["StartTime"]
    assert one_signal(row).time == datetime(2024, 11, 21, 10, 15, 42, 123456, tzinfo=UTC)


def test_extended_properties_values_become_strings() -> None:
    signal = one_signal(flat_alert(ExtendedProperties={"a": 1, "b": {"c": [True]}, "d": None, "e": "x"}))
    assert signal.extended_properties == {"a": "1", "b": '{"c":[true]}', "e": "x"}


@pytest.mark.parametrize(
    ("extended", "kind", "name"),
    [
        ({"clusterRoleBindingName": "crb"}, "ClusterRoleBinding", "crb"),
        ({"roleBindingName": "rb"}, "RoleBinding", "rb"),
        ({"Role name": "r"}, "Role", "r"),
        ({"Resource type": "clusterrolebindings", "Resource name": "crb2"}, "ClusterRoleBinding", "crb2"),
        ({"Resource type": "mutatingwebhookconfigurations", "Resource name": "x"}, None, None),
    ],
)
def test_rbac_targets_from_extended_properties(extended: dict[str, str], kind: str | None, name: str | None) -> None:
    targets = one_signal(flat_alert(ExtendedProperties=extended)).targets
    assert (targets.rbac_kind, targets.rbac_name) == (kind, name)


def test_rbac_resource_type_survives_the_resource_type_key_every_export_carries() -> None:
    # The real continuous-export sample carries both "Resource type" (the Kubernetes resource) and
    # "resourceType": "Kubernetes Service"; both normalise to "resourcetype" and the later one wins.
    alert = load("samples/defender-alert-k8s-admissioncontroller.continuous-export-eventhub.json")
    alert["ExtendedProperties"]["Resource type"] = "clusterrolebindings"
    alert["ExtendedProperties"]["Resource name"] = "evil-binding"
    targets = one_signal(alert).targets
    assert (targets.rbac_kind, targets.rbac_name) == ("ClusterRoleBinding", "evil-binding")


@pytest.mark.parametrize("wrapper", ["eventgrid-customtopic", "cloudevent"])
def test_wrapped_alert_is_the_same_signal_as_the_bare_alert(wrapper: str) -> None:
    document = load(f"defender-alert-k8s-privilegedcontainer.{wrapper}.json")
    envelope = document[0] if isinstance(document, list) else document
    assert one_signal(envelope) == one_signal(envelope["data"])


def test_error_inside_a_wrapped_alert_names_the_event_type() -> None:
    document = load("defender-alert-k8s-privilegedcontainer.cloudevent.json")
    document["data"]["Severity"] = "Severe"
    rejection = one_rejection(document)
    assert rejection.reason.startswith("event 'DefenderForCloud.SecurityAlert': Severity 'Severe'")
    assert rejection.event_id == "1bec815c-97fc-4f22-98fe-f05d48a07845"


def test_envelope_without_an_alert_object_is_a_rejection() -> None:
    document = load("defender-alert-k8s-privilegedcontainer.cloudevent.json")
    document["data"] = "x"
    assert "carries no alert object in its data" in one_rejection(document, parse_defender_alert).reason
    # parse_any reads an envelope by its data: with no alert in it, no source claims it
    assert UNKNOWN_SOURCE in one_rejection(document).reason


def test_recommendations_in_any_case_are_skipped() -> None:
    for kind in ("Microsoft.Security/assessments", "microsoft.security/secureScores"):
        outcome = only(decode_batch(dumps({"type": kind, "id": "x"}), parse_any))
        assert outcome == Skip(kind=kind, event_id="x")


# ---------------------------------------------------------------------------------------------------
# the Entities graph


def test_ref_graph_resolves_nested_and_top_level_refs() -> None:
    entities = [
        {"$ref": "3"},  # a reference before its definition
        {
            "$id": "1",
            "Type": "container",
            "Name": "c",
            "Image": {"$ref": "3"},
            "Pod": {"$id": "2", "Type": "K8s-pod", "Name": "p", "Namespace": {"$id": "4", "Name": "ns"}},
        },
        {"$id": "3", "Type": "container-image", "ImageId": f"reg.azurecr.io/app:1@{DIGEST}"},
        {"$ref": "2"},
    ]
    targets = targets_from(entities=entities, extended={}, resource_ids=[])
    assert targets == Targets(
        registry_login_server="reg.azurecr.io",
        repository="app",
        tag="1",
        digest=DIGEST,
        namespace="ns",
        pod="p",
        container="c",
        image=f"reg.azurecr.io/app:1@{DIGEST}",
    )


@pytest.mark.parametrize(
    "entities",
    [
        [{"$id": "1", "x": {"$ref": "1"}}],  # a cycle through a field
        [{"$id": "1", "Type": "container", "Name": "c", "Pod": {"$ref": "1"}, "Image": {"$ref": "1"}}],
        [{"$id": "a", "$ref": "b"}, {"$id": "b", "$ref": "a"}],  # a cycle of pure references
        [{"$id": "a", "$ref": "a"}],  # a self-reference
        [{"$ref": "nowhere"}],  # dangling
        [{"Type": "K8s-pod", "Name": "p", "Namespace": {"$ref": "404"}}],  # dangling field
        [{"$ref": 5}, {"$ref": None}, {"$ref": ["1"]}, {"$ref": {"$ref": "1"}}, {"$id": 1}],  # odd types
        [{"$ref": "1"}, {"$id": "1", "$ref": "2"}, {"$id": "2", "$ref": "3"}, {"$id": "3", "$ref": "4"}],
        [None, 1, "x", [], [[{"$ref": "1"}]], {}],
    ],
)
def test_ref_graph_never_crashes(entities: list[Any]) -> None:
    assert isinstance(targets_from(entities=entities, extended={}, resource_ids=[]), Targets)
    signal = one_signal(flat_alert(Entities=entities))
    assert signal.targets.cluster_resource_id == CLUSTER


def test_cycle_through_a_field_reads_what_it_can() -> None:
    entities = [{"$id": "1", "Type": "K8s-pod", "Name": "p", "Namespace": {"$ref": "1"}}]
    targets = targets_from(entities=entities, extended={}, resource_ids=[])
    assert targets.pod == "p"


def test_dangling_refs_read_as_absent() -> None:
    entities = [{"Type": "container", "Name": "c", "Image": {"$ref": "404"}, "Pod": {"$ref": "405"}}]
    assert targets_from(entities=entities, extended={}, resource_ids=[]) == Targets(container="c")


def test_ref_chain_longer_than_the_hop_limit_reads_as_absent() -> None:
    chain = [{"$id": str(i), "$ref": str(i + 1)} for i in range(10)]
    entities = [{"Type": "container", "Name": "c", "Image": {"$ref": "0"}}, *chain, {"$id": "10", "ImageId": "x:1"}]
    assert targets_from(entities=entities, extended={}, resource_ids=[]).image is None


def test_same_id_repeated_with_the_same_entity_is_read_once() -> None:
    signal = one_signal(load("defender-alert-k8s-node-digitalcurrencymining.continuous-export.json"))
    assert signal.targets.namespace == "crypto"


def test_first_definition_of_a_repeated_id_wins() -> None:
    # defender_entities documents "ids may repeat; the first wins", but _Graph walks the list with
    # stack.pop() (from the end), so setdefault() keeps the last top-level definition.
    entities = [
        {"Type": "container", "Name": "c", "Image": {"$ref": "2"}},
        {"$id": "2", "ImageId": "first.azurecr.io/a:1"},
        {"$id": "2", "ImageId": "second.azurecr.io/b:2"},
    ]
    assert targets_from(entities=entities, extended={}, resource_ids=[]).image == "first.azurecr.io/a:1"


def test_log_analytics_entities_string_goes_through_the_same_graph() -> None:
    row = load("defender-alert-k8s-clusteradminbinding.log-analytics-row.json")
    entities = [
        {"$id": "1", "Type": "K8s-pod", "Name": "p", "Namespace": {"$ref": "2"}},
        {"$id": "2", "Type": "K8s-namespace", "Name": "kube-system"},
        {"$ref": "1"},
    ]
    row["Entities"] = json.dumps(entities)
    targets = one_signal(row).targets
    assert (targets.pod, targets.namespace) == ("p", "kube-system")


def test_host_and_azure_resource_entities() -> None:
    registry = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/reg1"
    entities = [
        {"Type": "host", "HostName": "aks-nodepool1-1-vmss000001", "OSFamily": "Linux"},
        {"Type": "azure-resource", "ResourceId": registry},
    ]
    targets = targets_from(entities=entities, extended={}, resource_ids=[])
    assert (targets.node, targets.registry_resource_id) == ("aks-nodepool1-1-vmss000001", registry)


# ---------------------------------------------------------------------------------------------------
# image references


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("nginx", ImageReference(None, "nginx", None, None)),
        ("library/nginx:1.25", ImageReference(None, "library/nginx", "1.25", None)),
        (f"myreg.azurecr.io/a/b:tag@{DIGEST}", ImageReference("myreg.azurecr.io", "a/b", "tag", DIGEST)),
        (f"MyReg.AzureCR.io/a/b@{DIGEST}", ImageReference("myreg.azurecr.io", "a/b", None, DIGEST)),
        ("localhost:5000/x", ImageReference("localhost:5000", "x", None, None)),
        ("localhost/x:2", ImageReference("localhost", "x", "2", None)),
        ("localhost:5000", ImageReference(None, "localhost", "5000", None)),  # Docker reads it this way too
        (f"@{DIGEST}", ImageReference(None, None, None, DIGEST)),
        (f"nginx@{DIGEST}", ImageReference(None, "nginx", None, DIGEST)),
        ("nginx@sha256:tooshort", ImageReference(None, "nginx", None, None)),  # invalid digest dropped
        ("nginx:", ImageReference(None, "nginx", None, None)),
        ("  nginx:1  ", ImageReference(None, "nginx", "1", None)),
        ("", ImageReference(None, None, None, None)),
    ],
)
def test_parse_image_reference(reference: str, expected: ImageReference) -> None:
    assert parse_image_reference(reference) == expected


def test_parse_image_reference_bare_digest_is_not_a_repository() -> None:
    # Questionable: a bare `sha256:<hex>` (how a runtime may report an image id) reads as repository
    # "sha256" with the hex as its tag. Pinned here so a change is deliberate.
    assert parse_image_reference(DIGEST) == ImageReference(None, "sha256", "ab" * 32, None)


# ---------------------------------------------------------------------------------------------------
# severities


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("High", Severity.HIGH),
        ("high", Severity.HIGH),
        (" Medium ", Severity.MEDIUM),
        ("LOW", Severity.LOW),
        ("Informational", Severity.INFORMATIONAL),
        ("info", Severity.INFORMATIONAL),
        ("Critical", Severity.CRITICAL),
        ("", None),
        ("Severe", None),
        (None, None),
        (3, None),
        (["High"], None),
    ],
)
def test_severity_parse(text: object, expected: Severity | None) -> None:
    assert Severity.parse(text) is expected


def test_severity_is_ordered() -> None:
    assert Severity.INFORMATIONAL < Severity.LOW < Severity.MEDIUM < Severity.HIGH < Severity.CRITICAL
    assert Severity.HIGH.label == "high"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("Severe", "Severity 'Severe' is not one of"),
        (None, "Severity is missing"),  # absent
        (3, "Severity must be a string, got int"),
    ],
)
def test_bad_severity_is_a_rejection(value: Any, reason: str) -> None:
    alert = flat_alert(Severity=value)
    rejection = one_rejection(alert)
    assert reason in rejection.reason
    assert rejection.event_id == "alert-1"


# ---------------------------------------------------------------------------------------------------
# bad input: each is a Rejection with a clear reason, never an exception

_ALL_PARSERS = pytest.mark.parametrize(
    "parse",
    [parse_any, parse_registry_event, parse_defender_alert],
    ids=["parse_any", "parse_registry_event", "parse_defender_alert"],
)


@_ALL_PARSERS
@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"id": ', "the body is not valid JSON"),
        (b"", "the body is not valid JSON"),
        (b"\xff\xfe\x00{", "the body is not valid JSON"),
        (b"[1, 2", "the body is not valid JSON"),
        (b"{'id': 'single quotes'}", "the body is not valid JSON"),
        (b"42", "the body must be a JSON object or array, got int"),
        (b"4.5", "the body must be a JSON object or array, got float"),
        (b'"an event"', "the body must be a JSON object or array, got str"),
        (b"null", "the body must be a JSON object or array, got NoneType"),
        (b"true", "the body must be a JSON object or array, got bool"),
        ("[" * 100_000 + "]" * 100_000, "the body is not valid JSON"),  # nested too deeply
    ],
)
def test_bad_bodies(body: bytes | str, reason: str, parse: Parser) -> None:
    rejection = one_rejection(body, parse)
    assert reason in rejection.reason
    assert (rejection.event_id, rejection.index) == (None, None)


@_ALL_PARSERS
def test_empty_array_has_no_outcomes(parse: Parser) -> None:
    assert decode_batch(b"[]", parse) == []


@pytest.mark.parametrize(
    ("bad", "good", "parse", "reason"),
    [
        (123, registry_event(), parse_registry_event, "an event must be a JSON object, got int"),
        ("x", flat_alert(), parse_defender_alert, "an alert must be a JSON object, got str"),
        (None, flat_alert(), parse_any, f"{UNKNOWN_SOURCE}: an event must be a JSON object, got NoneType"),
        (
            [registry_event()],
            registry_event(),
            parse_any,
            f"{UNKNOWN_SOURCE}: an event must be a JSON object, got list",
        ),
        (registry_event(data="x"), registry_event(), parse_any, "data must be an object, got str"),
    ],
)
def test_one_bad_item_does_not_spoil_the_batch(bad: Any, good: Any, parse: Parser, reason: str) -> None:
    outcomes = decode_batch(dumps([bad, good]), parse)
    assert len(outcomes) == 2
    assert isinstance(outcomes[0], Rejection)
    assert reason in outcomes[0].reason
    assert outcomes[0].index == 0
    assert isinstance(outcomes[1], Signal)


def test_rejection_index_points_at_the_bad_item() -> None:
    outcomes = decode_batch(dumps([registry_event(), registry_event(id=None), registry_event()]), parse_any)
    assert [type(o) for o in outcomes] == [Signal, Rejection, Signal]
    assert isinstance(outcomes[1], Rejection)
    assert outcomes[1].index == 1


def _registry_with_data(**changes: Any) -> dict[str, Any]:
    event = registry_event()
    data = copy.deepcopy(event["data"])
    for key, value in changes.items():
        if key.startswith("target."):
            data["target"][key.removeprefix("target.")] = value
        else:
            data[key] = value
    event["data"] = data
    return event


@pytest.mark.parametrize(
    ("event", "parse", "reason", "event_id"),
    [
        # missing ids
        (registry_event(id=None), parse_any, "id is missing", None),
        (registry_event(id=""), parse_any, "id is missing", None),
        (flat_alert(SystemAlertId=None), parse_any, "SystemAlertId is missing", None),
        (flat_alert(AlertType=None), parse_any, "AlertType is missing", "alert-1"),
        # wrongly typed fields
        (registry_event(id=7), parse_any, "id must be a string, got int", None),
        (registry_event(data="x"), parse_any, "data must be an object, got str", "evt-1"),
        (registry_event(data=None), parse_any, "data must be an object, got NoneType", "evt-1"),
        (_registry_with_data(target=[]), parse_any, "data.target must be an object, got list", "evt-1"),
        (_registry_with_data(**{"target.tag": 5}), parse_any, "data.target.tag must be a string, got int", "evt-1"),
        (_registry_with_data(**{"target.digest": []}), parse_any, "data.target.digest must be a string", "evt-1"),
        (_registry_with_data(**{"target.repository": None}), parse_any, "data.target.repository is missing", "evt-1"),
        (_registry_with_data(request="host"), parse_any, "data.request must be an object, got str", "evt-1"),
        (_registry_with_data(timestamp=1), parse_any, "data.timestamp must be a string, got int", "evt-1"),
        (registry_event(eventTime=1714557600), parse_any, "eventTime must be a string, got int", "evt-1"),
        (flat_alert(AlertType=5), parse_any, "AlertType must be a string, got int", "alert-1"),
        (flat_alert(StartTimeUtc=[]), parse_any, "StartTimeUtc must be a string, got list", "alert-1"),
        (flat_alert(Entities={}), parse_any, "Entities must be a list, got dict", "alert-1"),
        (flat_alert(Entities="{}"), parse_any, "Entities must be a list, got dict", "alert-1"),
        (flat_alert(Entities="not json"), parse_any, "Entities is a string but not JSON", "alert-1"),
        (flat_alert(ExtendedProperties=[]), parse_any, "ExtendedProperties must be an object, got list", "alert-1"),
        (flat_alert(AzureResourceId=5), parse_any, "AzureResourceId must be a string, got int", "alert-1"),
        # a tagless, digestless image
        (_registry_with_data(**{"target.tag": None, "target.digest": None}), parse_any, "neither a tag nor", "evt-1"),
        # unknown event types
        (registry_event(eventType="Microsoft.Storage.BlobCreated"), parse_registry_event, "not a container", "evt-1"),
        (registry_event(eventType="ImageScanned"), parse_registry_event, "not a container registry event", "evt-1"),
        (
            registry_event(eventType="Microsoft.Storage.BlobCreated"),
            parse_any,
            f"{UNKNOWN_SOURCE}; its type is 'Microsoft.Storage.BlobCreated'",
            "evt-1",
        ),
        (registry_event(eventType="Microsoft.Storage.BlobCreated"), parse_defender_alert, "not a Defender", "evt-1"),
        ({"type": "Microsoft.Security/Locations/alerts", "properties": {}}, parse_any, "not a Defender", None),
        (flat_alert(), parse_registry_event, "not an Event Grid event (no eventType) nor a CloudEvent", "alert-1"),
        # unparseable times
        (
            flat_alert(StartTimeUtc="yesterday"),
            parse_any,
            "StartTimeUtc 'yesterday' is not an ISO 8601 time",
            "alert-1",
        ),
        (flat_alert(StartTimeUtc=None), parse_any, "StartTimeUtc/TimeGenerated is missing", "alert-1"),
        # CloudEvents other than 1.0
        (
            {"specversion": "0.3", "id": "ce", "source": "/x", "type": "ImagePushed", "data": {}},
            parse_any,
            "specversion '0.3' is not CloudEvents 1.0",
            "ce",
        ),
        (
            {"specversion": 1.0, "id": "ce", "source": "/x", "type": "X", "data": flat_alert()},
            parse_defender_alert,
            "specversion 1.0 is not CloudEvents 1.0",
            "ce",
        ),
        (
            {"specversion": "1.0", "id": "ce", "type": "ImagePushed", "data": {}},
            parse_any,
            "source is missing",
            "ce",
        ),
    ],
)
def test_bad_events(event: dict[str, Any], parse: Parser, reason: str, event_id: str | None) -> None:
    rejection = one_rejection(event, parse)
    assert reason in rejection.reason
    assert rejection.event_id == event_id
    assert rejection.index is None


def compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _padded_alert(alert_id: str, size: int) -> dict[str, Any]:
    """An alert whose compact JSON is exactly `size` bytes."""
    alert = flat_alert(SystemAlertId=alert_id, Description="")
    alert["Description"] = "x" * (size - len(compact(alert)))
    return alert


def test_object_over_the_size_limit_is_rejected() -> None:
    rejection = one_rejection(compact(_padded_alert("big", MAX_EVENT_BYTES + 1)))
    assert f"the event is {MAX_EVENT_BYTES + 1} bytes, over the {MAX_EVENT_BYTES}-byte limit" in rejection.reason
    assert rejection.event_id == "big"


def test_object_at_the_size_limit_is_accepted() -> None:
    body = compact(_padded_alert("edge", MAX_EVENT_BYTES))
    assert len(body) == MAX_EVENT_BYTES
    assert one_signal(body).id == "defender:edge"


def test_array_item_over_the_size_limit_is_rejected_alone() -> None:
    body = compact([flat_alert(SystemAlertId="small"), _padded_alert("big", MAX_EVENT_BYTES + 1)])
    small, big = decode_batch(body, parse_any)
    assert isinstance(small, Signal)
    assert isinstance(big, Rejection)
    assert f"the event is {MAX_EVENT_BYTES + 1} bytes" in big.reason
    assert (big.event_id, big.index) == ("big", 1)


def test_array_item_at_the_size_limit_is_accepted() -> None:
    body = compact([flat_alert(SystemAlertId="small"), _padded_alert("edge", MAX_EVENT_BYTES)])
    assert [type(o) for o in decode_batch(body, parse_any)] == [Signal, Signal]


def test_array_over_the_limit_made_of_small_items_is_accepted() -> None:
    items = [_padded_alert(f"a{i}", 400_000) for i in range(3)]
    outcomes = decode_batch(compact(items), parse_any)
    assert [type(o) for o in outcomes] == [Signal, Signal, Signal]


def test_str_body_is_measured_in_bytes() -> None:
    alert = flat_alert(Description="é" * 600_000)  # 600k characters, 1.2 MB of UTF-8
    body = json.dumps(alert, ensure_ascii=False)
    assert len(body.encode()) > MAX_EVENT_BYTES
    assert isinstance(only(decode_batch(body, parse_any)), Rejection)


def test_array_item_size_counts_utf8_bytes_not_escapes() -> None:
    small = flat_alert(SystemAlertId="accented", Description="é" * 200_000)  # ~400 kB as sent
    filler = _padded_alert("filler", 700_000)
    body = json.dumps([small, filler], ensure_ascii=False).encode()
    assert len(body) > MAX_EVENT_BYTES
    assert len(json.dumps(small, ensure_ascii=False).encode()) < MAX_EVENT_BYTES
    assert [type(o) for o in decode_batch(body, parse_any)] == [Signal, Signal]
