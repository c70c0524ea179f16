"""Push policy: tag overwrites (tag index on Azurite), push rules, Defender findings and their delayed re-checks."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.storage.queue import BinaryBase64DecodePolicy, QueueClient

import host
from acr_server import LOGIN_SERVER, REGISTRY_ID, AcrServer, FakeCredential, endpoints
from conftest import AppTables
from remediation.actions.container_registry import RegistryClients
from remediation.push_policy import (
    IMAGE_SCANNED,
    FindingsRecheck,
    PushPolicy,
    PushRules,
    Recheck,
    RecheckQueue,
    ResourceGraphFindings,
    TableTagIndex,
)
from remediation.retry import RetryPolicy
from remediation.settings import Settings
from remediation.signals import parse_registry_event
from remediation.signals.model import Signal

OLD = "sha256:" + "a" * 64
NEW = "sha256:" + "b" * 64
SAMPLE = json.loads(Path("/work/shared/samples/mdvm-acr-image-cve.arg-subassessment.json").read_text())[0]


def push(tag: str, digest: str, *, repo: str = "prod/api", actor: str = "ci-bot", minute: int = 0) -> Signal:
    event = {
        "id": str(uuid.uuid4()),
        "topic": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myreg",
        "subject": f"{repo}:{tag}",
        "eventType": "Microsoft.ContainerRegistry.ImagePushed",
        "eventTime": f"2024-11-21T10:{minute:02d}:00Z",
        "dataVersion": "1.0",
        "data": {
            "id": "x",
            "timestamp": "2024-11-21T10:00:00Z",
            "action": "push",
            "target": {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 1,
                       "digest": digest, "repository": repo, "tag": tag},
            "request": {"id": "r", "host": LOGIN_SERVER, "method": "PUT", "useragent": "docker"},
            "actor": {"name": actor},
        },
    }  # fmt: skip
    signal = parse_registry_event(event)
    assert isinstance(signal, Signal)
    return signal


@pytest.fixture
def index(storage_connection_string: str) -> Iterator[TableTagIndex]:
    tags = TableTagIndex.from_connection_string(storage_connection_string, table_name=f"tagindex{uuid.uuid4().hex[:8]}")
    yield tags
    tags.close()


@pytest.fixture
def queue_name() -> str:
    return f"registry-findings-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def recheck_queue(storage_connection_string: str, queue_name: str) -> RecheckQueue:
    return RecheckQueue.from_connection_string(storage_connection_string, queue_name=queue_name, delays=(120, 300))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[AcrServer]:
    with AcrServer(tmp_path) as acr:
        yield acr


@pytest.fixture
def findings(server: AcrServer) -> ResourceGraphFindings:
    clients = RegistryClients(credential=FakeCredential(), endpoints=endpoints(server))
    return ResourceGraphFindings(clients=clients, subscriptions=["sub-1"], retry=RetryPolicy(sleep=lambda s: None))


def finding(severity: str, *, fix: str = "FixAvailable", cause: str = "", code: str = "Unhealthy") -> dict[str, Any]:
    row = copy.deepcopy(SAMPLE)
    row["properties"]["additionalData"]["artifactDetails"]["digest"] = NEW
    row["properties"]["additionalData"]["vulnerabilityDetails"]["severity"] = severity
    row["properties"]["additionalData"]["softwareDetails"]["fixStatus"] = fix
    row["properties"]["status"] = {"code": code, "cause": cause, "severity": severity}
    return row


class TestTagOverwrite:
    def test_a_push_that_moves_a_tag_carries_the_previous_digest(self, index: TableTagIndex) -> None:
        policy = PushPolicy(tag_index=index)
        first = policy.enrich(push("v1", OLD, minute=0))
        second = push("v1", NEW, minute=1)
        enriched = policy.enrich(second)
        assert "overwritten_digest" not in first.extended_properties
        assert enriched.extended_properties == {"overwritten_digest": OLD}
        assert policy.enrich(second).extended_properties == {"overwritten_digest": OLD}  # a retry: same answer
        assert policy.enrich(push("v1", NEW, minute=2)).extended_properties == {}  # same digest again

    def test_a_late_older_push_does_not_move_the_tag_back(self, index: TableTagIndex) -> None:
        policy = PushPolicy(tag_index=index)
        policy.enrich(push("v1", NEW, minute=5))
        assert policy.enrich(push("v1", OLD, minute=1)).extended_properties == {}
        assert policy.enrich(push("v1", OLD, minute=6)).extended_properties == {"overwritten_digest": NEW}

    def test_two_racing_pushes_each_see_what_they_replaced(self, index: TableTagIndex) -> None:
        index.record_push(registry=LOGIN_SERVER, repository="r", tag="t", digest=OLD, event_id="e0",
                          time=push("t", OLD).time)  # fmt: skip
        answers = [
            index.record_push(
                registry=LOGIN_SERVER, repository="r", tag="t", digest=d, event_id=e, time=push("t", d, minute=m).time
            )
            for d, e, m in ((NEW, "e1", 1), ("sha256:" + "c" * 64, "e2", 2))
        ]
        assert answers == [OLD, NEW]

    def test_a_deleted_image_leaves_the_index(self, index: TableTagIndex) -> None:
        index.record_push(
            registry=LOGIN_SERVER, repository="r", tag="t", digest=OLD, event_id="e", time=push("t", OLD).time
        )
        assert index.record_delete(registry=LOGIN_SERVER, repository="r", digest=OLD, tag=None) == 1
        assert index.record_push(registry=LOGIN_SERVER, repository="r", tag="t", digest=NEW, event_id="f",
                                 time=push("t", NEW).time) is None  # fmt: skip

    def test_non_registry_and_foreign_signals_pass_untouched(self, index: TableTagIndex) -> None:
        policy = PushPolicy(tag_index=index, is_ours=lambda login: False)
        signal = push("latest", OLD)
        assert policy.enrich(signal) is signal


class TestRules:
    def test_disallowed_tags_and_pushers_off_the_allow_list_are_marked(self, index: TableTagIndex) -> None:
        registry = Settings.from_env({
            "REMEDIATION_DISALLOWED_TAGS": '{"prod/*": ["latest"]}',
            "REMEDIATION_PUSHER_ALLOWLIST": '{"prod/*": ["ci-bot"]}',
        }, require_storage=False).registry  # fmt: skip
        rules = PushRules(disallowed_tags=registry.disallowed_tags, pusher_allowlist=registry.pusher_allowlist)
        policy = PushPolicy(tag_index=index, rules=rules)
        assert policy.enrich(push("latest", OLD, actor="mallory")).extended_properties == {
            "disallowed_tag": "true", "pusher_not_allowed": "true",
        }  # fmt: skip
        assert policy.enrich(push("1.2.3", OLD, actor="ci-bot")).extended_properties == {}
        assert policy.enrich(push("latest", NEW, repo="dev/api", actor="mallory")).extended_properties == {}

    def test_a_malformed_setting_is_named(self) -> None:
        with pytest.raises(ValueError, match="REMEDIATION_PUSHER_ALLOWLIST"):
            Settings.from_env({"REMEDIATION_PUSHER_ALLOWLIST": '["ci-bot"]'}, require_storage=False)


class TestFindings:
    def test_counts_by_severity_and_fix_from_the_sample_shape(
        self, findings: ResourceGraphFindings, server: AcrServer
    ) -> None:
        server.findings = [finding("Critical"), finding("High", fix="NoFixAvailable"), finding("High"), finding("Low")]
        server.findings.append(finding("Critical", cause="Exempt", code="NotApplicable"))
        summary = findings.lookup(digest=NEW)
        assert summary is not None and summary.properties() == {
            "vulnerabilities_critical": "1", "vulnerabilities_high": "2", "vulnerabilities_medium": "0",
            "vulnerabilities_low": "1", "vulnerabilities_exempt": "1", "fix_available": "true", "findings": "ready",
        }  # fmt: skip
        (request,) = server.calls(method="POST", prefix="/providers/Microsoft.ResourceGraph")
        assert request.query == {"api-version": "2021-03-01"} and request.body["subscriptions"] == ["sub-1"]
        assert "c0b7cfc6-3172-465a-b378-53c7ff2cc0d5" in request.body["query"]
        assert f"artifactDetails.digest == '{NEW}'" in request.body["query"]

    def test_the_published_sample_is_an_exempt_high(self, findings: ResourceGraphFindings, server: AcrServer) -> None:
        server.findings = [SAMPLE]
        summary = findings.lookup(digest=SAMPLE["properties"]["additionalData"]["artifactDetails"]["digest"])
        assert summary is not None and (summary.high, summary.exempt, summary.fix_available) == (0, 1, False)

    def test_no_findings_yet_marks_pending_and_schedules_a_delayed_recheck(
        self, index: TableTagIndex, findings: ResourceGraphFindings, recheck_queue: RecheckQueue,
        storage_connection_string: str, queue_name: str,
    ) -> None:  # fmt: skip
        policy = PushPolicy(tag_index=index, findings=findings, recheck=recheck_queue)
        signal = push("v2", NEW)
        assert policy.enrich(signal).extended_properties == {"findings": "pending"}
        queue = QueueClient.from_connection_string(
            storage_connection_string, queue_name, message_decode_policy=BinaryBase64DecodePolicy()
        )
        assert list(queue.receive_messages()) == []  # invisible: delayed
        assert list(queue.peek_messages()) == []  # peek skips invisible messages too
        assert queue.get_queue_properties().approximate_message_count == 1
        assert Recheck(signal.id, LOGIN_SERVER, "prod/api", NEW, tag="v2", actor="ci-bot").attempt == 1


class TestRecheck:
    def test_a_recheck_with_findings_becomes_an_image_scanned_signal(
        self, findings: ResourceGraphFindings, recheck_queue: RecheckQueue, server: AcrServer
    ) -> None:
        server.findings = [finding("Critical")]
        recheck = FindingsRecheck(findings=findings, queue=recheck_queue)
        signal = recheck.run(Recheck("registry:evt-1", LOGIN_SERVER, "prod/api", NEW, tag="v2"))
        assert signal is not None and signal.type == IMAGE_SCANNED and signal.id == "registry:evt-1:findings"
        assert signal.extended_properties["vulnerabilities_critical"] == "1"
        assert signal.targets.image == f"{LOGIN_SERVER}/prod/api:v2" and signal.severity.label == "critical"

    def test_rechecks_are_delayed_and_bounded(
        self, findings: ResourceGraphFindings, storage_connection_string: str, queue_name: str
    ) -> None:
        sent: list[tuple[str, int]] = []

        class Recorder:
            def send_message(self, content: bytes, *, visibility_timeout: int) -> None:
                sent.append((json.loads(content)["attempt"], visibility_timeout))

        queue = RecheckQueue(queue=Recorder(), delays=(120, 300))  # type: ignore[arg-type]
        recheck = FindingsRecheck(findings=findings, queue=queue)
        message = Recheck("registry:evt-2", LOGIN_SERVER, "prod/api", NEW)
        assert queue.schedule(message)
        assert recheck.run(message) is None
        assert recheck.run(Recheck("registry:evt-2", LOGIN_SERVER, "prod/api", NEW, attempt=2)) is None
        assert sent == [(1, 120), (2, 300)]  # attempt 3 is never sent

    def test_the_queue_trigger_hands_the_signal_to_intake(
        self, monkeypatch: pytest.MonkeyPatch, server: AcrServer, app_tables: AppTables
    ) -> None:
        from functions import wiring

        server.findings = [finding("High")]
        # Resource Graph is the local TLS server, through settings alone; the credential is handed in.
        with monkeypatch.context() as patch:
            patch.setenv("AZURE_RESOURCE_MANAGER_ENDPOINT", server.url)
            patch.setenv("REQUESTS_CA_BUNDLE", str(server.ca_path))
            patch.setenv("REMEDIATION_REGISTRIES", json.dumps({LOGIN_SERVER: REGISTRY_ID}))
            wiring.use(credential=FakeCredential())
            body = Recheck("registry:evt-3", LOGIN_SERVER, "prod/api", NEW).to_text().encode()
            host.call("registry_findings", func.QueueMessage(id="m1", body=body))
            host.call("registry_findings", func.QueueMessage(id="m2", body=b"not json"))  # dropped, not raised
        with app_tables.client(app_tables.events) as table:
            assert [row["EventId"] for row in table.list_entities()] == ["registry:evt-3:findings"]
