"""Attack: a user removed from the approver group approves again before a membership cache expires.

Group membership is read fresh for every decision: removed from `@secops-oncall` in Slack, the
user's very next Approve is refused and changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

import host
from functions import wiring
from remediation.incidents import IncidentState
from slack_server import SlackTest
from slack_server import slack_fixture as slack_fixture  # the `slack` fixture

CLUSTER = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1"
MEMBER = "U0ONCALL1"


def alert(number: int) -> bytes:
    document: dict[str, Any] = {
        "AlertType": "K8S_PrivilegedContainer",
        "SystemAlertId": f"alert-membership-{number}",
        "Severity": "High",
        "StartTimeUtc": "2024-11-20T08:32:12.950321Z",
        "AzureResourceId": CLUSTER,
        "Entities": [
            {"$id": "1", "Type": "K8s-pod", "Name": f"web-{number}", "Namespace": {"$id": "2", "Name": "shop"}}
        ],
    }
    return json.dumps(document).encode()


def test_a_member_removed_from_the_approver_group_cannot_approve_a_moment_later(slack: SlackTest) -> None:
    host.call("defender_alerts_http", host.http_post("defender/alerts", alert(1)))
    host.call("defender_alerts_http", host.http_post("defender/alerts", alert(2)))
    first, second = (incident.id for incident in wiring.engine().incidents.list())
    assert first != second

    slack.click("incident.approve", first, user=MEMBER)
    assert wiring.engine().incidents.get(first).approved_by == (MEMBER,)

    group_id, members = slack.api.groups["secops-oncall"]
    slack.api.groups["secops-oncall"] = (group_id, tuple(user for user in members if user != MEMBER))
    slack.click("incident.approve", second, user=MEMBER)

    incident = wiring.engine().incidents.get(second)
    assert incident.approvals == () and incident.state is IncidentState.AWAITING_APPROVAL
    assert any("Not recorded" in text for text in slack.ephemerals(MEMBER))
