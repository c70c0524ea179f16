"""Attack: a workspace member (a guest, say) who approves nothing reads incidents and their Defender properties.

`/remediate list`, `/remediate show ID`, the Details button and App Home answer only the approvers
(of the incident's playbook; for the listings, of any playbook) and `REMEDIATION_VIEWERS` (user
ids and @group handles). Anyone else gets a refusal that names nobody, and App Home a plain view.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import host
from functions import wiring
from slack_server import SlackTest
from slack_server import slack_fixture as slack_fixture  # the `slack` fixture

STRANGER, VIEWER, AUDITOR = "U0GUEST", "U0VIEWER", "U0AUDITOR"
SECRET = "cluster-admin-token-in-properties"
CLUSTER = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1"
ALERT: dict[str, Any] = {
    "AlertType": "K8S_PrivilegedContainer",
    "SystemAlertId": "alert-visibility-1",
    "Severity": "High",
    "StartTimeUtc": "2024-11-20T08:32:12.950321Z",
    "AzureResourceId": CLUSTER,
    "Entities": [{"$id": "1", "Type": "K8s-pod", "Name": "web-1", "Namespace": {"$id": "2", "Name": "shop"}}],
    "ExtendedProperties": {"detail": SECRET},
}


@pytest.fixture
def incident_id(slack: SlackTest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("REMEDIATION_VIEWERS", f"{VIEWER}, @auditors")
    slack.api.groups["auditors"] = ("S0AUDITORS", (AUDITOR,))
    wiring.reset()
    host.call("defender_alerts_http", host.http_post("defender/alerts", json.dumps(ALERT).encode()))
    [incident] = wiring.engine().incidents.list()
    return incident.id


def read(slack: SlackTest, surface: str, incident_id: str, *, user: str) -> str:
    """What `user` gets back from `surface`, as text."""
    before = len(slack.api.called("chat.postEphemeral")), len(slack.api.called("views.publish"))
    if surface in ("list", "show"):
        response = slack.command("list" if surface == "list" else f"show {incident_id}", user=user)
        assert response.status_code == 200
        return response.get_body().decode()
    if surface == "details":
        assert slack.click("incident.details", incident_id, user=user).status_code == 200
        [answer] = slack.api.called("chat.postEphemeral")[before[0] :]
        return json.dumps(answer.args)
    event = {
        "team_id": "T111",
        "api_app_id": "A111",
        "type": "event_callback",
        "event_id": "Ev" + user,
        "event_time": 1700000000,
        "event": {"type": "app_home_opened", "user": user, "channel": "D111", "tab": "home"},
    }
    assert slack.post(json.dumps(event).encode(), content_type="application/json").status_code == 200
    [published] = slack.api.called("views.publish")[before[1] :]
    assert published.args["user_id"] == user
    return json.dumps(published.args)


SURFACES = ["list", "show", "details", "home"]


@pytest.mark.parametrize("surface", SURFACES)
def test_a_stranger_reads_incidents_and_is_refused_without_being_told_who_approves(
    slack: SlackTest, incident_id: str, surface: str
) -> None:
    answer = read(slack, surface, incident_id, user=STRANGER)
    assert incident_id not in answer and SECRET not in answer and "web-1" not in answer
    assert "cannot see incidents" in answer
    assert "U000SECOPS1" not in answer and "secops-oncall" not in answer


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize("user", ["U000SECOPS1", "U0ONCALL1", VIEWER, AUDITOR])
def test_approvers_and_viewers_still_read_incidents(
    slack: SlackTest, incident_id: str, surface: str, user: str
) -> None:
    answer = read(slack, surface, incident_id, user=user)
    assert incident_id in answer and "cannot see incidents" not in answer
    if surface == "details":
        assert SECRET in answer
