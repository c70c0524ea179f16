"""One cluster, as the action modules see it: typed-API groups, a timeout on every call, bounded retries.

Neighbours: `runtime` builds a `ClusterSession` per step from `connect.ClusterClients`; the action
modules (`nodes`, `rbac`, `pods`, `workloads`) call the API only through `ClusterSession.call`,
which answers plain JSON dicts (camelCase, as the API server wrote them), the same shape the
snapshots store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from remediation.actions.kubernetes.errors import ApiTransient, translate
from remediation.actions.runtime import TransientFailure
from remediation.retry import RetryPolicy
from remediation.settings import KubernetesSettings

DRY_RUN = "All"


@dataclass(frozen=True, slots=True)
class ClusterSession:
    cluster: str
    api_client: Any
    settings: KubernetesSettings
    retry: RetryPolicy

    @property
    def core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api_client)

    @property
    def apps(self) -> Any:
        from kubernetes import client

        return client.AppsV1Api(self.api_client)

    @property
    def rbac(self) -> Any:
        from kubernetes import client

        return client.RbacAuthorizationV1Api(self.api_client)

    @property
    def networking(self) -> Any:
        from kubernetes import client

        return client.NetworkingV1Api(self.api_client)

    def call(
        self, method: Callable[..., Any], *args: Any, what: str, retry_throttled: bool = True, **kwargs: Any
    ) -> Any:
        """`method(*args, **kwargs)` with the request timeout and retries; the answer as a JSON dict."""
        timeout = self.settings.request_timeout_seconds

        def once() -> Any:
            return method(*args, _request_timeout=timeout, **kwargs)

        described = f"{what} on {self.cluster}"

        def retryable(exc: BaseException) -> bool:
            throttled = isinstance(exc, ApiTransient) and exc.status == 429
            return isinstance(exc, TransientFailure) and (retry_throttled or not throttled)

        answer = self.retry.call(
            once, what=described, classify=lambda exc: translate(exc, what=described), retryable=retryable
        )
        return self.api_client.sanitize_for_serialization(answer)


def write_fresh(
    session: ClusterSession,
    current: dict[str, Any],
    *,
    read: Callable[[], dict[str, Any]],
    write: Callable[[dict[str, Any]], Any],
    what: str,
) -> Any:
    """`write(current)` (which sends current's resourceVersion); on a 409, re-read and try once more."""
    from remediation.actions.kubernetes.errors import Conflict

    try:
        return write(current)
    except Conflict:
        pass
    try:
        return write(read())
    except Conflict as exc:
        raise Conflict(f"{what} on {session.cluster}: the object changed twice under us (409): {exc}") from exc


def precondition(obj: dict[str, Any]) -> dict[str, Any]:
    """The metadata that makes a patch fail with 409 when the object moved since `obj` was read."""
    return {"resourceVersion": obj["metadata"]["resourceVersion"]}
