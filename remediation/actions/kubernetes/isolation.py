"""The deny-all NetworkPolicy of a pod isolation: what we create, how we know it is ours, and removal.

Neighbours: `pods` (isolate, release and their undos) is the only user. Our policy carries the
managed-by label and is exactly the deny-all we would create. A same-named policy that is not ours
(no label), or no longer what we create (say, an allow-all someone put there first), fails the
step: a pod is never reported isolated by a policy that lets its traffic through, and nobody else's
object is ever deleted.
"""

from __future__ import annotations

import re
from typing import Any

from remediation.actions.kubernetes.errors import Conflict, NotFound
from remediation.actions.kubernetes.session import DRY_RUN, ClusterSession
from remediation.actions.runtime import PermanentFailure

ISOLATED_LABEL = "remediation.security/isolated"
MANAGED_BY = {"app.kubernetes.io/managed-by": "aks-acr-remediation"}


def label_value(incident_id: str) -> str:
    """A label value (63 characters of [A-Za-z0-9-_.], alphanumeric at both ends) naming the incident."""
    value = re.sub(r"[^A-Za-z0-9._-]", "-", incident_id)[:63].strip("-_.")
    return value or "isolated"


def policy_name(pod: str) -> str:
    return f"remediation-isolate-{pod}"[:253].rstrip("-.")


def deny_all_policy(namespace: str, pod: str, value: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": policy_name(pod),
            "namespace": namespace,
            "labels": {**MANAGED_BY, ISOLATED_LABEL: value},
            "annotations": {"remediation.security/pod": pod},
        },
        "spec": {"podSelector": {"matchLabels": {ISOLATED_LABEL: value}}, "policyTypes": ["Ingress", "Egress"]},
    }


def read_policy(s: ClusterSession, namespace: str, pod: str) -> dict[str, Any] | None:
    try:
        policy: dict[str, Any] = s.call(
            s.networking.read_namespaced_network_policy, policy_name(pod), namespace, what="read network policy"
        )
    except NotFound:
        return None
    return policy


def managed_by_us(policy: dict[str, Any]) -> bool:
    labels = (policy.get("metadata") or {}).get("labels") or {}
    return all(labels.get(key) == value for key, value in MANAGED_BY.items())


def is_our_deny_all(policy: dict[str, Any], value: str) -> bool:
    """Ours, and denying all traffic of the pods labelled `value` (what `deny_all_policy` creates)."""
    spec = policy.get("spec") or {}
    selector = spec.get("podSelector") or {}
    return (
        managed_by_us(policy)
        and selector.get("matchLabels") == {ISOLATED_LABEL: value}
        and not selector.get("matchExpressions")
        and sorted(spec.get("policyTypes") or []) == ["Egress", "Ingress"]
        and not spec.get("ingress")
        and not spec.get("egress")
    )


def refuse_foreign(policy: dict[str, Any] | None, value: str, *, namespace: str, pod: str) -> None:
    """PermanentFailure if a policy of our name exists that is not the deny-all we would create."""
    if policy is None or is_our_deny_all(policy, value):
        return
    why = "is not ours (no managed-by label)" if not managed_by_us(policy) else "is not ours as we created it (changed)"
    raise PermanentFailure(
        f"NetworkPolicy {namespace}/{policy_name(pod)} {why}: it does not isolate the pod; nothing was changed, "
        "inspect it and remove or rename it"
    )


def create_policy(s: ClusterSession, namespace: str, pod: str, value: str, *, dry_run: bool = False) -> None:
    """Create our deny-all; one of that name already there must be ours (an earlier attempt) or we fail."""
    from kubernetes import client

    body = client.V1NetworkPolicy.from_dict(deny_all_policy(namespace, pod, value))
    extra: dict[str, Any] = {"dry_run": DRY_RUN} if dry_run else {}
    try:
        s.call(s.networking.create_namespaced_network_policy, namespace, body, what="create network policy", **extra)
    except Conflict:
        refuse_foreign(read_policy(s, namespace, pod), value, namespace=namespace, pod=pod)


def delete_ours(s: ClusterSession, namespace: str, pod: str) -> bool:
    """Delete the policy of our name if it is ours (that very object: uid precondition); False if none.
    One that is not ours fails the step and stays."""
    from kubernetes import client

    policy = read_policy(s, namespace, pod)
    if policy is None:
        return False
    if not managed_by_us(policy):
        raise PermanentFailure(
            f"NetworkPolicy {namespace}/{policy_name(pod)} is not ours (no managed-by label): left alone"
        )
    options = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=policy["metadata"].get("uid")))
    try:
        s.call(s.networking.delete_namespaced_network_policy, policy_name(pod), namespace, body=options,
               what="delete network policy")  # fmt: skip
    except NotFound:
        return False
    return True
