"""Attack: any workspace member opens the input modal of an incident and chooses its target (a node
name); under a `mode: auto` playbook that ran with no approver at all.

Only approvers supply input; after input an incident always awaits approval; and the loader refuses
`mode: auto` and `on_timeout: auto_approve` for a destructive step, naming it.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from azure.storage.queue import QueueClient

import host
from functions import wiring
from remediation.incidents import IncidentState
from remediation.playbooks import check_playbooks
from slack_server import SlackTest
from slack_server import slack_fixture as slack_fixture  # the `slack` fixture

CORDON_AUTO = """\
name: cordon-auto
description: cordon the node the alert names; the node comes from input when the alert has none
on: {source: defender, types: [K8S_PrivilegedContainer]}
steps:
  - action: kubernetes.cordon_node
    params: {cluster: "${targets.cluster_resource_id}", node: "${targets.node}"}
approval: {mode: auto, approvers: [U000SECOPS1, U000SECOPS2]}
"""
ALERT = {
    "AlertType": "K8S_PrivilegedContainer",
    "SystemAlertId": "alert-input-1",
    "Severity": "High",
    "StartTimeUtc": "2024-11-20T08:32:12.950321Z",
    "AzureResourceId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1",
    "Entities": [{"$id": "1", "Type": "K8s-pod", "Name": "web-1", "Namespace": {"$id": "2", "Name": "shop"}}],
}


def submission(incident_id: str, *, user: str, node: str) -> dict[str, Any]:
    state = {"param:node": {"value": {"type": "plain_text_input", "value": node}}}
    return {
        "type": "view_submission",
        "team": {"id": "T111", "domain": "workspace-domain"},
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": "T111"},
        "api_app_id": "A111",
        "token": "verification_token",
        "trigger_id": "111.222.valid",
        "view": {
            "id": "V111",
            "type": "modal",
            "callback_id": "incident.input.submit",
            "private_metadata": incident_id,
            "state": {"values": state},
        },
    }


def work(slack: SlackTest) -> list[str]:
    with QueueClient.from_connection_string(slack.tables.connection_string, slack.tables.queue) as queue:
        try:
            return [json.loads(base64.b64decode(m.content))["kind"] for m in queue.peek_messages(max_messages=32)]
        except Exception:  # no queue yet: nothing was ever queued
            return []


def test_a_stranger_supplying_input_to_an_auto_playbook_is_refused(
    slack: SlackTest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cordon-auto.yaml").write_text(CORDON_AUTO)
    monkeypatch.setenv("REMEDIATION_PLAYBOOKS_DIR", str(tmp_path))
    wiring.reset()
    host.call("defender_alerts_http", host.http_post("defender/alerts", json.dumps(ALERT).encode()))
    [incident] = wiring.engine().incidents.list()
    assert incident.state is IncidentState.NEEDS_INPUT

    slack.click("incident.input", incident.id, user="U0STRANGER")
    assert slack.api.called("views.open") == []
    assert "Only an approver" in slack.ephemerals("U0STRANGER")[-1]
    answer = json.loads(slack.interact(submission(incident.id, user="U0STRANGER", node="aks-n1")).get_body())
    assert answer["response_action"] == "errors"
    assert "only an approver" in answer["errors"]["param:node"]
    assert wiring.engine().incidents.get(incident.id).state is IncidentState.NEEDS_INPUT

    slack.click("incident.input", incident.id, user="U000SECOPS1")
    assert len(slack.api.called("views.open")) == 1
    slack.interact(submission(incident.id, user="U000SECOPS1", node="aks-n1"))
    supplied = wiring.engine().incidents.get(incident.id)
    assert (supplied.state, supplied.plan.steps[0].params["node"]) == (IncidentState.AWAITING_APPROVAL, "aks-n1")
    assert "execute" not in work(slack)

    destructive = CORDON_AUTO.replace("kubernetes.cordon_node", "kubernetes.drain_node")
    (tmp_path / "cordon-auto.yaml").write_text(destructive)
    [error] = check_playbooks(tmp_path)
    assert "playbook 'cordon-auto': approval.mode: mode: auto would run steps[0] (kubernetes.drain_node)" in error
