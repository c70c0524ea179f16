"""The permission manifests, generated from what the actions declare: nothing granted by hand.

`render_cluster_role` writes deploy/kubernetes/rbac.yaml (the ClusterRole the `kubernetes.*` actions
need, and its binding), without what the break-glass actions (`break_glass = True`: re-creating roles
and bindings, which takes `bind` and `escalate`) need: `render_break_glass_role` writes those to
deploy/kubernetes/break-glass.yaml with a binding left commented out, off by default;
`remediation.actions.admission` writes the admission policy beside them; `render_registry_role`
writes deploy/azure/registry-remediator-role.json (the custom Azure role for the registry actions,
plus what their runtime needs). Tests keep the committed files equal to these;
`python -m remediation.actions.docs` rewrites them with the catalogue.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from remediation.actions.catalogue import CATALOGUE, ActionClass
from remediation.actions.container_registry.tags import RUNTIME_PERMISSIONS

NAME = "aks-acr-remediation"
_GROUPS_WITHOUT_DOT = frozenset({"apps", "batch", "policy", "autoscaling"})
_VERBS = ("get", "list", "watch", "create", "patch", "update", "delete", "bind", "escalate")

_ROLE_HEADER = f"""\
# The least ClusterRole the remediation bot's kubernetes.* actions need, and its binding.
#
# Generated from the `kubernetes: ...` permissions the actions declare (remediation/actions/);
# regenerate with `python -m remediation.actions.docs`, never by hand: a test fails when they drift.
# On AKS with Entra ID integration, bind the group (or the managed identity's object id as a User)
# the Function App authenticates as. Nothing here creates roles or bindings, nor carries `bind` or
# `escalate`: re-creating RBAC objects (kubernetes.restore_object) is in break-glass.yaml, bound only
# while it is needed. admission-policy.yaml keeps this identity out of the protected namespaces.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {NAME}
  labels:
    app.kubernetes.io/name: {NAME}
rules:
"""
_BINDING = f"""\
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {NAME}
  labels:
    app.kubernetes.io/name: {NAME}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: {NAME}
subjects:
  - apiGroup: rbac.authorization.k8s.io
    kind: Group
    name: "<ENTRA-GROUP-OBJECT-ID>"  # replace: the Entra group (or identity) the bot authenticates as
"""


_BREAK_GLASS_HEADER = f"""\
# Break-glass: what re-creating roles and bindings from snapshots (kubernetes.restore_object, and the
# undo of kubernetes.delete_rbac_object) needs. `create` on bindings with `bind` and `escalate` on
# roles lets its holder grant anything, so it amounts to cluster-admin: the role is applied, its
# binding is NOT. To restore an RBAC object, uncomment the binding, apply, run the approved undo,
# then delete the binding again (`kubectl delete clusterrolebinding {NAME}-break-glass`).
#
# Generated from the permissions of the actions declared `break_glass` (remediation/actions/);
# regenerate with `python -m remediation.actions.docs`, never by hand.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {NAME}-break-glass
  labels:
    app.kubernetes.io/name: {NAME}
rules:
"""
_BREAK_GLASS_BINDING = f"""\
# Off by default: uncomment to bind, for the duration of one approved restore.
# ---
# apiVersion: rbac.authorization.k8s.io/v1
# kind: ClusterRoleBinding
# metadata:
#   name: {NAME}-break-glass
#   labels:
#     app.kubernetes.io/name: {NAME}
# roleRef:
#   apiGroup: rbac.authorization.k8s.io
#   kind: ClusterRole
#   name: {NAME}-break-glass
# subjects:
#   - apiGroup: rbac.authorization.k8s.io
#     kind: Group
#     name: "<ENTRA-GROUP-OBJECT-ID>"  # the same group as in rbac.yaml
"""


def kubernetes_rules(classes: Iterable[ActionClass] = CATALOGUE) -> list[tuple[str, list[str], list[str]]]:
    """(apiGroup, resources, verbs) rules; resources of one group that need the same verbs share a rule."""
    verbs: dict[tuple[str, str], set[str]] = {}
    for cls in classes:
        for permission in cls.permissions:
            if permission.startswith("kubernetes: "):
                path, verb = permission.removeprefix("kubernetes: ").rsplit(" ", 1)
                group, resource = _split(path)
                verbs.setdefault((group, resource), set()).add(verb)
    rules: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for (group, resource), wanted in verbs.items():
        ordered = tuple(sorted(wanted, key=lambda verb: (_VERBS.index(verb) if verb in _VERBS else 99, verb)))
        rules.setdefault((group, ordered), []).append(resource)
    return [(group, resources, list(ordered)) for (group, ordered), resources in rules.items()]


def _split(path: str) -> tuple[str, str]:
    """`apps/deployments/scale` -> ("apps", "deployments/scale"); `pods/eviction` -> ("", "pods/eviction")."""
    first, _, rest = path.partition("/")
    if rest and ("." in first or first in _GROUPS_WITHOUT_DOT):
        return first, rest
    return "", path


def _rules(classes: Iterable[ActionClass]) -> str:
    return "".join(
        f"  - apiGroups: [{json.dumps(group)}]\n"
        f"    resources: {json.dumps(resources)}\n"
        f"    verbs: {json.dumps(verbs)}\n"
        for group, resources, verbs in kubernetes_rules(classes)
    )


def render_cluster_role(classes: Iterable[ActionClass] = CATALOGUE) -> str:
    """The everyday ClusterRole and its binding: every action's permissions but the break-glass ones."""
    return _ROLE_HEADER + _rules(cls for cls in classes if not cls.break_glass) + _BINDING


def render_break_glass_role(classes: Iterable[ActionClass] = CATALOGUE) -> str:
    """The break-glass ClusterRole (what `break_glass` actions need) and its binding, commented out."""
    return _BREAK_GLASS_HEADER + _rules(cls for cls in classes if cls.break_glass) + _BREAK_GLASS_BINDING


def render_registry_role(classes: Iterable[ActionClass] = CATALOGUE) -> str:
    declared = [p for cls in classes for p in cls.permissions] + list(RUNTIME_PERMISSIONS)
    azure = list(dict.fromkeys(p.removeprefix("azure: ") for p in declared if p.startswith("azure: ")))
    role = {
        "Name": "Registry Remediator",
        "IsCustom": True,
        "Description": "Quarantine (lock or move) and release image tags; read registries. "
        "Assign on each remediated registry. Generated from the registry actions' declared permissions.",
        "Actions": sorted(a for a in azure if "/repositories/" not in a),
        "NotActions": [],
        "DataActions": sorted(a for a in azure if "/repositories/" in a),
        "NotDataActions": [],
        "AssignableScopes": ["/subscriptions/00000000-0000-0000-0000-000000000000"],
    }
    return json.dumps(role, indent=2) + "\n"
