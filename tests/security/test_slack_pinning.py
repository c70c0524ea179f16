"""Attack: a request signed with our secret but from another Slack workspace or another app.

With `SLACK_TEAM_ID` / `SLACK_APP_ID` set, a click, a `/remediate` command or a modal submission
naming another team or app id is refused (403) before the app is built: no decision is recorded,
nothing goes on the Slack outbox or the actions queue.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest

import host
from functions import wiring
from slack_server import SlackTest, block_actions
from slack_server import slack_fixture as slack_fixture  # the `slack` fixture

TEAM, APP = "T111", "A111"
CLUSTER = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1"
ALERT: dict[str, Any] = {
    "AlertType": "K8S_PrivilegedContainer",
    "SystemAlertId": "alert-pinning-1",
    "Severity": "High",
    "StartTimeUtc": "2024-11-20T08:32:12.950321Z",
    "AzureResourceId": CLUSTER,
    "Entities": [{"$id": "1", "Type": "K8s-pod", "Name": "web-1", "Namespace": {"$id": "2", "Name": "shop"}}],
}


def click(incident_id: str, *, team: str, app: str) -> dict[str, Any]:
    payload = block_actions("incident.approve", incident_id, user="U000SECOPS1", channel="C0SECOPS")
    return {**payload, "team": {"id": team, "domain": "elsewhere"}, "api_app_id": app}


def submission(incident_id: str, *, team: str, app: str) -> dict[str, Any]:
    return {
        "type": "view_submission",
        "team": {"id": team, "domain": "elsewhere"},
        "user": {"id": "U000SECOPS1", "team_id": team},
        "api_app_id": app,
        "trigger_id": "111.222.valid",
        "view": {
            "id": "V111",
            "team_id": team,
            "app_id": app,
            "type": "modal",
            "callback_id": "incident.input.submit",
            "private_metadata": incident_id,
            "state": {"values": {"param:pod": {"value": {"type": "plain_text_input", "value": "web-9"}}}},
        },
    }


def command(*, team: str, app: str) -> bytes:
    text = f"run pod-isolate cluster_resource_id={CLUSTER} namespace=shop pod=web-2"
    form = {
        "team_id": team,
        "api_app_id": app,
        "channel_id": "C0SECOPS",
        "user_id": "U000SECOPS1",
        "command": "/remediate",
        "text": text,
        "trigger_id": "111.222.valid",
    }
    return urllib.parse.urlencode(form).encode()


def send(slack: SlackTest, kind: str, incident_id: str, *, team: str, app: str) -> int:
    if kind == "click":
        return slack.interact(click(incident_id, team=team, app=app)).status_code
    if kind == "submission":
        return slack.interact(submission(incident_id, team=team, app=app)).status_code
    body = command(team=team, app=app)
    return slack.post(body, content_type="application/x-www-form-urlencoded").status_code


@pytest.mark.parametrize("kind", ["click", "command", "submission"])
@pytest.mark.parametrize(("team", "app"), [("T999OTHER", APP), (TEAM, "A999OTHER")], ids=["other-team", "other-app"])
def test_a_request_from_another_workspace_or_app_is_refused_and_changes_nothing(
    slack: SlackTest, monkeypatch: pytest.MonkeyPatch, kind: str, team: str, app: str
) -> None:
    monkeypatch.setenv("SLACK_TEAM_ID", TEAM)
    monkeypatch.setenv("SLACK_APP_ID", APP)
    wiring.reset()
    host.call("defender_alerts_http", host.http_post("defender/alerts", json.dumps(ALERT).encode()))
    [before] = wiring.engine().incidents.list()

    assert send(slack, kind, before.id, team=team, app=app) in (401, 403)

    [after] = wiring.engine().incidents.list()  # no manual run opened either
    assert (after.state, after.approvals, after.revision) == (before.state, before.approvals, before.revision)
    assert slack.api.called("chat.postEphemeral") == []
    assert slack.api.called("views.open") == []
    # The same request from the pinned workspace and app goes through: the pinning, not the shape, refused it.
    assert send(slack, kind, before.id, team=TEAM, app=APP) == 200
