"""How a cluster is reached: a kubeconfig from settings, or an AKS resource id with an Entra token.

Neighbours: `handler.KubernetesActions` asks `ClusterClients.get(cluster)` for a cached `ApiClient`
per cluster; `session.ClusterSession` wraps it with timeouts and retries. The AKS path reads the API
server's FQDN (`managed_clusters.get`) and CA (`list_cluster_user_credentials`) through
azure-mgmt-containerservice, and authenticates with a token for the AKS server application,
refreshed before it expires by the kubernetes client's `refresh_api_key_hook`.
Heavy SDKs are imported inside the functions that use them.
"""

from __future__ import annotations

import base64
import logging
import re
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from remediation.actions.kubernetes import guards
from remediation.actions.runtime import PermanentFailure, TransientFailure
from remediation.settings import KubernetesSettings

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

logger = logging.getLogger(__name__)

AKS_SERVER_SCOPE = "6dae42f8-4368-4678-94ff-3960e28e3630/.default"
REFRESH_MARGIN_SECONDS = 300.0
_AKS_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)"
    r"/providers/microsoft\.containerservice/managedclusters/(?P<name>[^/]+)$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class AksEndpoint:
    server: str  # https://<fqdn>:443
    ca_data: bytes | None  # PEM


def bearer_refresh_hook(
    credential: TokenCredential, *, clock: Callable[[], float] = time.time, margin: float = REFRESH_MARGIN_SECONDS
) -> Callable[[Any], None]:
    """A `Configuration.refresh_api_key_hook` that fetches a new token `margin` seconds before expiry."""
    lock = threading.Lock()
    expires_on = [0.0]

    def refresh(configuration: Any) -> None:
        with lock:
            if clock() < expires_on[0] - margin:
                return
            token = credential.get_token(AKS_SERVER_SCOPE)
            configuration.api_key["BearerToken"] = token.token
            configuration.api_key_prefix["BearerToken"] = "Bearer"
            expires_on[0] = float(token.expires_on)
            logger.info("kubernetes token refreshed", extra={"host": configuration.host, "expires_on": expires_on[0]})

    return refresh


POOL_SIZE = 64  # above the drain's largest max_concurrency (50): no eviction waits for a connection


def token_api_client(
    *, server: str, credential: TokenCredential, ca_data: bytes | None = None, clock: Callable[[], float] = time.time
) -> Any:
    """An ApiClient for `server` that authenticates with Entra tokens for the AKS server application."""
    from kubernetes import client

    configuration: Any = client.Configuration(host=server)
    configuration.retries = False  # retries are ours (tenacity), bounded and visible
    configuration.connection_pool_maxsize = POOL_SIZE
    if ca_data:
        configuration.ssl_ca_cert = _ca_file(ca_data)
    configuration.refresh_api_key_hook = bearer_refresh_hook(credential, clock=clock)
    configuration.refresh_api_key_hook(configuration)
    return client.ApiClient(configuration)


def kubeconfig_api_client(path: str) -> Any:
    """An ApiClient from a kubeconfig file (its current context); exec plugins such as kubelogin work."""
    from kubernetes import client, config

    configuration = client.Configuration()
    try:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=path, client_configuration=configuration, persist_config=False
        )
    except (OSError, config.ConfigException) as exc:
        raise PermanentFailure(f"cannot load kubeconfig {path}: {exc}") from exc
    configuration.retries = False
    configuration.connection_pool_maxsize = POOL_SIZE
    return client.ApiClient(configuration)


