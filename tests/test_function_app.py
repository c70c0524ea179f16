"""The registered Functions, called with real azure.functions objects against Azurite.

Bindings are built with the Python worker's own converters from the bytes a sender posts; what
each function did is read back from the `events` table and from its structured log lines.
"""

from __future__ import annotations

import json
import logging
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import AzureError
from azure.data.tables import TableClient

import host
from conftest import AppTables
from functions import wiring
from remediation.intake import DeliveryInProgress
from remediation.settings import DECLARED
from remediation.store.events import TableEventLedger


@pytest.fixture
def events_table(app_tables: AppTables) -> Iterator[TableClient]:
    with app_tables.client(app_tables.events) as table:
        yield table


def event_ids(table: TableClient) -> list[str]:
    return sorted(entity["EventId"] for entity in table.list_entities())


def logged(caplog: pytest.LogCaptureFixture, message: str) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.getMessage().startswith(message)]


ACR_PUSH: dict[str, Any] = {
    "id": "831e1650-001e-001b-66ab-eeb76e069631",
    "topic": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/demo",
    "subject": "aci-helloworld:v1",
    "eventType": "Microsoft.ContainerRegistry.ImagePushed",
    "eventTime": "2018-04-25T21:39:47.6549614Z",
    "data": {
        "id": "31c51664-e5bd-416a-a5df-e5206bc47ed0",
        "timestamp": "2018-04-25T21:39:47.276585742Z",
        "action": "push",
        "target": {"digest": "sha256:" + "ab" * 32, "repository": "aci-helloworld", "tag": "v1"},
        "request": {"host": "demo.azurecr.io"},
    },
    "dataVersion": "1.0",
    "metadataVersion": "1",
}

FLAT_ALERT: dict[str, Any] = {
    "AlertType": "K8S_PrivilegedContainer",
    "SystemAlertId": "alert-1",
    "Severity": "High",
    "StartTimeUtc": "2024-11-20T08:32:12.950321Z",
    "AzureResourceId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1",
    "Entities": [{"$id": "1", "Type": "K8s-pod", "Name": "web-1", "Namespace": {"$id": "2", "Name": "shop"}}],
}


class TestRegistration:
    def test_every_trigger_is_registered_with_its_binding(self) -> None:
        assert set(host.registered()) == {
            "registry_events",
            "defender_alerts_eventhub",
            "defender_alerts_eventgrid",
            "defender_alerts_http",
            "approval_timeouts",
            "registry_findings",
            "remediation_executor",
            "slack_events",
            "slack_outbox",
        }
        outbox = host.bindings("slack_outbox")[0]
        assert (outbox["type"], outbox["queueName"]) == ("queueTrigger", "%SLACK_OUTBOX_QUEUE%")
        timer = host.bindings("approval_timeouts")[0]
        assert (timer["type"], timer["schedule"]) == ("timerTrigger", "0 * * * * *")
        assert host.bindings("registry_events")[0]["type"] == "eventGridTrigger"
        assert host.bindings("defender_alerts_eventgrid")[0]["type"] == "eventGridTrigger"
        retry = host.registered()["defender_alerts_eventhub"].get_setting("retry_policy").get_dict_repr()
        assert (retry["strategy"], retry["max_retry_count"]) == ("exponential_backoff", "8")
        hub = host.bindings("defender_alerts_eventhub")[0]
        assert (hub["type"], hub["cardinality"], hub["connection"]) == (
            "eventHubTrigger",
            "MANY",
            "DEFENDER_EVENTHUB",
        )
        http = host.bindings("defender_alerts_http")[0]
        assert (http["type"], http["authLevel"], http["methods"], http["route"]) == (
            "httpTrigger",
            "FUNCTION",
            ["POST"],
            "defender/alerts",
        )


