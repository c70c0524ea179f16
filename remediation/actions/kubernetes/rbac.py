"""RBAC actions: delete a ClusterRoleBinding, RoleBinding, ClusterRole or Role; restore it from its
snapshot.

Neighbours: `runtime.KubernetesAction` opens the session both actions work through;
`guards.rbac_deletable` refuses Kubernetes' own objects before anything is stored or deleted. The
snapshot holds the whole object as the API served it; restore re-creates it without the fields the
server sets (`SERVER_FIELDS`), so rules, subjects and roleRef come back as they were.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from remediation.actions.kubernetes import guards
from remediation.actions.kubernetes.errors import Conflict, NotFound
from remediation.actions.kubernetes.params import (
    CLUSTER_RBAC_KINDS,
    EXAMPLE_CLUSTER,
    EXAMPLE_CLUSTER_ID,
    NAMESPACED_RBAC_KINDS,
    RBAC_RESOURCES,
    ClusterParams,
    Namespace,
    RbacName,
    rules,
)
from remediation.actions.kubernetes.runtime import KubernetesAction
from remediation.actions.kubernetes.session import DRY_RUN, ClusterSession
from remediation.actions.kubernetes.targets import bind, snapshot_target, version_of
from remediation.actions.runtime import (
    Outcome,
    PermanentFailure,
    Preview,
    SnapshotRefused,
    StepContext,
    StepResult,
    TargetVersion,
    content_hash,
    prior_snapshot,
    verified_snapshot,
)

SERVER_FIELDS = (
    "uid", "resourceVersion", "creationTimestamp", "managedFields", "selfLink", "generation",
    "deletionTimestamp", "deletionGracePeriodSeconds",
)  # fmt: skip
CONTENT_FIELDS = ("rules", "aggregationRule", "subjects", "roleRef")
_SUFFIX = {
    "ClusterRoleBinding": "cluster_role_binding",
    "RoleBinding": "namespaced_role_binding",
    "ClusterRole": "cluster_role",
    "Role": "namespaced_role",
}


def _method(s: ClusterSession, verb: str, kind: str) -> Callable[..., Any]:
    method: Callable[..., Any] = getattr(s.rbac, f"{verb}_{_SUFFIX[kind]}")
    return method


def _where(name: str, namespace: str | None) -> tuple[str, ...]:
    return (name, namespace) if namespace else (name,)


def _describe(kind: str, name: str, namespace: str | None) -> str:
    return f"{kind} {namespace + '/' if namespace else ''}{name}"


def read(s: ClusterSession, kind: str, name: str, namespace: str | None) -> dict[str, Any]:
    what = f"read {_describe(kind, name, namespace)}"
    obj: dict[str, Any] = s.call(_method(s, "read", kind), *_where(name, namespace), what=what)
    return obj


def preview_delete(s: ClusterSession, params: DeleteRbacObjectParams, ctx: StepContext, *, action: str) -> Preview:
    obj = read(s, params.kind, params.name, params.namespace)
    guards.rbac_deletable(params.kind, obj, settings=s.settings)
    label = _describe(params.kind, params.name, params.namespace)
    s.call(_method(s, "delete", params.kind), *_where(params.name, params.namespace), dry_run=DRY_RUN,
           what=f"dry-run delete {label}")  # fmt: skip
    changes = {"delete": label, **{k: obj[k] for k in CONTENT_FIELDS if k in obj}}
    summary = f"{label} will be deleted (snapshot kept for restore)"
    return Preview(action, summary, changes, version_of(params.kind, obj))


def apply_delete(s: ClusterSession, params: DeleteRbacObjectParams, ctx: StepContext, *, action: str) -> StepResult:
    label = _describe(params.kind, params.name, params.namespace)
    try:
        obj = read(s, params.kind, params.name, params.namespace)
    except NotFound:
        prior = prior_snapshot(ctx)
        if prior is None:
            raise PermanentFailure(f"{label} not found on {s.cluster}: nothing was deleted") from None
        earlier = TargetVersion.from_json(prior["target"]) if isinstance(prior.get("target"), dict) else None
        return StepResult(action, Outcome.APPLIED, f"{label} deleted by an earlier attempt", target=earlier,
                          snapshot=ctx.snapshot_key, undo={"snapshot": ctx.snapshot_key})  # fmt: skip
    guards.rbac_deletable(params.kind, obj, settings=s.settings)
    target = version_of(params.kind, obj)
    bind(ctx, target)
    snapshot_target(ctx, target=target, state={"object": obj})
    with contextlib.suppress(NotFound):  # deleted between our read and our delete: the wanted state
        s.call(_method(s, "delete", params.kind), *_where(params.name, params.namespace), what=f"delete {label}")
    return StepResult(action, Outcome.APPLIED, f"{label} deleted", target=target,
                      snapshot=ctx.snapshot_key, undo={"snapshot": ctx.snapshot_key})  # fmt: skip


def undo_delete(s: ClusterSession, params: DeleteRbacObjectParams, result: StepResult, ctx: StepContext) -> StepResult:
    key = result.undo.get("snapshot") or result.snapshot
    if not key:
        return StepResult(result.action, Outcome.NOOP, "no snapshot recorded: nothing to restore")
    document = verified_snapshot(ctx.snapshots, str(key), expected_hash=result.snapshot_hash, target=result.target)
    restored = restore(s, document, action=result.action)
    outcome = Outcome.UNDONE if restored.outcome is Outcome.APPLIED else restored.outcome
    return StepResult(result.action, outcome, restored.message, target=restored.target, undo=restored.undo)


def restorable(document: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The kind and the object to create from a snapshot: the server-set fields removed."""
    obj = document.get("object")
    kind = (document.get("target") or {}).get("kind")
    if not isinstance(obj, dict) or kind not in _SUFFIX:
        raise PermanentFailure("the snapshot holds no RBAC object to restore")
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in SERVER_FIELDS}
    target = document.get("target") or {}
    if (meta.get("name"), meta.get("namespace")) != (target.get("name"), target.get("namespace")):
        raise SnapshotRefused("the snapshot's object is not the target it records: nothing restored")
    clean = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    return kind, {**clean, "metadata": meta}


