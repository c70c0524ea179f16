"""Attack: pre-create an allow-all NetworkPolicy under the name our isolation uses, so that the pod
is reported isolated while all its traffic still flows; then have undo delete someone else's policy."""

from __future__ import annotations

from typing import Any

import pytest

from kube_api import CLUSTER, NETPOLS, PODS, Harness, pod
from remediation.actions.kubernetes import IsolatePodParams, ReleasePodParams
from remediation.actions.kubernetes.pods import ISOLATED_LABEL, label_value, policy_name
from remediation.actions.runtime import PermanentFailure

pytest_plugins = ["kube_api"]


def allow_all(value: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": policy_name("miner"), "namespace": "payments"},
        "spec": {
            "podSelector": {"matchLabels": {ISOLATED_LABEL: value}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{}],
            "egress": [{}],
        },
    }


def test_a_same_named_allow_all_policy_is_not_taken_for_isolation(k8s: Harness) -> None:
    k8s.emu.put(PODS, pod("miner"))
    planted = k8s.emu.put(NETPOLS, allow_all(label_value("inc-0001")))
    params = IsolatePodParams(cluster=CLUSTER, namespace="payments", pod="miner")

    with pytest.raises(PermanentFailure, match="not ours"):
        k8s.handler.preview("kubernetes.isolate_pod", params, k8s.ctx())
    with pytest.raises(PermanentFailure, match="not ours"):
        k8s.handler.apply("kubernetes.isolate_pod", params, k8s.ctx())
    assert ISOLATED_LABEL not in k8s.emu.get(PODS, "payments", "miner")["metadata"]["labels"]
    with pytest.raises(PermanentFailure, match="not ours"):
        k8s.handler.apply("kubernetes.release_pod", ReleasePodParams(**params.model_dump()), k8s.ctx(step=1))
    assert k8s.emu.get(NETPOLS, "payments", policy_name("miner"))["spec"] == planted["spec"]
