"""Attack (by accident): a step whose preview a guard rail refused is still offered for approval;
after two approvals the incident ends failed with a false reason ("has no previewed target").

The incident closes at once, saying which guard refused which step, and no approval is taken.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from azure.storage.queue import QueueClient

import host
from conftest import AppTables
from expected_targets import fixture_path
from functions import wiring
from kube_api import RBAC, KubeServer, cluster_admin_binding, serve_as
from remediation.incidents import IncidentState
from slack_server import SlackTest
from slack_server import slack_fixture as slack_fixture  # the `slack` fixture

pytest_plugins = ["kube_api"]

ALERT = fixture_path("defender-alert-k8s-clusteradminbinding.log-analytics-row.json").read_bytes()
CLUSTER_ID = json.loads(ALERT)["ResourceId"]
BINDING = cluster_admin_binding(
    subject={"kind": "Group", "name": "system:masters"}, labels={"kubernetes.io/bootstrapping": "rbac-defaults"}
)


@pytest.fixture(name="cluster")
def cluster_fixture(
    kube: KubeServer, app_tables: AppTables, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> KubeServer:
    kube.emulator.put(RBAC["ClusterRoleBinding"], BINDING)
    return serve_as(kube, CLUSTER_ID, tmp_path=tmp_path, monkeypatch=monkeypatch)


def queued(tables: AppTables) -> list[str]:
    with QueueClient.from_connection_string(tables.connection_string, tables.queue) as queue:
        try:
            return [json.loads(base64.b64decode(m.content))["kind"] for m in queue.peek_messages(max_messages=32)]
        except Exception:  # no queue yet: nothing was ever queued
            return []


def test_approving_a_step_a_guard_refused_is_refused(cluster: KubeServer, slack: SlackTest) -> None:
    host.call("defender_alerts_http", host.http_post("defender/alerts", ALERT))
    [incident] = wiring.engine().incidents.list()
    assert incident.previews[0]["error"].startswith("guard 'bootstrapping label'")
    assert incident.state is IncidentState.REJECTED
    assert (incident.last_error or "").startswith(
        "step 1 (kubernetes.delete_rbac_object) is refused by guard 'bootstrapping label'"
    )
    [message] = [c.args for c in slack.api.called("chat.postMessage") if not c.args.get("thread_ts")]
    assert "guard 'bootstrapping label'" in json.dumps(message["blocks"])

    for user in ("U000SECOPS1", "U000SECOPS2"):
        slack.click("incident.approve", incident.id, user=user)
        assert "guard 'bootstrapping label'" in slack.ephemerals(user)[-1]
    assert wiring.engine().incidents.get(incident.id).state is IncidentState.REJECTED
    assert queued(slack.tables) == []
    [rejection] = [r for r in wiring.engine().incidents.audit.records(incident.id) if r.kind == "rejection"]
    assert (rejection.actor, "guard 'bootstrapping label'" in rejection.details["reason"]) == ("system", True)