def _create(s: ClusterSession, kind: str, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
    from kubernetes import client

    namespace = obj["metadata"].get("namespace")
    body = getattr(client, f"V1{kind}").from_dict(obj)
    extra: dict[str, Any] = {"dry_run": DRY_RUN} if dry_run else {}
    args = (namespace, body) if namespace else (body,)
    what = f"{'dry-run ' if dry_run else ''}create {_describe(kind, obj['metadata']['name'], namespace)}"
    created: dict[str, Any] = s.call(_method(s, "create", kind), *args, what=what, **extra)
    return created


def preview_restore(s: ClusterSession, params: RestoreObjectParams, ctx: StepContext, *, action: str) -> Preview:
    """What would be re-created; the approval binds to the snapshot's content hash (`target.version`)."""
    try:
        document = ctx.snapshots.load(params.snapshot)
    except LookupError:
        raise SnapshotRefused(f"snapshot {params.snapshot} is missing") from None
    kind, obj = restorable(document)
    name, namespace = obj["metadata"]["name"], obj["metadata"].get("namespace")
    label = _describe(kind, name, namespace)
    target = TargetVersion(kind=kind, name=name, namespace=namespace, version=content_hash(document))
    try:
        _create(s, kind, obj, dry_run=True)
    except Conflict:
        return Preview(action, f"{label} exists already: nothing to restore", target=target, noop=True)
    changes = {k: obj[k] for k in CONTENT_FIELDS if k in obj}
    return Preview(action, f"{label} will be re-created", changes, target)


def apply_restore(s: ClusterSession, params: RestoreObjectParams, ctx: StepContext, *, action: str) -> StepResult:
    """Re-create exactly the snapshot the approvers saw in the preview, or nothing."""
    if ctx.expected is None:
        raise SnapshotRefused(f"snapshot {params.snapshot} was not previewed: there is no approved content to restore")
    document = verified_snapshot(ctx.snapshots, params.snapshot, expected_hash=ctx.expected.version,
                                 target=ctx.expected)  # fmt: skip
    return restore(s, document, action=action)


def restore(s: ClusterSession, document: dict[str, Any], *, action: str) -> StepResult:
    kind, obj = restorable(document)
    name, namespace = obj["metadata"]["name"], obj["metadata"].get("namespace")
    label = _describe(kind, name, namespace)
    try:
        created = _create(s, kind, obj)
    except Conflict:
        existing = read(s, kind, name, namespace)
        return _restored_already(kind, obj, existing, action=action)
    target = version_of(kind, created)
    return StepResult(action, Outcome.APPLIED, f"{label} restored", target=target, undo={"created_uid": target.uid})


def _restored_already(kind: str, obj: dict[str, Any], existing: dict[str, Any], *, action: str) -> StepResult:
    label = _describe(kind, obj["metadata"]["name"], obj["metadata"].get("namespace"))
    if any(existing.get(k) != obj.get(k) for k in CONTENT_FIELDS):
        raise PermanentFailure(f"{label} exists with other rules or subjects than the snapshot: left alone")
    message = f"{label} exists as in the snapshot: nothing to do"
    return StepResult(action, Outcome.NOOP, message, target=version_of(kind, existing))


def undo_restore(s: ClusterSession, params: RestoreObjectParams, result: StepResult, ctx: StepContext) -> StepResult:
    """Delete what the restore created, and only that (same uid)."""
    target = result.target
    if target is None or not result.undo.get("created_uid"):
        return StepResult(result.action, Outcome.NOOP, "the restore created nothing: nothing to undo")
    label = _describe(target.kind, target.name, target.namespace)
    try:
        live = read(s, target.kind, target.name, target.namespace)
    except NotFound:
        return StepResult(result.action, Outcome.NOOP, f"{label} is gone already", target=target)
    if live["metadata"].get("uid") != result.undo["created_uid"]:
        return StepResult(result.action, Outcome.NOOP, f"{label} was re-created by someone else: left alone")
    s.call(_method(s, "delete", target.kind), *_where(target.name, target.namespace), what=f"delete {label}")
    return StepResult(result.action, Outcome.UNDONE, f"{label} deleted again", target=target)


class DeleteRbacObjectParams(ClusterParams):
    kind: Literal["ClusterRoleBinding", "RoleBinding", "ClusterRole", "Role"]
    name: RbacName
    namespace: Namespace | None = Field(
        default=None,
        validate_default=True,
        description="DNS-1123 label; required for RoleBinding and Role, left out otherwise",
    )

    # A field validator rather than a model validator, so the error names `namespace` and the
    # playbook loader can point at the offending parameter.
    @field_validator("namespace")
    @classmethod
    def _namespace_fits_kind(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind")
        if kind in NAMESPACED_RBAC_KINDS and value is None:
            raise ValueError(f"required for kind {kind}")
        if kind in CLUSTER_RBAC_KINDS and value is not None:
            raise ValueError(f"must be left out for kind {kind}, which is cluster-wide")
        return value


class RestoreObjectParams(ClusterParams):
    snapshot: str = Field(min_length=1, max_length=1024, description="the snapshot id an undo record names")


class DeleteRbacObject(KubernetesAction[DeleteRbacObjectParams]):
    name = "kubernetes.delete_rbac_object"
    summary = (
        "Delete a ClusterRoleBinding, RoleBinding, ClusterRole or Role after snapshotting it. "
        "Undo: kubernetes.restore_object from the snapshot (break-glass role), refused if the snapshot changed."
    )
    Params = DeleteRbacObjectParams
    permissions = tuple(p for r in RBAC_RESOURCES for p in rules(f"rbac.authorization.k8s.io/{r}", "get", "delete"))
    example = {"cluster": EXAMPLE_CLUSTER_ID, "kind": "ClusterRoleBinding", "name": "dev-cluster-admin"}
    destructive = True
    inverse = "kubernetes.restore_object"

    def preview_on(self, s: ClusterSession, params: DeleteRbacObjectParams, ctx: StepContext) -> Preview:
        return preview_delete(s, params, ctx, action=self.name)

    def apply_on(self, s: ClusterSession, params: DeleteRbacObjectParams, ctx: StepContext) -> StepResult:
        return apply_delete(s, params, ctx, action=self.name)

    def undo_on(
        self, s: ClusterSession, params: DeleteRbacObjectParams, result: StepResult, ctx: StepContext
    ) -> StepResult:
        return undo_delete(s, params, result, ctx)


class RestoreObject(KubernetesAction[RestoreObjectParams]):
    name = "kubernetes.restore_object"
    summary = (
        "Recreate an object from the snapshot taken before a destructive action, only if the snapshot is "
        "unchanged since its preview (content hash). Break-glass: re-creating roles and bindings needs "
        "`create`, `bind` and `escalate`, which are in deploy/kubernetes/break-glass.yaml, bound only when needed."
    )
    Params = RestoreObjectParams
    permissions = (
        *(p for r in RBAC_RESOURCES for p in rules(f"rbac.authorization.k8s.io/{r}", "get", "create")),
        *(p for r in ("clusterroles", "roles") for p in rules(f"rbac.authorization.k8s.io/{r}", "bind", "escalate")),
    )
    example = {"cluster": EXAMPLE_CLUSTER, "snapshot": "snapshots/2024-11-21/inc-0001/step-0.json"}
    destructive = False
    break_glass = True

    def preview_on(self, s: ClusterSession, params: RestoreObjectParams, ctx: StepContext) -> Preview:
        return preview_restore(s, params, ctx, action=self.name)

    def apply_on(self, s: ClusterSession, params: RestoreObjectParams, ctx: StepContext) -> StepResult:
        return apply_restore(s, params, ctx, action=self.name)

    def undo_on(
        self, s: ClusterSession, params: RestoreObjectParams, result: StepResult, ctx: StepContext
    ) -> StepResult:
        return undo_restore(s, params, result, ctx)


ACTIONS = (DeleteRbacObject, RestoreObject)
