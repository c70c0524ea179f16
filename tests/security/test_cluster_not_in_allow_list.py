"""Attack: an alert about a cluster the bot was never meant to act on, in another subscription but
with the same bare name as a configured kubeconfig, must not reach that kubeconfig's cluster."""

from __future__ import annotations

import pytest

from kube_api import NODES, Harness, node
from remediation.actions.kubernetes import CordonNodeParams
from remediation.actions.runtime import GuardRefused

pytest_plugins = ["kube_api"]

FOREIGN = "/subscriptions/0000/resourceGroups/other/providers/Microsoft.ContainerService/managedClusters/aks-test"


def test_a_cluster_outside_the_allow_list_is_refused_at_preview_and_apply(k8s: Harness) -> None:
    for name in ("n1", "n2", "n3", "n4"):
        k8s.emu.put(NODES, node(name))
    params = CordonNodeParams(cluster=FOREIGN, node="n1")
    for run in (
        lambda: k8s.handler.preview("kubernetes.cordon_node", params, k8s.ctx()),
        lambda: k8s.handler.apply("kubernetes.cordon_node", params, k8s.ctx()),
    ):
        with pytest.raises(GuardRefused, match="is not in REMEDIATION_CLUSTERS"):
            run()
    assert not k8s.emu.get(NODES, None, "n1")["spec"].get("unschedulable")
