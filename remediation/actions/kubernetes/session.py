"""One cluster, as the action modules see it: typed-API groups, a timeout on every call, bounded retries.

Neighbours: `runtime` builds a `ClusterSession` per step from `connect.ClusterClients`; the action
modules (`nodes`, `rbac`, `pods`, `workloads`) call the API only through `ClusterSession.call`
(a typed API method) or `get` / `patch` (a path), which answer plain JSON dicts (camelCase, as the
API server wrote them), the same shape the snapshots store.

What an alert's opening reads (the previews of nodes and pods, where an image runs) goes by path:
importing the typed `CoreV1Api` costs more than half a second of the first event after a cold
start, for hundreds of models those reads never use.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from remediation.actions.kubernetes.errors import ApiTransient, translate
from remediation.actions.runtime import TransientFailure
from remediation.retry import RetryPolicy
from remediation.settings import KubernetesSettings

DRY_RUN = "All"
NODES = "/api/v1/nodes"
NODE = "/api/v1/nodes/{name}"
PODS = "/api/v1/pods"  # of every namespace
POD = "/api/v1/namespaces/{namespace}/pods/{name}"


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

        answer = self._retried(once, what=what, retry_throttled=retry_throttled)
        return self.api_client.sanitize_for_serialization(answer)

    def get(self, path: str, *, what: str, query: Mapping[str, str] | None = None, **names: str) -> Any:
        """GET `path` (`{name}` placeholders filled from `names`, quoted) with retries, as a JSON dict."""
        return self._retried(lambda: self._send("GET", path, names, query), what=what, retry_throttled=True)

    def patch(self, path: str, body: Mapping[str, Any], *, what: str, dry_run: bool = False, **names: str) -> Any:
        """A strategic-merge PATCH of `path` (a dry run: nothing stored), as the typed API sends it."""
        query = {"dryRun": DRY_RUN} if dry_run else None
        return self._retried(
            lambda: self._send("PATCH", path, names, query, body=body), what=what, retry_throttled=True
        )

    def _send(
        self,
        method: str,
        path: str,
        names: Mapping[str, str],
        query: Mapping[str, str] | None,
        *,
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        from kubernetes.client.exceptions import ApiException

        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json-patch+json"  # an object: sent as a strategic merge
        request = self.api_client.param_serialize(
            method=method,
            resource_path=path,
            path_params=dict(names),
            query_params=list((query or {}).items()),
            header_params=headers,
            body=dict(body) if body is not None else None,
            auth_settings=["BearerToken"],
        )
        response = self.api_client.call_api(*request, _request_timeout=self.settings.request_timeout_seconds)
        response.read()
        if not 200 <= response.status <= 299:
            raise ApiException.from_response(http_resp=response, body=None, data=None)
        return json.loads(response.data)

    def _retried(self, once: Callable[[], Any], *, what: str, retry_throttled: bool) -> Any:
        described = f"{what} on {self.cluster}"

        def retryable(exc: BaseException) -> bool:
            throttled = isinstance(exc, ApiTransient) and exc.status == 429
            return isinstance(exc, TransientFailure) and (retry_throttled or not throttled)

        return self.retry.call(
            once, what=described, classify=lambda exc: translate(exc, what=described), retryable=retryable
        )


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
