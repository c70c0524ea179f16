"""The documented outcome of normalising every fixture in `tests/fixtures/`.

`EXPECTED` maps a fixture's path relative to `tests/fixtures/` (e.g. `"samples/acr-imagepushed.eventgrid.json"`)
to the list of outcomes, in order, that `decode_batch(<the file's bytes>, parse_any)` yields for it: one
per event, so an array body has one entry per item and an object body has exactly one. Each outcome is a
plain dict with an `"outcome"` key:

- `"signal"`: `source` (`"registry"`/`"defender"`), `type`, `id` (the dedup key), `severity` (the label,
  e.g. `"high"`), `time` (the Signal's time as `datetime.isoformat()`, always UTC) and `targets`, a dict
  of every non-null `Targets` field; every `Targets` field not listed there must be None.
- `"skip"`: `kind` and `event_id` of the Skip.
- `"rejection"`: `reason`, a substring of the Rejection's reason, plus its `event_id` and `index`
  (`index` is set only for items of an array body).

The table is plain data so that other tests can replay each fixture through the real entry points.
It also holds, outcome for outcome, for the parser each entry point uses: `parse_registry_event` for the
`samples/acr-*` fixtures, `parse_defender_alert` for every other one (test_signals.py checks this).
Through the Functions Event Grid trigger, note that the `samples/acr-chartdeleted.*` envelope time
(`019-03-12...`) is parsed by azure.functions itself before our code runs, and it raises there.
Fixtures named in `NOT_EVENTS` are not event deliveries at all (Slack payloads, the reply to an Event
Grid validation, a wrapper of a signed Slack request); their entry here records what the event parser
says if one is posted to an event endpoint anyway. Fixtures of the same event in two envelopes (the ACR
`.eventgrid`/`.cloudevents` pairs, the Event Grid and CloudEvent PrivilegedContainer alerts) carry the
same `id`: one ledger sees the second as a duplicate delivery.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

FIXTURES_DIR: Final = Path(__file__).resolve().parent / "fixtures"

# Values shared by several fixtures.
_ACR_TOPIC = (
    "/subscriptions/<subscription-id>/resourceGroups/<resource-group-name>"
    "/providers/Microsoft.ContainerRegistry/registries/<name>"
)
_ACR_IMAGE_DIGEST = "sha256:213bbc182920ab41e18edc2001e06abcca6735d87782d9cef68abd83941cf0e5"
_ACR_CHART_DIGEST = "sha256:7f060075264b5ba7c14c23672698152ae6a3ebac1c47916e4efe19cd624d5fab"
_SUMO_CLUSTER = (
    "/subscriptions/1111111-1111-1111-111-11111111/resourceGroups/qek8dm0-azure-k8stest"
    "/providers/Microsoft.ContainerService/managedClusters/k8s--295-aks1-28-otc-dev-v4"
)
_CLUSTER = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-aks-prod"
    "/providers/Microsoft.ContainerService/managedClusters/aks-prod-weu"
)
_MINER_DIGEST = "sha256:60cc59004e8e9bfdbfad641fd5dc34b9a0c67345768ba5d5d957214b686f4fcb"
_NOT_AN_ALERT = "not a Defender alert: no alertType/AlertType or systemAlertId/SystemAlertId"
# What `parse_any` (the CLI's simulate, which takes any source) says of the same documents.
_NOT_AN_EVENT = "not an event this app reads (known sources: registry, defender)"


def _image_pushed() -> dict[str, Any]:
    return {
        "outcome": "signal",
        "source": "registry",
        "type": "Microsoft.ContainerRegistry.ImagePushed",
        "id": "registry:831e1650-001e-001b-66ab-eeb76e069631",
        "severity": "informational",
        "time": "2018-04-25T21:39:47.654961+00:00",
        "targets": {
            "registry_login_server": "demo.azurecr.io",
            "registry_resource_id": _ACR_TOPIC,
            "repository": "aci-helloworld",
            "tag": "v1",
            "digest": _ACR_IMAGE_DIGEST,
            "image": "demo.azurecr.io/aci-helloworld:v1",
        },
    }


def _image_deleted() -> dict[str, Any]:
    return {
        "outcome": "signal",
        "source": "registry",
        "type": "Microsoft.ContainerRegistry.ImageDeleted",
        "id": "registry:f06e3921-301f-42ec-b368-212f7d5354bd",
        "severity": "informational",
        "time": "2018-04-26T17:56:01.821126+00:00",
        "targets": {
            "registry_login_server": "demo.azurecr.io",
            "registry_resource_id": _ACR_TOPIC,
            "repository": "aci-helloworld",
            "digest": _ACR_IMAGE_DIGEST,
            "image": f"demo.azurecr.io/aci-helloworld@{_ACR_IMAGE_DIGEST}",
        },
    }


def _chart(event: str, event_id: str, time: str) -> dict[str, Any]:
    # Chart events carry no `request`, so no login server; the chart file name reads as the tag.
    return {
        "outcome": "signal",
        "source": "registry",
        "type": f"Microsoft.ContainerRegistry.{event}",
        "id": f"registry:{event_id}",
        "severity": "informational",
        "time": time,
        "targets": {
            "registry_resource_id": _ACR_TOPIC,
            "repository": "repo",
            "tag": "mychart-1.0.0.tgz",
            "digest": _ACR_CHART_DIGEST,
        },
    }


def _chart_deleted() -> dict[str, Any]:
    # The envelope time is `019-03-12T22:42:08.7034064Z`: the time falls back to data.timestamp.
    return _chart("ChartDeleted", "39136b3a-1a7e-416f-a09e-5c85d5402fca", "2019-03-12T22:42:08.378377+00:00")


def _chart_pushed() -> dict[str, Any]:
    return _chart("ChartPushed", "ea3a9c28-5b17-40f6-a500-3f02b6829277", "2019-03-12T22:16:31.516408+00:00")


def _privileged_container() -> dict[str, Any]:
    return {
        "outcome": "signal",
        "source": "defender",
        "type": "K8S_PrivilegedContainer",
        "id": "defender:2517538088322968242_beeb9d79-1f73-4aa7-bd58-91e484e27a5e",
        "severity": "low",
        "time": "2024-11-24T08:00:00.123456+00:00",
        "targets": {
            "registry_login_server": "myregistry.azurecr.io",
            "repository": "tools/netshoot",
            "tag": "v0.11",
            "cluster_resource_id": _CLUSTER,
            "namespace": "ops",
            "pod": "debug-7c9f8d6b5-abcde",
            "container": "netshoot",
            "image": "myregistry.azurecr.io/tools/netshoot:v0.11",
        },
    }


EXPECTED: Final[dict[str, list[dict[str, Any]]]] = {
    # --- published samples (tests/fixtures/samples/, see SOURCES.md) ---
    "samples/acr-imagepushed.eventgrid.json": [_image_pushed()],  # dataVersion 2.0
    "samples/acr-imagepushed.cloudevents.json": [_image_pushed()],
    "samples/acr-imagedeleted.eventgrid.json": [_image_deleted()],  # short eventType `ImageDeleted`
    "samples/acr-imagedeleted.cloudevents.json": [_image_deleted()],
    "samples/acr-chartpushed.eventgrid.json": [_chart_pushed()],
    "samples/acr-chartpushed.cloudevents.json": [_chart_pushed()],
    "samples/acr-chartdeleted.eventgrid.json": [_chart_deleted()],
    "samples/acr-chartdeleted.cloudevents.json": [_chart_deleted()],
    "samples/defender-alert-k8s-admissioncontroller.continuous-export-eventhub.json": [
        {
            "outcome": "signal",
            "source": "defender",
            "type": "K8S_AdmissionController",
            "id": "defender:57963b4b-3cb0-dc3a-16ed-f1e216311809",
            "severity": "informational",
            "time": "2024-11-20T08:32:12.950321+00:00",
            "targets": {"cluster_resource_id": _SUMO_CLUSTER},
        }
    ],
    "samples/defender-alert.rest-api-2022-01-01.json": [
        {
            "outcome": "signal",
            "source": "defender",
            "type": "VM_EICAR",
            "id": "defender:2518298467986649999_4d25bfef-2d77-4a08-adc0-3e35715cc92a",
            "severity": "high",
            "time": "2020-02-22T00:00:00+00:00",
            "targets": {},  # a VM alert: nothing AKS or ACR to point at
        }
    ],
    "samples/eventgrid-deadletter.eventgrid.json": [
        {
            "outcome": "rejection",
            "reason": f"event 'Microsoft.Storage.BlobCreated': {_NOT_AN_ALERT}",
            "any_source_reason": _NOT_AN_EVENT,
            "event_id": "93902694-901e-008f-6f95-7153a806873c",
            "index": None,
        }
    ],
    "samples/eventgrid-subscriptionvalidation.request.eventgrid.json": [
        {
            "outcome": "skip",
            "kind": "Microsoft.EventGrid.SubscriptionValidationEvent",
            "event_id": "2d1781af-3a4c-4d7c-bd0c-e34b19da4e66",
        }
    ],
    "samples/eventgrid-subscriptionvalidation.response.json": [
        {
            "outcome": "rejection",
            "reason": _NOT_AN_ALERT,
            "any_source_reason": _NOT_AN_EVENT,
            "event_id": None,
            "index": None,
        }
    ],
    "samples/mdvm-acr-image-cve.arg-subassessment.json": [
        {
            "outcome": "skip",
            "kind": "microsoft.security/assessments/subassessments",
            "event_id": "/subscriptions/{SubscriptionId}/resourceGroups/{ResourceGroup}/providers"
            "/Microsoft.ContainerRegistry/registries/{Registry Name}/providers/Microsoft.Security/assessments"
            "/c0b7cfc6-3172-465a-b378-53c7ff2cc0d5/subassessments/{SubAssessmentId}",
        }
    ],
    "samples/slack-block_actions.interaction-payload.json": [
        {
            "outcome": "rejection",
            "reason": _NOT_AN_ALERT,
            "any_source_reason": _NOT_AN_EVENT,
            "event_id": None,
            "index": None,
        }
    ],
    "samples/slack-view_submission.interaction-payload.json": [
        {
            "outcome": "rejection",
            "reason": _NOT_AN_ALERT,
            "any_source_reason": _NOT_AN_EVENT,
            "event_id": None,
            "index": None,
        }
    ],
    "samples/slack-slash-command.signed-request.json": [
        {
            "outcome": "rejection",
            "reason": _NOT_AN_ALERT,
            "any_source_reason": _NOT_AN_EVENT,
            "event_id": None,
            "index": None,
        }
    ],
    # --- hand-made fixtures (tests/fixtures/, see README.md) ---
    "defender-alert-k8s-clusteradminbinding.log-analytics-row.json": [
        {
            "outcome": "signal",
            "source": "defender",
            "type": "K8S_ClusterAdminBinding",
            "id": "defender:2517538088322968242_8812f7c0-8c0f-4c63-af39-1a9fe5615bb7",
            "severity": "high",
            "time": "2024-11-21T10:05:07.500000+00:00",  # StartTime, not TimeGenerated
            "targets": {
                "cluster_resource_id": _CLUSTER,
                "rbac_kind": "ClusterRoleBinding",
                "rbac_name": "dev-cluster-admin",
            },
        }
    ],
    "defender-alert-k8s-node-digitalcurrencymining.continuous-export.json": [
        {
            "outcome": "signal",
            "source": "defender",
            "type": "K8S.NODE_DigitalCurrencyMining",
            "id": "defender:2517538088322968242_af74f768-4859-4cb9-92a4-2653a498d389",
            "severity": "high",
            "time": "2024-11-22T03:14:15.926535+00:00",
            "targets": {
                "registry_login_server": "myregistry.azurecr.io",
                "repository": "miner/xmrig",
                "tag": "1.0",
                "digest": _MINER_DIGEST,
                "cluster_resource_id": _CLUSTER,
                "namespace": "crypto",
                "pod": "miner-7d9c6b5f4-x2x9q",
                "container": "xmrig",
                "image": f"myregistry.azurecr.io/miner/xmrig:1.0@{_MINER_DIGEST}",
                "node": "aks-nodepool1-12345678-vmss000000",
            },
        }
    ],
    "defender-continuous-export.eventhub-batch.json": [
        {
            "outcome": "skip",
            "kind": "Microsoft.Security/assessments",
            "event_id": f"{_CLUSTER}/providers/Microsoft.Security/assessments/ddc2a289-476d-415f-bfff-c585dc626bd1",
        },
        {
            "outcome": "signal",
            "source": "defender",
            "type": "K8S_SensitiveMount",
            "id": "defender:2517538088322968242_c813e136-2073-40fa-9687-f7508d2f6f70",
            "severity": "medium",
            "time": "2024-11-23T12:00:00+00:00",
            "targets": {
                # `container {ContainerId, Image}`: no Name, so no container target.
                "registry_login_server": "docker.io",
                "repository": "library/nginx",
                "tag": "1.25.3",
                "cluster_resource_id": _CLUSTER,
                "namespace": "default",
                "pod": "hostpath-debug",
                "image": "docker.io/library/nginx:1.25.3",
            },
        },
        {
            "outcome": "skip",
            "kind": "Microsoft.Security/assessments/subAssessments",
            "event_id": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-registry"
            "/providers/Microsoft.ContainerRegistry/registries/myregistry/providers/Microsoft.Security"
            "/assessments/c0b7cfc6-3172-465a-b378-53c7ff2cc0d5/subAssessments/62acb7b3-a8fe-45db-b2ae-30c27476c708",
        },
    ],
    "defender-alert-k8s-privilegedcontainer.eventgrid-customtopic.json": [_privileged_container()],
    "defender-alert-k8s-privilegedcontainer.cloudevent.json": [_privileged_container()],
}

NOT_EVENTS: Final[frozenset[str]] = frozenset(
    {
        "samples/eventgrid-subscriptionvalidation.response.json",
        "samples/slack-block_actions.interaction-payload.json",
        "samples/slack-view_submission.interaction-payload.json",
        "samples/slack-slash-command.signed-request.json",
    }
)
"""Fixtures that are not event deliveries (see the module docstring)."""


def fixture_path(name: str) -> Path:
    """The file of an `EXPECTED` key."""
    return FIXTURES_DIR / name
