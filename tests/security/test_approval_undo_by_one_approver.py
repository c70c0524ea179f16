"""Attack: one member of the approver group undoes a two-person RBAC deletion alone, so the binding
to cluster-admin comes back on one person's word and the audit chain does not name who asked.

The undo of a deletion re-grants access: it needs the playbook's two approvals from approvers other
than the one who asked, and the chain names the requester and each approver.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import AppTables
from expected_targets import fixture_path
from functions import wiring
from harness import Chain
from harness import chain_fixture as chain_fixture  # the `chain` fixture
from kube_api import RBAC, KubeServer, cluster_admin_binding, serve_as
from remediation.incidents import IncidentState
from slack_server import slack_fixture as slack_fixture  # the `slack` fixture

pytest_plugins = ["kube_api"]

ALERT = json.loads(fixture_path("defender-alert-k8s-clusteradminbinding.log-analytics-row.json").read_bytes())
CLUSTER_ID = ALERT["ResourceId"]
BINDING = cluster_admin_binding()


@pytest.fixture(name="cluster")
def cluster_fixture(
    kube: KubeServer, app_tables: AppTables, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> KubeServer:
    kube.emulator.put(RBAC["ClusterRoleBinding"], BINDING)
    return serve_as(kube, CLUSTER_ID, tmp_path=tmp_path, monkeypatch=monkeypatch)


def binding(cluster: KubeServer) -> object:
    return cluster.emulator.get(RBAC["ClusterRoleBinding"], None, "dev-cluster-admin")


def test_one_approver_cannot_undo_a_two_person_rbac_deletion(cluster: KubeServer, chain: Chain) -> None:
    assert chain.post_alert(ALERT).status_code == 200
    incident = chain.the_incident()
    chain.click("incident.approve", incident.id, user="U000SECOPS1")
    chain.click("incident.approve", incident.id, user="U000SECOPS2")
    chain.run_executor()
    assert chain.the_incident().state is IncidentState.SUCCEEDED
    assert binding(cluster) is None

    chain.click("incident.undo", incident.id, user="U0ONCALL1")  # one member of @secops-oncall asks
    assert chain.host.peek(chain.queue_name) == []
    chain.click("incident.approve", incident.id, user="U0ONCALL1")  # and cannot approve their own undo
    chain.click("incident.undo", incident.id, user="U0ONCALL1")
    assert chain.host.peek(chain.queue_name) == []
    assert "you asked for this undo" in chain.slack.ephemerals("U0ONCALL1")[-1]

    chain.click("incident.undo", incident.id, user="U000SECOPS1")  # asking again is approving: 1 of 2
    assert chain.host.peek(chain.queue_name) == []
    assert (chain.the_incident().state, binding(cluster)) == (IncidentState.SUCCEEDED, None)
    chain.click("incident.approve", incident.id, user="U0ONCALL2")  # 2 of 2: queued
    assert [json.loads(body)["kind"] for body in chain.host.peek(chain.queue_name)] == ["undo"]
    chain.run_executor()
    assert chain.the_incident().state is IncidentState.UNDONE
    assert binding(cluster) is not None

    records = wiring.engine().incidents.audit.records(incident.id)
    undo = [(r.kind, r.actor) for r in records if r.kind.startswith("undo")]
    assert undo == [("undo_requested", "U0ONCALL1"), ("undo_approval", "U000SECOPS1"), ("undo_approval", "U0ONCALL2")]
    assert wiring.engine().incidents.audit.verify(incident.id) == []
