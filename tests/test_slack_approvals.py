"""Approve, Reject and Undo clicks through `slack_events`: who may decide, the two-person rule, races.

Incidents come from alerts posted to `defender_alerts_http` with the shipped playbooks (approvers
U000SECOPS1, U000SECOPS2 and @secops-oncall, whose members the local Slack API lists). Approved
work is read back from the `remediation-actions` queue in Azurite.
"""

from __future__ import annotations

import base64
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.storage.queue import QueueClient

import host
from expected_targets import fixture_path
from functions import wiring
from remediation.incidents import IncidentState, complete_step, start_execution, succeed
from remediation.playbooks import load_playbooks
from remediation.signals import decode_batch, parse_defender_alert
from slack_server import SlackTest
from slack_server import slack_fixture as slack_fixture  # the `slack` fixture

ADMIN_BINDING = "defender-alert-k8s-clusteradminbinding.log-analytics-row.json"
PRIVILEGED_POD: dict[str, Any] = {
    "AlertType": "K8S_PrivilegedContainer",
    "SystemAlertId": "alert-approvals-1",
    "Severity": "High",
    "StartTimeUtc": "2024-11-20T08:32:12.950321Z",
    "AzureResourceId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1",
    "Entities": [{"$id": "1", "Type": "K8s-pod", "Name": "web-1", "Namespace": {"$id": "2", "Name": "shop"}}],
}


def post_alert(body: bytes) -> str:
    host.call("defender_alerts_http", host.http_post("defender/alerts", body))
    return wiring.engine().incidents.list()[-1].id


def two_person_incident() -> str:
    return post_alert(fixture_path(ADMIN_BINDING).read_bytes())


def one_person_incident() -> str:
    return post_alert(json.dumps(PRIVILEGED_POD).encode())


def queued(slack: SlackTest) -> list[dict[str, Any]]:
    tables = slack.tables
    with QueueClient.from_connection_string(tables.connection_string, tables.queue) as queue:
        return [json.loads(base64.b64decode(m.content)) for m in queue.peek_messages(max_messages=32)]


def state(incident_id: str) -> IncidentState:
    return wiring.engine().incidents.get(incident_id).state


class TestApprove:
    def test_an_allowed_user_approves_and_exactly_one_message_is_enqueued(self, slack: SlackTest) -> None:
        incident_id = one_person_incident()
        response = slack.click("incident.approve", incident_id, user="U000SECOPS1")
        assert response.status_code == 200
        assert state(incident_id) is IncidentState.APPROVED
        assert queued(slack) == [{"incident_id": incident_id, "kind": "execute"}]
        [confirmation] = slack.ephemerals("U000SECOPS1")
        assert "approval is recorded" in confirmation

    def test_a_member_of_the_approver_group_may_approve(self, slack: SlackTest) -> None:
        incident_id = one_person_incident()
        slack.click("incident.approve", incident_id, user="U0ONCALL2")
        assert state(incident_id) is IncidentState.APPROVED
        assert len(slack.api.called("usergroups.list")) == 1

    def test_an_unauthorised_user_is_refused_ephemerally_and_nothing_changes(self, slack: SlackTest) -> None:
        incident_id = one_person_incident()
        slack.click("incident.approve", incident_id, user="U0STRANGER")
        [refusal] = slack.ephemerals("U0STRANGER")
        assert "not an approver" in refusal
        incident = wiring.engine().incidents.get(incident_id)
        assert (incident.state, incident.approvals) == (IncidentState.AWAITING_APPROVAL, ())
        assert queued(slack) == []
        assert slack.api.called("chat.update") == []

    def test_the_two_person_rule(self, slack: SlackTest) -> None:
        incident_id = two_person_incident()
        slack.click("incident.approve", incident_id, user="U000SECOPS1")
        assert state(incident_id) is IncidentState.AWAITING_APPROVAL
        assert queued(slack) == []
        slack.click("incident.approve", incident_id, user="U000SECOPS1")
        assert "already approved by you" in slack.ephemerals("U000SECOPS1")[-1]
        slack.click("incident.approve", incident_id, user="U000SECOPS2")
        assert state(incident_id) is IncidentState.APPROVED
        assert queued(slack) == [{"incident_id": incident_id, "kind": "execute"}]

    def test_the_message_shows_the_approvals_and_the_thread_audits_them(self, slack: SlackTest) -> None:
        incident_id = two_person_incident()
        slack.click("incident.approve", incident_id, user="U000SECOPS1")
        update = slack.api.called("chat.update")[-1].args
        context = next(block for block in update["blocks"] if block["type"] == "context")
        assert "1 of 2 approvals: <@U000SECOPS1>" in json.dumps(context)
        posts = slack.api.called("chat.postMessage")
        assert len([c for c in posts if "thread_ts" not in c.args]) == 1
        replies = [c.args["text"] for c in posts if c.args.get("thread_ts")]
        assert {c.args["thread_ts"] for c in posts if c.args.get("thread_ts")} == {update["ts"]}
        assert any("Approved by <@U000SECOPS1> (1 of 2 approvals)" in text for text in replies)