class TestDedup:
    def test_an_event_delivered_three_times_is_handled_once(
        self, events_table: TableClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO)
        for _ in range(3):
            host.call("registry_events", host.event_grid_event(ACR_PUSH))
        assert event_ids(events_table) == ["registry:831e1650-001e-001b-66ab-eeb76e069631"]
        assert len(logged(caplog, "signal accepted")) == 1
        assert len(logged(caplog, "duplicate delivery")) == 2

    def test_the_same_alert_by_two_routes_is_handled_once(
        self, events_table: TableClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO)
        body = json.dumps(FLAT_ALERT).encode()
        host.call("defender_alerts_eventhub", host.event_hub_batch([body]))
        response = host.call("defender_alerts_http", host.http_post("defender/alerts", body))
        assert response.status_code == 200
        assert json.loads(response.get_body())["duplicates"] == 1
        assert event_ids(events_table) == ["defender:alert-1"]

    def test_a_delivery_claimed_elsewhere_is_retried_not_dropped(
        self, events_table: TableClient, storage_connection_string: str
    ) -> None:
        ledger = TableEventLedger.from_connection_string(storage_connection_string, table_name=events_table.table_name)
        key = "registry:" + ACR_PUSH["id"]
        assert ledger.claim(key)  # another instance is handling it right now
        with pytest.raises(DeliveryInProgress, match=ACR_PUSH["id"]):
            host.call("registry_events", host.event_grid_event(ACR_PUSH))
        ledger.complete(key)
        host.call("registry_events", host.event_grid_event(ACR_PUSH))  # now a plain duplicate

    def test_a_failure_while_handling_releases_the_claim(
        self, events_table: TableClient, app_tables: AppTables, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setenv("REMEDIATION_PLAYBOOKS_DIR", str(tmp_path / "missing"))
        wiring.reset()
        with pytest.raises(Exception, match="playbook"):
            host.call("registry_events", host.event_grid_event(ACR_PUSH))
        assert event_ids(events_table) == []


class TestBadInput:
    @pytest.mark.parametrize(
        ("body", "reason"),
        [
            (b"{not json", "not valid JSON"),
            (b"42", "must be a JSON object or array"),
            (b'"alert"', "must be a JSON object or array"),
            (b"{}", "not a Defender alert"),
            (json.dumps({**FLAT_ALERT, "Severity": 3}).encode(), "Severity must be a string"),
            (json.dumps({**FLAT_ALERT, "StartTimeUtc": "yesterday"}).encode(), "is not an ISO 8601 time"),
            (json.dumps({**FLAT_ALERT, "Entities": "[oops"}).encode(), "Entities"),
        ],
    )
    def test_http_answers_400_naming_the_problem(self, events_table: TableClient, body: bytes, reason: str) -> None:
        response = host.call("defender_alerts_http", host.http_post("defender/alerts", body))
        assert response.status_code == 400
        document = json.loads(response.get_body())
        assert document["accepted"] == 0
        assert len(document["problems"]) == 1
        assert reason in document["problems"][0]["reason"]
        assert event_ids(events_table) == []

    def test_http_takes_the_good_events_of_a_mixed_array(self, events_table: TableClient) -> None:
        second = {**FLAT_ALERT, "SystemAlertId": "alert-2"}
        body = json.dumps([FLAT_ALERT, {"AlertType": "X"}, "junk", second]).encode()
        response = host.call("defender_alerts_http", host.http_post("defender/alerts", body))
        document = json.loads(response.get_body())
        assert response.status_code == 400
        assert document["accepted"] == 2
        assert [problem["index"] for problem in document["problems"]] == [1, 2]
        assert event_ids(events_table) == ["defender:alert-1", "defender:alert-2"]

    def test_an_oversized_event_is_rejected_and_its_neighbours_kept(self, events_table: TableClient) -> None:
        huge = {**FLAT_ALERT, "SystemAlertId": "huge", "Description": "x" * (1024 * 1024)}
        body = json.dumps([huge, FLAT_ALERT]).encode()
        response = host.call("defender_alerts_http", host.http_post("defender/alerts", body))
        document = json.loads(response.get_body())
        assert (response.status_code, document["accepted"]) == (400, 1)
        assert "over the 1048576-byte limit" in document["problems"][0]["reason"]
        assert document["problems"][0]["event_id"] == "huge"

    def test_event_hub_batch_logs_each_bad_message_and_goes_on(
        self, events_table: TableClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO)
        recommendation = {"type": "Microsoft.Security/assessments", "id": "/a/1", "properties": {}}
        batch = [b"\xff\xfe", json.dumps([recommendation, FLAT_ALERT]).encode(), b"[]", b"null"]
        host.call("defender_alerts_eventhub", host.event_hub_batch(batch))
        assert event_ids(events_table) == ["defender:alert-1"]
        rejected = logged(caplog, "event rejected")
        assert len(rejected) == 2
        assert all(record.trigger == "defender_alerts_eventhub" for record in rejected)  # type: ignore[attr-defined]
        assert len(logged(caplog, "event skipped")) == 1

    def test_registry_trigger_rejects_an_unknown_event_type_without_raising(
        self, events_table: TableClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        event = {**ACR_PUSH, "eventType": "Microsoft.ContainerRegistry.ImageQuarantined"}
        host.call("registry_events", host.event_grid_event(event))
        [record] = logged(caplog, "event rejected")
        assert record.event_id == ACR_PUSH["id"]  # type: ignore[attr-defined]
        assert "not a container registry event" in record.reason  # type: ignore[attr-defined]
        assert event_ids(events_table) == []


class TestInfrastructureFailure:
    def test_unreachable_storage_raises_so_the_host_retries(self, monkeypatch: pytest.MonkeyPatch) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        monkeypatch.setenv(
            "AzureWebJobsStorage",
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
            f"TableEndpoint=http://127.0.0.1:{port}/devstoreaccount1;",
        )
        wiring.reset()
        try:
            with pytest.raises(AzureError):
                host.call("registry_events", host.event_grid_event(ACR_PUSH))
        finally:
            wiring.reset()


class TestSettings:
    def test_the_example_settings_hold_every_setting_the_app_reads(self) -> None:
        example = json.loads((Path(__file__).parent.parent / "local.settings.example.json").read_text())["Values"]
        root = Path(__file__).parent.parent
        sources = [
            path.read_text()
            for folder in ("remediation", "bot", "functions")
            for path in root.glob(f"{folder}/**/*.py")
        ]
        read = {name for source in sources for name in re.findall(r'"((?:REMEDIATION|SLACK)_[A-Z0-9_]+)"', source)}
        read |= {setting.name for setting in DECLARED}
        for name in host.registered():
            for binding in host.bindings(name):
                read |= {value.strip("%") for value in binding.values() if isinstance(value, str) and "%" in value}
                if "connection" in binding:
                    read.add(binding["connection"])
        assert read - set(example) == set()
        assert {"AzureWebJobsStorage", "REMEDIATION_KUBECONFIGS", "SLACK_BOT_TOKEN", "DEFENDER_EVENTHUB_NAME"} <= read


def test_the_findings_queue_name_is_the_one_the_push_policy_writes_to() -> None:
    from functions.registry_findings import QUEUE
    from remediation.push_policy.recheck import QUEUE as WRITTEN

    assert host.bindings("registry_findings")[0]["queueName"] == QUEUE == WRITTEN


def test_a_cold_start_imports_no_heavy_sdk() -> None:
    """`import function_app` (what the worker does at load) brings in azure.functions and our own
    modules only; the SDKs, pydantic and YAML load when the first event needs them."""
    import subprocess
    import sys

    heavy = ("kubernetes", "azure.identity", "azure.mgmt", "azure.containerregistry", "azure.data", "azure.storage",
             "azure.core", "slack_bolt", "slack_sdk", "pydantic", "yaml", "tenacity")  # fmt: skip
    code = "import sys, function_app; print('\\n'.join(sorted(sys.modules)))"
    root = Path(__file__).resolve().parents[1]
    loaded = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    modules = loaded.stdout.split()
    assert [m for m in modules if m.startswith(tuple(f"{h}." for h in heavy)) or m in heavy] == []
    assert "function_app" in modules and "functions.wiring" in modules
