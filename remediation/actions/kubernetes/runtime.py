"""`KubernetesActions`: the `ActionHandler` for every `kubernetes.*` action of the registry.

Neighbours: the executor calls `preview`, `apply` and `undo` with the action's name, its validated
parameter model (from `remediation.actions.registry`) and a `StepContext`; this module picks the
implementation (`nodes`, `rbac`, `pods`, `workloads`), builds a `session.ClusterSession` for the
parameters' cluster from `connect.ClusterClients`, and logs each step's result once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import Any, Protocol

from pydantic import BaseModel

from remediation.actions import kubernetes as params
from remediation.actions.k8s import nodes, pods, rbac, workloads
from remediation.actions.k8s.connect import ClusterClients
from remediation.actions.k8s.retry import RetryPolicy
from remediation.actions.k8s.session import ClusterSession
from remediation.actions.k8s.settings import KubernetesSettings
from remediation.actions.runtime import PermanentFailure, Preview, StepContext, StepResult

logger = logging.getLogger(__name__)


class ClientSource(Protocol):
    """Where API clients come from: `connect.ClusterClients`, or anything with the same `get`."""

    def get(self, cluster: str) -> Any: ...


@dataclass(frozen=True, slots=True)
class _Step:
    params: type[BaseModel]
    preview: Callable[[ClusterSession, Any, StepContext], Preview]
    apply: Callable[[ClusterSession, Any, StepContext], StepResult]
    undo: Callable[[ClusterSession, Any, StepResult, StepContext], StepResult]


_Row = tuple[type[BaseModel], Callable[..., Preview], Callable[..., StepResult], Callable[..., StepResult]]


def _steps() -> Mapping[str, _Step]:
    table: dict[str, _Row] = {
        "kubernetes.cordon_node": (params.CordonNodeParams, partial(nodes.preview_cordon, want=True),
                                   partial(nodes.apply_cordon, want=True), nodes.undo_cordon_step),
        "kubernetes.uncordon_node": (params.UncordonNodeParams, partial(nodes.preview_cordon, want=False),
                                     partial(nodes.apply_cordon, want=False), nodes.undo_uncordon_step),
        "kubernetes.drain_node": (params.DrainNodeParams, nodes.preview_drain, nodes.apply_drain, nodes.undo_drain),
        "kubernetes.delete_rbac_object": (params.DeleteRbacObjectParams, rbac.preview_delete, rbac.apply_delete,
                                          rbac.undo_delete),
        "kubernetes.restore_object": (params.RestoreObjectParams, rbac.preview_restore, rbac.apply_restore,
                                      rbac.undo_restore),
        "kubernetes.isolate_pod": (params.IsolatePodParams, pods.preview_isolate, pods.apply_isolate,
                                   pods.undo_isolate),
        "kubernetes.release_pod": (params.ReleasePodParams, pods.preview_release, pods.apply_release,
                                   pods.undo_release),
        "kubernetes.delete_pod": (params.DeletePodParams, pods.preview_delete, pods.apply_delete, pods.undo_delete),
        "kubernetes.scale_to_zero": (params.ScaleToZeroParams, workloads.preview, workloads.apply, workloads.undo),
    }  # fmt: skip
    return MappingProxyType(
        {
            name: _Step(model, partial(preview, action=name), partial(apply, action=name), undo)
            for name, (model, preview, apply, undo) in table.items()
        }
    )


STEPS = _steps()


class KubernetesActions:
    """One handler for all clusters; clients are cached per cluster by `clients`."""

    def __init__(
        self, *, clients: ClientSource, settings: KubernetesSettings, retry: RetryPolicy | None = None
    ) -> None:
        self._clients = clients
        self._settings = settings
        self._retry = retry or RetryPolicy(attempts=settings.retry_attempts, max_seconds=settings.retry_max_seconds)

    @classmethod
    def from_env(cls) -> KubernetesActions:
        settings = KubernetesSettings.from_env()
        return cls(clients=ClusterClients(settings=settings), settings=settings)

    @property
    def actions(self) -> frozenset[str]:
        return frozenset(STEPS)

    def session(self, cluster: str) -> ClusterSession:
        return ClusterSession(cluster, self._clients.get(cluster), self._settings, self._retry)

    def preview(self, action: str, params: BaseModel, ctx: StepContext) -> Preview:
        step = self._step(action, params)
        return step.preview(self._session_for(params), params, ctx)

    def apply(self, action: str, params: BaseModel, ctx: StepContext) -> StepResult:
        step = self._step(action, params)
        return self._logged(ctx, step.apply(self._session_for(params), params, ctx))

    def undo(self, action: str, params: BaseModel, result: StepResult, ctx: StepContext) -> StepResult:
        step = self._step(action, params)
        return self._logged(ctx, step.undo(self._session_for(params), params, result, ctx))

    def _step(self, action: str, params: BaseModel) -> _Step:
        step = STEPS.get(action)
        if step is None:
            raise PermanentFailure(f"{action} is not a Kubernetes action (known: {', '.join(sorted(STEPS))})")
        if not isinstance(params, step.params):
            raise PermanentFailure(f"{action} takes {step.params.__name__}, not {type(params).__name__}")
        return step

    def _session_for(self, params: BaseModel) -> ClusterSession:
        return self.session(str(getattr(params, "cluster")))  # noqa: B009 - every model has it; mypy sees BaseModel

    @staticmethod
    def _logged(ctx: StepContext, result: StepResult) -> StepResult:
        target = result.target
        logger.info(
            "%s: %s",
            result.action,
            result.message,
            extra={
                "incident_id": ctx.incident_id,
                "step": ctx.step,
                "action": result.action,
                "outcome": result.outcome.value,
                "target": f"{target.kind}/{target.namespace or ''}/{target.name}" if target else None,
            },
        )
        return result