class TestRacesAndLateClicks:
    def test_a_double_click_of_one_user_counts_once(self, slack: SlackTest) -> None:
        incident_id = two_person_incident()
        slack.click("incident.approve", incident_id, user="U000SECOPS1")
        slack.click("incident.approve", incident_id, user="U000SECOPS1")
        assert wiring.engine().incidents.get(incident_id).approved_by == ("U000SECOPS1",)
        assert "already approved by you" in slack.ephemerals("U000SECOPS1")[-1]

    def test_two_approvers_racing_on_one_approval_one_wins_the_other_is_told(self, slack: SlackTest) -> None:
        incident_id = one_person_incident()
        wiring.slack_app()  # built before the race, as a warm worker has it
        barrier = threading.Barrier(2)

        def click(user: str) -> None:
            barrier.wait()
            slack.click("incident.approve", incident_id, user=user)

        threads = [threading.Thread(target=click, args=(user,)) for user in ("U000SECOPS1", "U000SECOPS2")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        incident = wiring.engine().incidents.get(incident_id)
        assert incident.state is IncidentState.APPROVED
        assert len(incident.approvals) == 1
        loser = "U000SECOPS2" if incident.approved_by == ("U000SECOPS1",) else "U000SECOPS1"
        assert "already approved by" in slack.ephemerals(loser)[-1]
        assert queued(slack) == [{"incident_id": incident_id, "kind": "execute"}]

    def test_a_click_on_an_expired_incident_says_so(self, slack: SlackTest) -> None:
        engine = wiring.engine()
        [signal] = decode_batch(json.dumps(PRIVILEGED_POD), parse_defender_alert)
        [plan] = load_playbooks(wiring.components().settings.playbooks_dir).match(signal)
        long_ago = datetime.now(UTC) - plan.approval.timeout - timedelta(minutes=1)
        incident, _ = engine.incidents.open_or_fold(plan=plan, signal=signal, now=long_ago)
        engine.expire_due()
        slack.click("incident.approve", incident.id, user="U000SECOPS1")
        assert "expired" in slack.ephemerals("U000SECOPS1")[-1]
        assert state(incident.id) is IncidentState.EXPIRED
        assert queued(slack) == []

    def test_a_click_after_a_rejection_says_who_rejected(self, slack: SlackTest) -> None:
        incident_id = one_person_incident()
        slack.click("incident.reject", incident_id, user="U000SECOPS2")
        assert state(incident_id) is IncidentState.REJECTED
        slack.click("incident.approve", incident_id, user="U000SECOPS1")
        assert "already rejected by U000SECOPS2" in slack.ephemerals("U000SECOPS1")[-1]
        assert queued(slack) == []


class TestUndo:
    def executed(self, slack: SlackTest, incident_id: str) -> None:
        """What the executor does (not built yet): run the one step and succeed, telling Slack."""
        engine, now = wiring.engine(), datetime.now(UTC)
        incident = engine.incidents.get(incident_id)
        incident = engine.incidents.update(incident, lambda i: start_execution(i, at=now))
        incident = engine.incidents.update(incident, lambda i: complete_step(i, step=0, at=now))
        wiring.slack_notifier().step_progress(incident, step=0, message="pod isolated")
        incident = engine.incidents.update(incident, lambda i: succeed(i, at=now))
        wiring.slack_notifier().incident_finished(incident)

    def test_an_approver_undoes_a_succeeded_incident(self, slack: SlackTest) -> None:
        incident_id = one_person_incident()
        slack.click("incident.approve", incident_id, user="U000SECOPS1")
        self.executed(slack, incident_id)
        update = slack.api.called("chat.update")[-1].args
        assert "incident.undo" in json.dumps(update["blocks"])
        slack.click("incident.undo", incident_id, user="U000SECOPS2")
        assert queued(slack)[-1] == {"incident_id": incident_id, "kind": "execute"}  # lifting isolation: approval first
        slack.click("incident.undo", incident_id, user="U000SECOPS1")  # another approver agrees
        assert queued(slack)[-1] == {"incident_id": incident_id, "kind": "undo"}
        replies = [c.args["text"] for c in slack.api.called("chat.postMessage") if c.args.get("thread_ts")]
        assert any("Undo requested by <@U000SECOPS2>" in text for text in replies)
        assert any("pod isolated" in text for text in replies)

    def test_a_stranger_may_not_undo(self, slack: SlackTest) -> None:
        incident_id = one_person_incident()
        slack.click("incident.approve", incident_id, user="U000SECOPS1")
        self.executed(slack, incident_id)
        slack.click("incident.undo", incident_id, user="U0STRANGER")
        assert "only an approver" in slack.ephemerals("U0STRANGER")[-1]
        assert [m["kind"] for m in queued(slack)] == ["execute"]

    def test_an_incident_still_awaiting_approval_cannot_be_undone(self, slack: SlackTest) -> None:
        incident_id = one_person_incident()
        slack.click("incident.undo", incident_id, user="U000SECOPS1")
        assert "only a succeeded incident can be undone" in slack.ephemerals("U000SECOPS1")[-1]
