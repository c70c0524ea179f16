"""Signals through the registered functions into incidents, decisions, timeouts and the audit trail.

Against Azurite with the shipped playbooks (or a test folder of them): the incident a real alert
opens, the two-person rule through the engine the functions built, an invalid playbook set that
handles no event and loses none, the timer's timeouts, and `remediate audit verify`.
"""

from __future__ import annotations

import base64
import json
import logging
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.functions.timer import TimerRequest
from azure.storage.queue import QueueClient

import host
from conftest import AppTables
from expected_targets import fixture_path
from functions import wiring
from remediation.cli import main as remediate
from remediation.incidents import DecisionRefused, Incident, IncidentState
from remediation.playbooks import load_playbooks
from remediation.signals import decode_batch, parse_defender_alert

ADMIN_BINDING = "defender-alert-k8s-clusteradminbinding.log-analytics-row.json"
BROKEN = Path(__file__).parent / "fixtures" / "playbooks" / "broken"


def post_alert(body: bytes) -> dict[str, Any]:
    response = host.call("defender_alerts_http", host.http_post("defender/alerts", body))
    document: dict[str, Any] = json.loads(response.get_body())
    return document


def only_incident() -> Incident:
    [incident] = wiring.engine().incidents.list()
    return incident


def queued(tables: AppTables) -> list[dict[str, Any]]:
    """The work messages on the actions queue, decoded as the Functions queue trigger decodes them."""
    with QueueClient.from_connection_string(tables.connection_string, tables.queue) as queue:
        return [json.loads(base64.b64decode(message.content)) for message in queue.peek_messages(max_messages=32)]


def alert(**changes: Any) -> bytes:
    document = json.loads(fixture_path(ADMIN_BINDING).read_bytes())
    return json.dumps({**document, **changes}).encode()


class TestIncidentsFromAlerts:
    def test_an_admin_binding_alert_opens_an_incident_awaiting_two_approvals(self, app_tables: AppTables) -> None:
        assert post_alert(alert())["accepted"] == 1
        incident = only_incident()
        assert (incident.playbook, incident.state) == ("rbac-delete-privileged-object", IncidentState.AWAITING_APPROVAL)
        [step] = incident.plan.steps
        assert step.action == "kubernetes.delete_rbac_object"
        assert (step.params["kind"], step.params["name"]) == ("ClusterRoleBinding", "dev-cluster-admin")
        assert incident.plan.approval.min_approvals == 2

    def test_the_two_person_rule_through_the_engine(self, app_tables: AppTables) -> None:
        post_alert(alert())
        engine, incident = wiring.engine(), only_incident()
        first = engine.approve(incident.id, user="U000SECOPS1")
        assert (first.state, first.approval_progress()) == (IncidentState.AWAITING_APPROVAL, "1 of 2 approvals")
        with pytest.raises(DecisionRefused, match="already approved by you"):
            engine.approve(incident.id, user="U000SECOPS1")
        with pytest.raises(DecisionRefused):
            engine.approve(incident.id, user="U0NOTLISTED")
        assert queued(app_tables) == []
        assert engine.approve(incident.id, user="U000SECOPS2").state is IncidentState.APPROVED
        assert queued(app_tables) == [{"incident_id": incident.id, "kind": "execute"}]
        kinds = [record.kind for record in engine.incidents.audit.records(incident.id)]
        assert kinds.count("approval") == 2

    def test_an_auto_playbook_goes_straight_to_the_executor_queue(self, app_tables: AppTables) -> None:
        post_alert(alert(AlertType="K8S_AdmissionController", SystemAlertId="admission-1"))
        incident = only_incident()
        assert (incident.playbook, incident.state) == ("notify-alert-facts", IncidentState.APPROVED)
        assert queued(app_tables) == [{"incident_id": incident.id, "kind": "execute"}]

    def test_a_storm_of_one_alert_folds_into_one_incident(self, app_tables: AppTables) -> None:
        bodies = [alert(SystemAlertId=f"storm-{n}") for n in range(25)]
        assert post_alert(b"[" + b",".join(bodies) + b"]")["accepted"] == 25
        assert only_incident().occurrences == 25

    def test_an_alert_without_the_binding_name_needs_input(self, app_tables: AppTables) -> None:
        post_alert(alert(ExtendedProperties=json.dumps({"subjectName": "dev-user"})))
        incident = only_incident()
        assert incident.state is IncidentState.NEEDS_INPUT
        missing = {(gap.param, gap.field) for gap in incident.plan.missing}
        assert missing == {("kind", "targets.rbac_kind"), ("name", "targets.rbac_name")}
        params = {"kind": "ClusterRoleBinding", "name": "dev-cluster-admin"}
        updated = wiring.engine().supply_input(incident.id, user="U000SECOPS1", params=params)
        assert updated.state is IncidentState.AWAITING_APPROVAL
        assert updated.plan.steps[0].params["name"] == "dev-cluster-admin"


