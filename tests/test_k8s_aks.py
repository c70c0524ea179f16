"""The AKS path of `ClusterClients`: ARM tells the API server FQDN and CA, Entra tokens authenticate.

A local TLS server (a `trustme` CA) answers the two ARM calls azure-mgmt-containerservice makes
(`managedClusters/{name}` and `listClusterUserCredential`) and one Kubernetes call (`GET
/api/v1/nodes/n1`), and records every request. The real `ContainerServiceClient` reaches it through
`ClusterClients(arm_kwargs={"base_url": ..., "connection_verify": ...})`; the kubeconfig it returns
carries the same CA, so the kubernetes client verifies the API server with what ARM handed over.
Time is a list the tests move; nothing sleeps.
"""

from __future__ import annotations

import base64
import json
import re
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from acr_server import Recorded, parse_query
from remediation.actions.kubernetes import ClusterClients, KubernetesSettings
from remediation.actions.kubernetes.connect import AKS_SERVER_SCOPE
from remediation.actions.runtime import PermanentFailure, TransientFailure

SUBSCRIPTION = "11111111-2222-3333-4444-555555555555"
RESOURCE_GROUP = "rg-aks"
NAME = "aks-prod"
FQDN = "aks-prod-dns-1a2b3c4d.hcp.westeurope.azmk8s.io"
PRIVATE_FQDN = "aks-prod-dns-1a2b3c4d.privatelink.westeurope.azmk8s.io"
API_VERSION = "2026-08-01"  # azure-mgmt-containerservice 41.8's default
ARM_SCOPE = "https://management.azure.com/.default"
START = 2_000_000_000.0  # the fake clock's epoch (2033): ARM's own token check sees valid tokens


def cluster_id(name: str = NAME) -> str:
    return (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
        f"/providers/Microsoft.ContainerService/managedClusters/{name}"
    )


_CLUSTER = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.ContainerService"
    r"/managedClusters/(?P<name>[^/]+)(?P<rest>/listClusterUserCredential)?$"
)


class AksServer:
    """ARM for managed clusters plus a one-node API server, over TLS on 127.0.0.1."""

    def __init__(self, directory: Path) -> None:
        ca = trustme.CA()
        self.ca_pem = ca.cert_pem.bytes()
        self.ca_path = directory / "aks-ca.pem"
        self.ca_path.write_bytes(self.ca_pem)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        self.clusters: dict[str, dict[str, Any]] = {NAME: {"fqdn": FQDN, "privateFQDN": None}}
        self.arm_status: int | None = None  # answer every ARM call with this status instead
        self.requests: list[Recorded] = []
        self.lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.01,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def arm_calls(self) -> list[tuple[str, str, str]]:
        return [(r.method, r.path, r.query.get("api-version", "")) for r in self.requests if r.path.startswith("/sub")]

    def authorizations(self, prefix: str) -> list[str]:
        return [r.headers.get("authorization", "") for r in self.requests if r.path.startswith(prefix)]

    def kubeconfig(self, name: str, fqdn: str) -> str:
        """What `listClusterUserCredential` returns for an Entra-enabled cluster (exec plugin, not a token)."""
        user = f"clusterUser_{RESOURCE_GROUP}_{name}"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": name,
                    "cluster": {
                        "server": f"https://{fqdn}:443",
                        "certificate-authority-data": base64.b64encode(self.ca_pem).decode(),
                    },
                }
            ],
            "contexts": [{"name": name, "context": {"cluster": name, "user": user}}],
            "current-context": name,
            "users": [
                {
                    "name": user,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "kubelogin",
                            "args": ["get-token", "--server-id", AKS_SERVER_SCOPE.removesuffix("/.default")],
                        }
                    },
                }
            ],
        }
        return base64.b64encode(yaml.safe_dump(config).encode()).decode()


