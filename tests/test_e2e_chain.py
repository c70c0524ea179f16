"""The whole chain through the in-process host (tests/harness.py), with Slack against the local Slack API.

A Defender alert over HTTP and an ACR push over Event Grid each open an incident whose Slack message
asks for approval; a signed Approve click goes through `slack_events`, the work through the queue in
Azurite and the executor trigger, the change lands on kmock or the ACR TLS server, the message says
so and offers Undo, and an Undo click puts everything back. The audit chain verifies clean.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from acr_server import LOGIN_SERVER, REGISTRY_ID, AcrServer, FakeCredential
from conftest import AppTables
from functions import wiring
from harness import Chain
from harness import chain_fixture as chain_fixture  # the `chain` fixture
from kube_api import NETPOLS, NODES, PODS, KubeServer, node, pod, write_kubeconfig
from remediation.incidents import IncidentState
from slack_server import slack_fixture as slack_fixture  # the `slack` fixture

pytest_plugins = ["kube_api"]

APPROVER = "U000SECOPS1"
SECOND_APPROVER = "U000SECOPS2"
CLUSTER_ID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1"
ALERT: dict[str, Any] = {
    "AlertType": "K8S_PrivilegedContainer",
    "SystemAlertId": "alert-chain-1",
    "Severity": "High",
    "StartTimeUtc": "2024-11-20T08:32:12.950321Z",
    "AzureResourceId": CLUSTER_ID,
    "Entities": [{"$id": "1", "Type": "K8s-pod", "Name": "web-1", "Namespace": {"$id": "2", "Name": "shop"}}],
}
ISOLATION = "remediation.security/isolated"
OLD = "sha256:" + "a" * 64
LOCKED = {"read": False, "write": False, "delete": False, "list": True}


def push_event(*, event_id: str = "evt-push-1", tag: str = "latest", repository: str = "prod/api") -> dict[str, Any]:
    """An ACR ImagePushed Event Grid event (schema of tests/fixtures/samples/acr-imagepushed.eventgrid.json)."""
    return {
        "id": event_id,
        "topic": REGISTRY_ID,
        "subject": f"{repository}:{tag}",
        "eventType": "Microsoft.ContainerRegistry.ImagePushed",
        "eventTime": "2024-11-21T10:00:00.0000000Z",
        "data": {
            "id": f"data-{event_id}",
            "timestamp": "2024-11-21T10:00:00.0000000Z",
            "action": "push",
            "target": {
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "size": 3023,
                "digest": OLD,
                "length": 3023,
                "repository": repository,
                "tag": tag,
            },
            "request": {"id": "req-1", "host": LOGIN_SERVER, "method": "PUT", "useragent": "docker/27"},
        },
        "dataVersion": "2.0",
        "metadataVersion": "1",
    }


@pytest.fixture(name="cluster")
def cluster_fixture(
    kube: KubeServer, app_tables: AppTables, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> KubeServer:
    """kmock with the alert's pod, reached through a kubeconfig named by the AKS id; tiny retry bounds."""
    for name in ("n1", "n2"):
        kube.emulator.put(NODES, node(name))
    kube.emulator.put(PODS, pod("web-1", namespace="shop", node_name="n1"))
    monkeypatch.setenv(
        "REMEDIATION_KUBECONFIGS", json.dumps({CLUSTER_ID: write_kubeconfig(tmp_path / "kc", server=kube.url)})
    )
    monkeypatch.setenv("REMEDIATION_K8S_RETRY_ATTEMPTS", "3")
    monkeypatch.setenv("REMEDIATION_K8S_RETRY_MAX_SECONDS", "2")
    wiring.reset()
    return kube


@pytest.fixture(name="registry_sleeps")
def registry_sleeps_fixture() -> list[float]:
    """Every backoff of the registry handler's retries, which sleep on this list instead of the clock."""
    return []


@pytest.fixture(name="registry")
def registry_fixture(
    tmp_path: Path, app_tables: AppTables, monkeypatch: pytest.MonkeyPatch, registry_sleeps: list[float]
) -> Iterator[AcrServer]:
    """The ACR/ARM TLS server holding prod/api:latest, and the app's registry handler pointed at it."""
    with AcrServer(tmp_path) as server:
        server.push("prod/api", "latest", OLD)
        server.push("prod/api", "v1", OLD)
        use_registry_server(server, monkeypatch, sleeps=registry_sleeps)
        yield server