def resolve_aks(resource_id: str, *, credential: TokenCredential, **client_kwargs: Any) -> AksEndpoint:
    """The API server URL and CA of an AKS cluster, from ARM."""
    from azure.core.exceptions import HttpResponseError
    from azure.mgmt.containerservice import ContainerServiceClient
    from yaml import safe_load

    match = _AKS_ID.fullmatch(resource_id)
    if match is None:
        raise PermanentFailure(f"not an AKS resource id: {resource_id}")
    arm = ContainerServiceClient(credential, match["sub"], **client_kwargs)
    try:
        cluster = arm.managed_clusters.get(match["rg"], match["name"])
        fqdn = cluster.fqdn or cluster.private_fqdn
        if not fqdn:
            raise PermanentFailure(f"AKS cluster {match['name']} reports no API server FQDN")
        credentials = arm.managed_clusters.list_cluster_user_credentials(match["rg"], match["name"])
    except HttpResponseError as exc:
        status = exc.status_code or 0
        detail = exc.error.message if exc.error and exc.error.message else exc.reason
        message = f"cannot resolve AKS cluster {match['name']} in resource group {match['rg']}: {status} {detail}"
        if status in (408, 429) or status >= 500:
            raise TransientFailure(message) from exc
        raise PermanentFailure(message) from exc
    ca_data = None
    for kubeconfig in credentials.kubeconfigs or []:
        for entry in (safe_load(kubeconfig.value or b"") or {}).get("clusters", []):
            encoded = entry.get("cluster", {}).get("certificate-authority-data")
            ca_data = base64.b64decode(encoded) if encoded else ca_data
    return AksEndpoint(server=f"https://{fqdn}:443", ca_data=ca_data)


class ClusterClients:
    """One ApiClient per cluster per worker, created on first use and cached."""

    def __init__(
        self,
        *,
        settings: KubernetesSettings,
        credential: TokenCredential | None = None,
        arm_kwargs: dict[str, Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._credential = credential
        self._arm_kwargs = arm_kwargs or {}
        self._clock = clock  # when AKS tokens are due for refresh
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, cluster: str) -> Any:
        """The client for `cluster` (a configured name or an AKS resource id); one per kubeconfig or cluster.
        A cluster outside the allow-list (`guards.cluster_allowed`) is refused before anything is reached."""
        key = guards.cluster_allowed(cluster, settings=self._settings)
        path = self._kubeconfig_for(key)
        cache_key = f"kubeconfig:{path}" if path else key
        with self._lock:
            if cache_key not in self._clients:
                self._clients[cache_key] = self._from_kubeconfig(key, path) if path else self._from_aks(key)
            return self._clients[cache_key]

    def _kubeconfig_for(self, key: str) -> str | None:
        """The kubeconfig keyed exactly `key`; for an AKS id listed in REMEDIATION_CLUSTERS, the one
        keyed by its bare name. An unlisted id never borrows a same-named kubeconfig: another
        subscription may have a cluster of that name."""
        if key in self._settings.kubeconfigs:
            return self._settings.kubeconfigs[key]
        match = _AKS_ID.fullmatch(key)
        if match is None or key not in self._settings.clusters:
            return None
        return self._settings.kubeconfigs.get(match["name"].lower())

    @staticmethod
    def _from_kubeconfig(key: str, path: str) -> Any:
        logger.info("kubernetes client from kubeconfig", extra={"cluster": key, "kubeconfig": path})
        return kubeconfig_api_client(path)

    def _from_aks(self, key: str) -> Any:
        if not _AKS_ID.fullmatch(key):
            raise PermanentFailure(f"no kubeconfig configured for cluster {key!r}, and it is not an AKS resource id")
        credential = self._credential or _default_credential()
        endpoint = resolve_aks(key, credential=credential, **self._arm_kwargs)
        logger.info("kubernetes client for AKS", extra={"cluster": key, "server": endpoint.server})
        return token_api_client(
            server=endpoint.server, credential=credential, ca_data=endpoint.ca_data, clock=self._clock
        )

    def close(self) -> None:
        with self._lock:
            for api_client in self._clients.values():
                api_client.close()
            self._clients.clear()


def _default_credential() -> TokenCredential:
    from azure.identity import DefaultAzureCredential

    credential: TokenCredential = DefaultAzureCredential()
    return credential


def _ca_file(ca_data: bytes) -> str:
    # The kubernetes client wants a CA path; the file lives as long as the worker.
    with tempfile.NamedTemporaryFile("wb", suffix=".crt", delete=False) as handle:
        handle.write(ca_data)
    return handle.name