def _handler(server: AksServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _serve(self) -> None:
            path, _, query = self.path.partition("?")
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            with server.lock:
                server.requests.append(Recorded(self.command, path, parse_query(query), headers, body or None))
            if not headers.get("authorization", "").startswith("Bearer "):
                return self.send(401, {"error": {"code": "AuthenticationFailed", "message": "no bearer token"}})
            if path == "/api/v1/nodes/n1" and self.command == "GET":
                return self.send(200, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "uid": "u1"}})
            match = _CLUSTER.match(path)
            if match is None:
                return self.send(404, {"error": {"code": "NotFound", "message": path}})
            if server.arm_status is not None:
                return self.send(server.arm_status, {"error": {"code": "Scripted", "message": "scripted fault"}})
            cluster = server.clusters.get(match["name"])
            if cluster is None:
                message = (
                    f"The Resource 'Microsoft.ContainerService/managedClusters/{match['name']}' under resource group "
                    f"'{match['rg']}' was not found."
                )
                return self.send(404, {"error": {"code": "ResourceNotFound", "message": message}})
            fqdn = cluster["fqdn"] or cluster["privateFQDN"]
            if match["rest"] and self.command == "POST":
                value = server.kubeconfig(match["name"], fqdn)
                return self.send(200, {"kubeconfigs": [{"name": "clusterUser", "value": value}]})
            if not match["rest"] and self.command == "GET":
                return self.send(200, _cluster_json(path, match["name"], cluster))
            return self.send(405, {"error": {"code": "MethodNotAllowed", "message": self.command}})

        do_GET = do_POST = _serve

    return Handler


def _cluster_json(resource_id: str, name: str, cluster: dict[str, Any]) -> dict[str, Any]:
    properties = {
        "provisioningState": "Succeeded",
        "kubernetesVersion": "1.30.5",
        "dnsPrefix": f"{name}-dns",
        "azurePortalFQDN": f"{name}-dns-1a2b3c4d.portal.hcp.westeurope.azmk8s.io",
        "aadProfile": {"managed": True, "enableAzureRBAC": True},
        "apiServerAccessProfile": {"enablePrivateCluster": cluster["privateFQDN"] is not None},
    }
    properties.update({key: value for key, value in cluster.items() if value is not None})
    return {
        "id": resource_id,
        "name": name,
        "type": "Microsoft.ContainerService/ManagedClusters",
        "location": "westeurope",
        "properties": properties,
    }


class Tokens:
    """A TokenCredential on the fake clock: ARM tokens live an hour, AKS tokens ten minutes."""

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.scopes.extend(scopes)
        aks = scopes == (AKS_SERVER_SCOPE,)
        count = self.scopes.count(scopes[0])
        return AccessToken(f"{'aks' if aks else 'arm'}-token-{count}", int(self.clock[0] + (600 if aks else 3600)))


@pytest.fixture
def aks(tmp_path: Path) -> Iterator[AksServer]:
    server = AksServer(tmp_path)
    yield server
    server.close()


@pytest.fixture
def clock() -> list[float]:
    return [START]


def clients_for(server: AksServer, credential: Tokens, clock: list[float]) -> ClusterClients:
    return ClusterClients(
        settings=KubernetesSettings(
            clusters=frozenset(cluster_id(n).lower() for n in (NAME, "aks-private", "aks-gone"))
        ),
        credential=credential,
        arm_kwargs={"base_url": server.url, "connection_verify": str(server.ca_path), "retry_total": 0},
        clock=lambda: clock[0],
    )


