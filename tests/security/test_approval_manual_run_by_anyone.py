"""Attack: `/remediate run` lets any user open any playbook against any target, skipping its `when`
conditions, and the run has no preview (so its approval binds to nothing).

Manual runs are for approvers of that playbook, the playbook's conditions must hold, and the run is
previewed like any incident.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import AppTables
from functions import wiring
from kube_api import RBAC, KubeServer, cluster_admin_binding, serve_as
from remediation.incidents import IncidentState
from slack_server import SlackTest
from slack_server import slack_fixture as slack_fixture  # the `slack` fixture

pytest_plugins = ["kube_api"]

CLUSTER_ID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1"
BINDING = cluster_admin_binding()
RUN = f"run rbac-delete-privileged-object cluster_resource_id={CLUSTER_ID} rbac_kind=ClusterRoleBinding rbac_name="


@pytest.fixture(name="cluster")
def cluster_fixture(
    kube: KubeServer, app_tables: AppTables, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> KubeServer:
    kube.emulator.put(RBAC["ClusterRoleBinding"], BINDING)
    return serve_as(kube, CLUSTER_ID, tmp_path=tmp_path, monkeypatch=monkeypatch)


def said(response: object) -> str:
    return str(json.loads(response.get_body())["text"])  # type: ignore[attr-defined]


def test_a_manual_run_by_a_stranger_or_against_the_conditions_is_refused(cluster: KubeServer, slack: SlackTest) -> None:
    assert "only an approver of playbook" in said(slack.command(RUN + "dev-cluster-admin", user="U0STRANGER"))
    refused = said(slack.command(RUN + "system:kube-controller", user="U000SECOPS1"))
    assert "when[0] does not hold: not (targets.rbac_name regex '^system:')" in refused
    assert wiring.engine().incidents.list() == []

    assert "Opened" in said(slack.command(RUN + "dev-cluster-admin", user="U000SECOPS1"))
    [incident] = wiring.engine().incidents.list()
    assert (incident.state, incident.requester) == (IncidentState.AWAITING_APPROVAL, "U000SECOPS1")
    [preview] = incident.previews
    assert preview["target"]["name"] == "dev-cluster-admin"  # the approval binds to what was read
