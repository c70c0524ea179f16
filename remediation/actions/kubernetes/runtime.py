"""What every Kubernetes action shares: the runtime (clients, settings, retries) and the base class.

Neighbours: the composition root builds one `KubernetesRuntime`; `dispatch.ActionSet` hands it to
each `KubernetesAction` (`nodes`, `rbac`, `pods`, `workloads`). The base class opens a
`session.ClusterSession` on the parameters' cluster and passes it to the action's own
`preview_on` / `apply_on` / `undo_on`, so an action module only speaks about its objects.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar

from remediation.actions.base import Action
from remediation.actions.kubernetes import guards
from remediation.actions.kubernetes.params import ClusterParams
from remediation.actions.kubernetes.session import ClusterSession
from remediation.actions.runtime import Preview, StepContext, StepResult
from remediation.retry import RetryPolicy
from remediation.settings import KubernetesSettings


class ClientSource(Protocol):
    """Where API clients come from: `connect.ClusterClients`, or anything with the same `get`."""

    def get(self, cluster: str) -> Any: ...


@dataclass(frozen=True, slots=True)
class KubernetesRuntime:
    clients: ClientSource
    settings: KubernetesSettings = field(default_factory=KubernetesSettings)
    retry: RetryPolicy | None = None  # None: bounded by the settings' attempts and seconds

    def session(self, cluster: str) -> ClusterSession:
        retry = self.retry or RetryPolicy(
            attempts=self.settings.retry_attempts, max_seconds=self.settings.retry_max_seconds, max_retry_after=None
        )
        guards.cluster_allowed(cluster, settings=self.settings)  # whatever the client source does
        return ClusterSession(cluster, self.clients.get(cluster), self.settings, retry)


P = TypeVar("P", bound=ClusterParams)


class KubernetesAction(Action[P, KubernetesRuntime]):
    """A `kubernetes.*` action: its parameters name a cluster, and it works through a session on it."""

    Runtime: ClassVar[type] = KubernetesRuntime

    def preview(self, params: P, ctx: StepContext) -> Preview:
        return self.preview_on(self._session(params), params, ctx)

    def apply(self, params: P, ctx: StepContext) -> StepResult:
        return self.apply_on(self._session(params), params, ctx)

    def undo(self, params: P, result: StepResult, ctx: StepContext) -> StepResult:
        return self.undo_on(self._session(params), params, result, ctx)

    @abstractmethod
    def preview_on(self, s: ClusterSession, params: P, ctx: StepContext) -> Preview: ...

    @abstractmethod
    def apply_on(self, s: ClusterSession, params: P, ctx: StepContext) -> StepResult: ...

    @abstractmethod
    def undo_on(self, s: ClusterSession, params: P, result: StepResult, ctx: StepContext) -> StepResult: ...

    def _session(self, params: P) -> ClusterSession:
        return self.runtime.session(self.typed(params).cluster)
