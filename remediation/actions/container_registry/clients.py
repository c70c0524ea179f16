"""Builds and caches the three Azure SDK clients the registry family uses, with bounded timeouts.

Neighbours: `acr_data` (ContainerRegistryClient, the registry's data plane), `arm`
(ContainerRegistryManagementClient, control plane), `remediation.push_policy.findings`
(ResourceGraphClient). The SDKs are imported here, lazily, on first use. Their built-in retry
policies are switched off (`retry_total=0`): `calls.call` retries, once, with an injectable sleep.

In Azure the credential is DefaultAzureCredential (the app's managed identity; AZURE_CLIENT_ID picks
a user-assigned one). Tests inject a credential and point `Endpoints` at a local TLS server.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from azure.containerregistry import ContainerRegistryClient
    from azure.core.credentials import TokenCredential
    from azure.mgmt.containerregistry import ContainerRegistryManagementClient
    from azure.mgmt.resourcegraph import ResourceGraphClient

ACR_AUDIENCE = "https://containerregistry.azure.net"


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where the clients connect. The defaults are public Azure; sovereign clouds and tests override."""

    arm_base_url: str = "https://management.azure.com"
    graph_base_url: str = ""  # Resource Graph; "": the ARM endpoint
    data_endpoint: str = "https://{login_server}"  # format string; `{login_server}` is filled in
    acr_audience: str = ACR_AUDIENCE
    connection_verify: str | bool = True  # a CA bundle path in tests
    connection_timeout: float = 5.0
    read_timeout: float = 30.0
    polling_interval: float = 5.0  # seconds between polls of a long-running operation
    # One azure-core transport under all three clients (the composition's, over a session that reads
    # the proxy environment only when a proxy is set); None: each client makes its own from the above.
    transport: Any = field(default=None, compare=False)

    def transport_kwargs(self) -> dict[str, Any]:
        if self.transport is not None:
            return {"transport": self.transport, "retry_total": 0}
        return {
            "connection_verify": self.connection_verify,
            "connection_timeout": self.connection_timeout,
            "read_timeout": self.read_timeout,
            "retry_total": 0,
        }


class RegistryClients:
    """One client per registry (data plane) and per subscription (control plane), built once each."""

    def __init__(self, *, credential: TokenCredential | None = None, endpoints: Endpoints | None = None) -> None:
        self._credential = credential
        self.endpoints = endpoints or Endpoints()
        self._data: dict[str, ContainerRegistryClient] = {}
        self._mgmt: dict[str, ContainerRegistryManagementClient] = {}
        self._graph: ResourceGraphClient | None = None
        self._lock = threading.Lock()

    @property
    def credential(self) -> TokenCredential:
        with self._lock:
            if self._credential is None:
                from azure.identity import DefaultAzureCredential

                self._credential = DefaultAzureCredential()
            return self._credential

    def data(self, login_server: str) -> ContainerRegistryClient:
        from azure.containerregistry import ContainerRegistryClient

        credential = self.credential
        with self._lock:
            if login_server not in self._data:
                self._data[login_server] = ContainerRegistryClient(
                    self.endpoints.data_endpoint.format(login_server=login_server),
                    credential,
                    audience=self.endpoints.acr_audience,
                    **self.endpoints.transport_kwargs(),
                )
            return self._data[login_server]

    def mgmt(self, subscription_id: str) -> ContainerRegistryManagementClient:
        from azure.mgmt.containerregistry import ContainerRegistryManagementClient

        credential = self.credential
        with self._lock:
            if subscription_id not in self._mgmt:
                self._mgmt[subscription_id] = ContainerRegistryManagementClient(
                    credential,
                    subscription_id,
                    base_url=self.endpoints.arm_base_url,
                    credential_scopes=[f"{self.endpoints.arm_base_url.rstrip('/')}/.default"],
                    **self.endpoints.transport_kwargs(),
                )
            return self._mgmt[subscription_id]

    def graph(self) -> ResourceGraphClient:
        from azure.mgmt.resourcegraph import ResourceGraphClient

        credential = self.credential
        with self._lock:
            if self._graph is None:
                self._graph = ResourceGraphClient(
                    credential,
                    base_url=self.endpoints.graph_base_url or self.endpoints.arm_base_url,
                    credential_scopes=[f"{self.endpoints.arm_base_url.rstrip('/')}/.default"],
                    **self.endpoints.transport_kwargs(),
                )
            return self._graph

    def close(self) -> None:
        with self._lock:
            clients: list[Any] = [*self._data.values(), *self._mgmt.values(), self._graph]
            self._data.clear()
            self._mgmt.clear()
            self._graph = None
        for client in clients:
            if client is not None:
                client.close()
