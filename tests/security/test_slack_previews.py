"""Attack: approving blind. The message must show what each step would do before anyone approves it.

Each step's preview is on the incident message; a step a guard rail refused at preview names the
guard and the message offers no Approve for it; a quarantine by lock names every other tag of the
same digest that stops being pullable too.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import host
from bot.blocks import APPROVE, incident_blocks
from functions import wiring
from remediation.incidents import Incident
from slack_server import SlackTest
from slack_server import slack_fixture as slack_fixture  # the `slack` fixture

CLUSTER = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1"
ALERT: dict[str, Any] = {
    "AlertType": "K8S_PrivilegedContainer",
    "SystemAlertId": "alert-previews-1",
    "Severity": "High",
    "StartTimeUtc": "2024-11-20T08:32:12.950321Z",
    "AzureResourceId": CLUSTER,
    "Entities": [{"$id": "1", "Type": "K8s-pod", "Name": "web-1", "Namespace": {"$id": "2", "Name": "shop"}}],
}


def awaiting(slack: SlackTest) -> Incident:
    host.call("defender_alerts_http", host.http_post("defender/alerts", json.dumps(ALERT).encode()))
    [incident] = wiring.engine().incidents.list()
    assert incident.state.value == "awaiting_approval"
    return incident


def rendered(incident: Incident) -> tuple[str, list[str]]:
    blocks = incident_blocks(incident)
    buttons = [element["action_id"] for block in blocks if block["type"] == "actions" for element in block["elements"]]
    return json.dumps(blocks), buttons


def test_a_step_refused_by_a_guard_at_preview_is_shown_by_name_and_never_offered_for_approval(
    slack: SlackTest,
) -> None:
    incident = awaiting(slack)
    previewed = dataclasses.replace(
        incident,
        previews=({"step": 0, "summary": "pod shop/web-1 will be isolated", "target": {"uid": "u-1"}, "noop": False},),
    )
    text, buttons = rendered(previewed)
    assert "pod shop/web-1 will be isolated" in text and "uid=u-1" in text
    assert APPROVE in buttons

    guarded = dataclasses.replace(
        incident,
        previews=({"step": 0, "error": "guard 'protected namespace': kube-system is protected; remediate it by hand"},),
    )
    text, buttons = rendered(guarded)
    assert "protected namespace" in text and "kube-system is protected" in text
    assert APPROVE not in buttons


def test_quarantine_by_lock_names_the_other_tags_that_stop_being_pullable(slack: SlackTest) -> None:
    incident = awaiting(slack)
    preview = {
        "step": 0,
        "summary": "prod/api:latest will be locked (the manifest sha256:ab12)",
        "target": {"digest": "sha256:ab12"},
        "noop": False,
        "changes": {"other_tags": ["v1.4.2", "stable"]},
    }
    text, _ = rendered(dataclasses.replace(incident, previews=(preview,)))
    assert "also stops being pullable: v1.4.2, stable" in text
