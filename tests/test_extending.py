"""docs/extending.md, done once: a small action defined only here goes the whole way through the tree.

It declares itself like every shipped action; the catalogue index takes it, playbooks validate
against it, `ActionSet` runs its preview, apply and undo on kmock, and the generated catalogue and
ClusterRole grow a row and a rule for it. Nothing of the app is patched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kube_api import FakeClock, KubeServer, res, write_kubeconfig
from remediation.actions import CATALOGUE
from remediation.actions.catalogue import index
from remediation.actions.dispatch import ActionSet
from remediation.actions.docs import render_action_catalogue
from remediation.actions.kubernetes import ClusterClients, KubernetesAction, KubernetesRuntime
from remediation.actions.kubernetes.params import ClusterParams, Namespace, PodName, rules
from remediation.actions.kubernetes.session import ClusterSession
from remediation.actions.kubernetes.targets import bind, snapshot_target, version_of
from remediation.actions.manifests import render_cluster_role
from remediation.actions.runtime import Outcome, Preview, StepContext, StepResult
from remediation.playbooks import PlaybookErrors, load_playbooks
from remediation.retry import RetryPolicy
from remediation.settings import KubernetesSettings
from remediation.store.snapshots import InMemorySnapshotStore

pytest_plugins = ["kube_api"]  # the `kube` fixture

FLAG = "remediation.security/flagged"
ServiceAccountName = PodName  # a DNS-1123 subdomain, as pod names are
SERVICE_ACCOUNTS = res("v1/serviceaccounts")


class FlagServiceAccountParams(ClusterParams):
    namespace: Namespace
    service_account: ServiceAccountName


class FlagServiceAccount(KubernetesAction[FlagServiceAccountParams]):
    """Annotate a service account as under investigation (a rare operation was seen), for its owners."""

    name = "kubernetes.flag_service_account"
    summary = "Annotate a service account as under investigation. Undo removes the annotation."
    Params = FlagServiceAccountParams
    permissions = rules("serviceaccounts", "get", "update", "patch")
    example = {"cluster": "aks-prod-weu", "namespace": "payments", "service_account": "api"}
    destructive = False

    def preview_on(self, s: ClusterSession, params: FlagServiceAccountParams, ctx: StepContext) -> Preview:
        target = version_of("ServiceAccount", self._read(s, params))
        where = f"{params.namespace}/{params.service_account}"
        return Preview(self.name, f"service account {where} will be annotated {FLAG}", target=target)

    def apply_on(self, s: ClusterSession, params: FlagServiceAccountParams, ctx: StepContext) -> StepResult:
        current = self._read(s, params)
        target = version_of("ServiceAccount", current)
        bind(ctx, target)
        snapshot_target(ctx, target=target, state={"annotations": current["metadata"].get("annotations") or {}})
        self._annotate(s, params, ctx.incident_id)
        return StepResult(self.name, Outcome.APPLIED, "flagged", target=target, snapshot=ctx.snapshot_key)

    def undo_on(
        self, s: ClusterSession, params: FlagServiceAccountParams, result: StepResult, ctx: StepContext
    ) -> StepResult:
        self._annotate(s, params, None)
        return StepResult(self.name, Outcome.UNDONE, "flag removed", target=result.target)

    @staticmethod
    def _read(s: ClusterSession, params: FlagServiceAccountParams) -> dict[str, Any]:
        read = s.core.read_namespaced_service_account
        found: dict[str, Any] = s.call(read, params.service_account, params.namespace, what="read service account")
        return found

    @staticmethod
    def _annotate(s: ClusterSession, params: FlagServiceAccountParams, value: str | None) -> None:
        body = {"metadata": {"annotations": {FLAG: value}}}
        patch = s.core.patch_namespaced_service_account
        s.call(patch, params.service_account, params.namespace, body, what="annotate service account")


CLASSES = (*CATALOGUE, FlagServiceAccount)

PLAYBOOK = """
name: flag-a-rarely-used-service-account
description: mark the service account while someone looks
on: {source: defender, types: [K8S_ServiceAccountRareOperation]}
steps:
  - action: kubernetes.flag_service_account
    params: {cluster: "${targets.cluster_resource_id}", namespace: payments, service_account: api}
approval: {mode: required, approvers: [U000SECOPS1], timeout: 30m}
"""


def test_the_catalogue_takes_it_and_playbooks_validate_against_it(tmp_path: Path) -> None:
    (tmp_path / "flag.yaml").write_text(PLAYBOOK)
    [playbook] = load_playbooks(tmp_path, actions=index(CLASSES)).playbooks
    assert playbook.steps[0].spec is FlagServiceAccount
    with pytest.raises(PlaybookErrors, match=r"unknown action 'kubernetes\.flag_service_account'"):
        load_playbooks(tmp_path)  # the shipped catalogue does not know it


def test_it_previews_applies_and_undoes_on_the_cluster(kube: KubeServer, tmp_path: Path) -> None:
    kube.emulator.resources[SERVICE_ACCOUNTS] = {"kind": "ServiceAccount"}  # the fake serves what tests declare
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "api", "namespace": "payments"}}
    kube.emulator.put(SERVICE_ACCOUNTS, account)
    settings = KubernetesSettings(kubeconfigs={"aks-prod-weu": write_kubeconfig(tmp_path / "kc", server=kube.url)})
    clock = FakeClock()
    runtime = KubernetesRuntime(
        clients=ClusterClients(settings=settings), settings=settings, retry=RetryPolicy(sleep=clock.sleep, clock=clock)
    )
    actions = ActionSet(runtimes={KubernetesRuntime: lambda: runtime}, catalogue=[FlagServiceAccount])
    params = actions.params(FlagServiceAccount.name, FlagServiceAccount.example)
    snapshots = InMemorySnapshotStore()
    preview = actions.preview(FlagServiceAccount.name, params, StepContext("inc-x", 0, snapshots))
    applied = actions.apply(
        FlagServiceAccount.name, params, StepContext("inc-x", 0, snapshots, expected=preview.target)
    )
    assert applied.outcome is Outcome.APPLIED
    assert kube.emulator.get(SERVICE_ACCOUNTS, "payments", "api")["metadata"]["annotations"][FLAG] == "inc-x"
    assert snapshots.load("inc-x/step-0.json")["annotations"] == {}
    actions.undo(FlagServiceAccount.name, params, applied, StepContext("inc-x", 0, snapshots))
    assert FLAG not in (kube.emulator.get(SERVICE_ACCOUNTS, "payments", "api")["metadata"].get("annotations") or {})


def test_the_generated_docs_and_cluster_role_grow_with_it() -> None:
    row = next(
        line for line in render_action_catalogue(CLASSES).splitlines() if "kubernetes.flag_service_account" in line
    )
    assert "`service_account`: str (required)" in row
    assert (
        "kubernetes: serviceaccounts get<br>kubernetes: serviceaccounts update<br>kubernetes: serviceaccounts patch"
        in row
    )
    assert (
        '  - apiGroups: [""]\n    resources: ["serviceaccounts"]\n    verbs: ["get", "patch", "update"]\n'
        in render_cluster_role(CLASSES)
    )
    assert "serviceaccounts" not in render_cluster_role()