class TestInvalidPlaybooks:
    def test_an_invalid_set_handles_no_event_and_loses_none(
        self, app_tables: AppTables, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        folder = tmp_path / "playbooks"
        shutil.copytree(Path(wiring.components().settings.playbooks_dir), folder)
        shutil.copy(BROKEN / "unknown-action.yaml", folder)
        monkeypatch.setenv("REMEDIATION_PLAYBOOKS_DIR", str(folder))
        wiring.reset()
        with pytest.raises(Exception, match="playbook error"):
            post_alert(alert())
        assert any(
            "unknown-action.yaml" in record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR
        )
        (folder / "unknown-action.yaml").unlink()
        wiring.reset()
        assert post_alert(alert())["accepted"] == 1  # the retried delivery is handled, not a duplicate
        assert only_incident().state is IncidentState.AWAITING_APPROVAL


class TestTimer:
    def test_the_timer_escalates_an_overdue_incident_once(self, app_tables: AppTables) -> None:
        engine = wiring.engine()
        [signal] = decode_batch(alert(), parse_defender_alert)
        [plan] = load_playbooks(wiring.components().settings.playbooks_dir).match(signal)
        long_ago = datetime.now(UTC) - 3 * plan.approval.timeout - timedelta(minutes=1)
        incident, _ = engine.incidents.open_or_fold(plan=plan, signal=signal, now=long_ago)
        for _ in range(2):  # the second tick finds the escalation's fresh deadline not yet due
            host.call("approval_timeouts", TimerRequest(past_due=False))
            assert engine.incidents.get(incident.id).state is IncidentState.ESCALATED
        kinds = [record.kind for record in engine.incidents.audit.records(incident.id)]
        assert kinds.count("escalation") == 1


class TestAuditVerify:
    def test_clean_then_tampered(self, app_tables: AppTables, capsys: pytest.CaptureFixture[str]) -> None:
        post_alert(alert())
        incident = only_incident()
        wiring.engine().approve(incident.id, user="U000SECOPS1")
        assert remediate(["audit", "verify"]) == 0
        assert remediate(["audit", "verify", "--incident", incident.id]) == 0
        with app_tables.client(app_tables.audit) as table:
            record = table.get_entity(incident.id, "0000000002")
            record["actor"] = "U0MALLORY"
            table.update_entity(record)
        capsys.readouterr()
        assert remediate(["audit", "verify"]) == 1
        out = capsys.readouterr().out
        assert incident.id in out
        assert "edited" in out


class TestUndoBlockers:
    def test_only_steps_whose_undo_cannot_restore_block_an_undo(self) -> None:
        from remediation.engine import undo_blockers
        from remediation.plans import ApprovalPolicy, Plan, PlannedStep

        def plan(*actions: str) -> Plan:
            return Plan(playbook="p", steps=tuple(PlannedStep(action=a) for a in actions), approval=ApprovalPolicy())

        assert (
            undo_blockers(plan("kubernetes.cordon_node", "kubernetes.scale_to_zero", "registry.quarantine_tag")) == []
        )
        assert undo_blockers(plan("kubernetes.cordon_node", "kubernetes.delete_pod")) == [
            "kubernetes.delete_pod cannot be undone"
        ]