def test_the_api_server_and_ca_come_from_arm(aks: AksServer, clock: list[float]) -> None:
    credential = Tokens(clock)
    clients = clients_for(aks, credential, clock)
    api = clients.get(cluster_id())
    base = cluster_id()
    assert aks.arm_calls() == [
        ("GET", base, API_VERSION),
        ("POST", f"{base}/listClusterUserCredential", API_VERSION),
    ]
    assert set(aks.authorizations("/subscriptions/")) == {"Bearer arm-token-1"}
    configuration = api.configuration
    assert configuration.host == f"https://{FQDN}:443"
    assert configuration.verify_ssl and Path(configuration.ssl_ca_cert).read_bytes() == aks.ca_pem
    assert configuration.api_key == {"BearerToken": "aks-token-1"}
    assert configuration.api_key_prefix == {"BearerToken": "Bearer"}
    assert sorted(credential.scopes) == sorted([ARM_SCOPE, AKS_SERVER_SCOPE])  # one token each
    # Cached per worker: the same id (in any case) asks ARM nothing more and no new token.
    assert clients.get(cluster_id().lower()) is api and clients.get(cluster_id().upper()) is api
    assert len(aks.arm_calls()) == 2 and credential.scopes.count(AKS_SERVER_SCOPE) == 1
    clients.close()


def test_the_refresh_hook_fetches_a_new_token_near_expiry(aks: AksServer, clock: list[float]) -> None:
    credential = Tokens(clock)
    configuration = clients_for(aks, credential, clock).get(cluster_id()).configuration
    hook = configuration.refresh_api_key_hook
    clock[0] += 299  # the token has 301 s left: still good
    hook(configuration)
    assert configuration.api_key["BearerToken"] == "aks-token-1"
    clock[0] += 2  # 299 s left: within the 5-minute margin
    hook(configuration)
    assert configuration.api_key["BearerToken"] == "aks-token-2"
    assert credential.scopes.count(AKS_SERVER_SCOPE) == 2
    assert len(aks.arm_calls()) == 2  # a token refresh is not a new resolution


def test_a_real_call_carries_the_token_and_trusts_the_ca_from_arm(aks: AksServer, clock: list[float]) -> None:
    from kubernetes.client import CoreV1Api

    api = clients_for(aks, Tokens(clock), clock).get(cluster_id())
    # No DNS for the FQDN here: point the resolved client at the loopback server, which presents a
    # certificate from the CA in ARM's kubeconfig. Token, CA and TLS verification are the resolved ones.
    api.configuration.host = aks.url
    core = CoreV1Api(api)
    node = core.read_node("n1")
    assert node.metadata is not None and node.metadata.uid == "u1"
    clock[0] += 400  # within 5 minutes of expiry
    core.read_node("n1")
    assert aks.authorizations("/api/") == ["Bearer aks-token-1", "Bearer aks-token-2"]


def test_a_private_cluster_is_reached_on_its_private_fqdn(aks: AksServer, clock: list[float]) -> None:
    aks.clusters["aks-private"] = {"fqdn": None, "privateFQDN": PRIVATE_FQDN}
    api = clients_for(aks, Tokens(clock), clock).get(cluster_id("aks-private"))
    assert api.configuration.host == f"https://{PRIVATE_FQDN}:443"


def test_a_missing_cluster_is_a_permanent_failure_naming_it(aks: AksServer, clock: list[float]) -> None:
    clients = clients_for(aks, Tokens(clock), clock)
    with pytest.raises(PermanentFailure, match=f"AKS cluster aks-gone in resource group {RESOURCE_GROUP}: 404") as err:
        clients.get(cluster_id("aks-gone"))
    assert not isinstance(err.value, TransientFailure)
    assert "was not found" in str(err.value)
    assert aks.arm_calls() == [("GET", cluster_id("aks-gone"), API_VERSION)]


def test_an_arm_outage_is_transient(aks: AksServer, clock: list[float]) -> None:
    aks.arm_status = 503
    clients = clients_for(aks, Tokens(clock), clock)
    with pytest.raises(TransientFailure, match=f"AKS cluster {NAME} .*: 503"):
        clients.get(cluster_id())
    aks.arm_status = None  # nothing was cached: the next attempt resolves
    assert clients.get(cluster_id()).configuration.host == f"https://{FQDN}:443"
