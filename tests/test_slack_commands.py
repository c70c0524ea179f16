"""`/remediate`, the input modal and App Home, through `slack_events` with signed requests."""

from __future__ import annotations

import json
from typing import Any

import host
from expected_targets import fixture_path
from functions import wiring
from remediation.incidents import IncidentState
from slack_server import SlackTest
from slack_server import slack_fixture as slack_fixture  # the `slack` fixture

ADMIN_BINDING = "defender-alert-k8s-clusteradminbinding.log-analytics-row.json"
CLUSTER = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1"


def admin_binding(**changes: Any) -> bytes:
    return json.dumps({**json.loads(fixture_path(ADMIN_BINDING).read_bytes()), **changes}).encode()


def post_alert(body: bytes) -> str:
    host.call("defender_alerts_http", host.http_post("defender/alerts", body))
    return wiring.engine().incidents.list()[-1].id


def answer(response: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(response.get_body())
    return document


def submission(incident_id: str, values: dict[str, str], *, user: str) -> dict[str, Any]:
    """A view_submission shaped like samples/slack-view_submission.interaction-payload.json."""
    state = {f"param:{name}": {"value": {"type": "plain_text_input", "value": value}} for name, value in values.items()}
    return {
        "type": "view_submission",
        "team": {"id": "T111", "domain": "workspace-domain"},
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": "T111"},
        "api_app_id": "A111",
        "token": "verification_token",
        "trigger_id": "111.222.valid",
        "view": {
            "id": "V111",
            "team_id": "T111",
            "type": "modal",
            "callback_id": "incident.input.submit",
            "private_metadata": incident_id,
            "state": {"values": state},
            "hash": "1596530361.3wRYuk3R",
        },
        "response_urls": [],
    }


class TestInputModal:
    def needs_input(self) -> str:
        incident_id = post_alert(admin_binding(ExtendedProperties=json.dumps({"subjectName": "dev-user"})))
        assert wiring.engine().incidents.get(incident_id).state is IncidentState.NEEDS_INPUT
        return incident_id

    def test_provide_input_opens_a_modal_with_one_input_per_missing_parameter(self, slack: SlackTest) -> None:
        incident_id = self.needs_input()
        slack.click("incident.input", incident_id, user="U000SECOPS1")
        [call] = slack.api.called("views.open")
        assert call.args["trigger_id"] == "111.222.valid"
        view = call.args["view"]
        assert view["private_metadata"] == incident_id
        assert [b["block_id"] for b in view["blocks"] if b["type"] == "input"] == ["param:kind", "param:name"]

    def test_an_invalid_value_is_refused_naming_the_field(self, slack: SlackTest) -> None:
        incident_id = self.needs_input()
        values = {"kind": "Pod", "name": "dev-cluster-admin"}
        response = slack.interact(submission(incident_id, values, user="U000SECOPS1"))
        document = answer(response)
        assert document["response_action"] == "errors"
        assert set(document["errors"]) == {"param:kind"}
        assert wiring.engine().incidents.get(incident_id).state is IncidentState.NEEDS_INPUT

    def test_a_valid_submission_supplies_the_input(self, slack: SlackTest) -> None:
        incident_id = self.needs_input()
        values = {"kind": "ClusterRoleBinding", "name": "dev-cluster-admin"}
        response = slack.interact(submission(incident_id, values, user="U000SECOPS1"))
        assert (response.status_code, response.get_body()) == (200, b"")
        incident = wiring.engine().incidents.get(incident_id)
        assert incident.state is IncidentState.AWAITING_APPROVAL
        assert incident.plan.steps[0].params["name"] == "dev-cluster-admin"
        replies = [c.args["text"] for c in slack.api.called("chat.postMessage") if c.args.get("thread_ts")]
        assert any("Input supplied" in text for text in replies)

    def test_a_missing_value_is_required(self, slack: SlackTest) -> None:
        incident_id = self.needs_input()
        document = answer(slack.interact(submission(incident_id, {"kind": "ClusterRoleBinding"}, user="U000SECOPS1")))
        assert document["errors"] == {"param:name": "required"}


class TestSlashCommand:
    def test_help(self, slack: SlackTest) -> None:
        document = answer(slack.command("help", user="U000SECOPS1"))
        assert document["response_type"] == "ephemeral"
        assert "run PLAYBOOK" in document["text"]

    def test_list_and_show(self, slack: SlackTest) -> None:
        incident_id = post_alert(admin_binding())
        assert incident_id in answer(slack.command("list", user="U000SECOPS1"))["text"]
        shown = answer(slack.command(f"show {incident_id}", user="U000SECOPS1"))
        assert "kubernetes.delete_rbac_object" in json.dumps(shown["blocks"])
        assert "no incident" in answer(slack.command("show inc-nope", user="U000SECOPS1"))["text"]

    def test_a_manual_run_cannot_be_approved_by_its_requester(self, slack: SlackTest) -> None:
        text = f"run pod-isolate cluster_resource_id={CLUSTER} namespace=shop pod=web-1"
        document = answer(slack.command(text, user="U000SECOPS1"))
        assert "Opened" in document["text"]
        [incident] = wiring.engine().incidents.list()
        assert (incident.requester, incident.state) == ("U000SECOPS1", IncidentState.AWAITING_APPROVAL)
        assert incident.plan.steps[0].params == {"cluster": CLUSTER, "namespace": "shop", "pod": "web-1"}
        slack.click("incident.approve", incident.id, user="U000SECOPS1")
        assert "you requested this run" in slack.ephemerals("U000SECOPS1")[-1]
        slack.click("incident.approve", incident.id, user="U000SECOPS2")
        assert wiring.engine().incidents.get(incident.id).state is IncidentState.APPROVED

    def test_run_refuses_unknown_playbooks_and_fields(self, slack: SlackTest) -> None:
        assert "no playbook" in answer(slack.command("run nope", user="U1"))["text"]
        assert "Unknown target" in answer(slack.command("run pod-isolate colour=red", user="U1"))["text"]
        assert wiring.engine().incidents.list() == []

    def test_simulate_plans_a_pasted_event_and_stores_nothing(self, slack: SlackTest) -> None:
        text = "simulate " + admin_binding().decode()
        document = answer(slack.command(text, user="U000SECOPS1"))
        assert "rbac-delete-privileged-object" in document["text"]
        assert "kubernetes.delete_rbac_object" in document["text"]
        assert wiring.engine().incidents.list() == []
        assert "rejected" in answer(slack.command("simulate {not json", user="U1"))["text"]

    def test_undo_of_an_unknown_incident(self, slack: SlackTest) -> None:
        assert "no incident" in answer(slack.command("undo inc-nope", user="U000SECOPS1"))["text"]


class TestAppHome:
    def test_app_home_lists_open_incidents_and_last_decisions(self, slack: SlackTest) -> None:
        incident_id = post_alert(admin_binding())
        slack.click("incident.approve", incident_id, user="U000SECOPS1")
        event = {
            "token": "verification_token",
            "team_id": "T111",
            "api_app_id": "A111",
            "type": "event_callback",
            "event_id": "Ev111",
            "event_time": 1700000000,
            "event": {"type": "app_home_opened", "user": "U000SECOPS1", "channel": "D111", "tab": "home"},
        }
        response = slack.post(json.dumps(event).encode(), content_type="application/json")
        assert response.status_code == 200
        [call] = slack.api.called("views.publish")
        assert call.args["user_id"] == "U000SECOPS1"
        text = json.dumps(call.args["view"])
        assert incident_id in text
        assert "<@U000SECOPS1> approved" in text