def use_registry_server(
    server: AcrServer, monkeypatch: pytest.MonkeyPatch, *, sleeps: list[float] | None = None
) -> None:
    """Point the app at the local TLS server through settings alone, as a sovereign cloud would be.

    ARM, Resource Graph and the ACR data plane are the server's address; requests trusts the test CA
    (REQUESTS_CA_BUNDLE, the variable requests itself reads); our registries are the real setting.
    What no setting says is handed to the composition: a credential (the managed identity has no
    local stand-in here) and a sleep that records the retries' waits instead of waiting.
    """
    monkeypatch.setenv("REMEDIATION_REGISTRIES", json.dumps({LOGIN_SERVER: REGISTRY_ID}))
    monkeypatch.setenv("AZURE_RESOURCE_MANAGER_ENDPOINT", server.url)
    monkeypatch.setenv("REMEDIATION_ACR_DATA_ENDPOINT", server.url)
    monkeypatch.setenv("REMEDIATION_TAG_INDEX_TABLE", f"tagindex{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.ca_path))
    wiring.use(credential=FakeCredential(), sleep=sleeps.append if sleeps is not None else lambda seconds: None)


def audit_verifies(capsys: pytest.CaptureFixture[str]) -> None:
    """`remediate audit verify` exits 0 and says so."""
    from remediation.cli import main

    capsys.readouterr()
    assert main(["audit", "verify"]) == 0, capsys.readouterr()


class TestDefenderAlertToUndo:
    def test_alert_slack_approve_queue_executor_kmock_undo(
        self, cluster: KubeServer, chain: Chain, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert chain.post_alert(ALERT).status_code == 200
        incident = chain.the_incident()
        assert incident.state is IncidentState.AWAITING_APPROVAL
        [post] = chain.posts()
        assert "incident.approve" in json.dumps(post.args["blocks"])
        assert chain.host.peek(chain.queue_name) == []

        chain.click("incident.approve", incident.id, user=APPROVER)
        assert chain.the_incident().state is IncidentState.APPROVED
        report = chain.run_executor()
        assert [(c.dequeue_count, c.error) for c in report.calls] == [(1, None)]
        assert chain.the_incident().state is IncidentState.SUCCEEDED
        assert cluster.emulator.get(NETPOLS, "shop", "remediation-isolate-web-1") is not None
        assert cluster.emulator.get(PODS, "shop", "web-1")["metadata"]["labels"][ISOLATION]
        assert chain.shown_text().startswith("[succeeded]")
        assert "incident.undo" in chain.buttons()

        chain.click("incident.undo", incident.id, user=APPROVER)

        chain.click("incident.undo", incident.id, user=SECOND_APPROVER)  # an undo that re-grants needs approval
        report = chain.run_executor()
        assert [json.loads(c.body)["kind"] for c in report.succeeded] == ["undo"]
        assert chain.the_incident().state is IncidentState.UNDONE
        assert cluster.emulator.get(NETPOLS, "shop", "remediation-isolate-web-1") is None
        assert ISOLATION not in cluster.emulator.get(PODS, "shop", "web-1")["metadata"]["labels"]
        assert chain.shown_text().startswith("[undone]")
        assert len(chain.posts()) == 1
        assert chain.host.peek(chain.queue_name) == []
        audit_verifies(capsys)


class TestRegistryPushToRelease:
    def test_latest_pushed_to_prod_is_locked_then_released_exactly(
        self, registry: AcrServer, chain: Chain, capsys: pytest.CaptureFixture[str]
    ) -> None:
        registry.manifest("prod/api", OLD).attrs["list"] = False  # not all-default: the release must keep it
        before = registry.snapshot()
        chain.host.event_grid("registry_events", [push_event()])
        incident = chain.the_incident()
        assert (incident.playbook, incident.state) == (
            "registry-quarantine-latest-in-prod",
            IncidentState.AWAITING_APPROVAL,
        )
        assert incident.previews[0]["target"]["version"] == OLD
        assert len(chain.posts()) == 1

        chain.click("incident.approve", incident.id, user=APPROVER)
        chain.run_executor()
        assert chain.the_incident().state is IncidentState.SUCCEEDED
        assert registry.tag("prod/api", "latest").attrs == {
            "read": False,
            "write": False,
            "delete": False,
            "list": True,
        }
        assert registry.manifest("prod/api", OLD).attrs["read"] is False
        assert chain.shown_text().startswith("[succeeded]")

        chain.click("incident.undo", incident.id, user=APPROVER)

        chain.click("incident.undo", incident.id, user=SECOND_APPROVER)  # an undo that re-grants needs approval
        chain.run_executor()
        assert chain.the_incident().state is IncidentState.UNDONE
        assert registry.snapshot() == before
        assert chain.shown_text().startswith("[undone]")
        audit_verifies(capsys)

    def test_a_push_of_a_release_tag_opens_nothing(self, registry: AcrServer, chain: Chain) -> None:
        chain.host.event_grid("registry_events", [push_event(tag="v2")])
        assert wiring.engine().incidents.list() == []
        assert chain.posts() == []
