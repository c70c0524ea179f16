"""The composition root: what it builds from settings alone, and the credential it uses in Azure.

The managed identity is exercised for real: azure-identity's DefaultAzureCredential asks a local
App Service identity endpoint (IDENTITY_ENDPOINT / IDENTITY_HEADER, as the Functions host sets them)
for a token, with the client id of a user-assigned identity from settings.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.data.tables import TableServiceClient

from conftest import AppTables
from remediation.compose import LazyCredential, compose
from remediation.settings import Settings

IDENTITY_HEADER = "local-identity-header-value"


@pytest.fixture
def identity_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """An App Service managed identity endpoint on loopback; yields the requests it answered."""
    asked: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = {key: values[0] for key, values in parse_qs(urlsplit(self.path).query).items()}
            asked.append({"query": query, "header": self.headers.get("X-IDENTITY-HEADER")})
            body = json.dumps({
                "access_token": f"token-for-{query.get('client_id', 'system')}",
                "expires_on": str(int(time.time()) + 3600),
                "resource": query.get("resource"),
                "token_type": "Bearer",
            }).encode()  # fmt: skip
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    for name in (
        "AZURE_CLIENT_ID",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_FEDERATED_TOKEN_FILE",
        "MSI_ENDPOINT",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
    try:
        yield asked
    finally:
        server.shutdown()
        server.server_close()


def test_the_default_credential_is_the_user_assigned_identity_the_settings_name(
    identity_endpoint: list[dict[str, Any]],
) -> None:
    settings = Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "AZURE_CLIENT_ID": "uami-1"})
    components = compose(settings)
    assert isinstance(components.credential, LazyCredential)
    assert identity_endpoint == []  # nothing is asked for until a token is needed
    token = components.credential.get_token(settings.azure.arm_scope)
    assert token.token == "token-for-uami-1"
    [asked] = identity_endpoint
    assert asked["header"] == IDENTITY_HEADER
    assert asked["query"]["client_id"] == "uami-1"
    assert asked["query"]["resource"] == "https://management.azure.com"


def test_outside_endpoints_come_from_settings() -> None:
    settings = Settings.from_env({
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "AZURE_RESOURCE_MANAGER_ENDPOINT": "https://management.chinacloudapi.cn",
        "REMEDIATION_ACR_AUDIENCE": "https://containerregistry.azure.cn",
        "REMEDIATION_RESOURCE_GRAPH_ENDPOINT": "https://graph.example.cn",
    })  # fmt: skip
    endpoints = compose(settings).registry_clients().endpoints
    assert endpoints.arm_base_url == "https://management.chinacloudapi.cn"
    assert endpoints.acr_audience == "https://containerregistry.azure.cn"
    assert endpoints.graph_base_url == "https://graph.example.cn"
    assert settings.azure.arm_scope == "https://management.chinacloudapi.cn/.default"


def test_each_part_is_built_once_and_a_failure_is_not_kept(tmp_path: Any) -> None:
    from remediation.playbooks import PlaybookErrors

    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")
    settings = Settings.from_env(
        {"AzureWebJobsStorage": "UseDevelopmentStorage=true", "REMEDIATION_PLAYBOOKS_DIR": str(tmp_path)}
    )
    components = compose(settings)
    assert components.actions() is components.actions()
    with pytest.raises(PlaybookErrors):
        components.playbooks()
    (tmp_path / "bad.yaml").unlink()
    (tmp_path / "ok.yaml").write_text(
        "name: ok\ndescription: d\non: {source: defender, types: [K8S_ExposedDashboard]}\n"
        "steps:\n  - action: notify\n    params: {message: hi}\napproval: {mode: auto}\nnotify: '#secops'\n"
    )
    assert [p.name for p in components.playbooks().playbooks] == ["ok"]


def test_only_a_registry_push_or_delete_builds_the_push_policy(
    app_tables: AppTables, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Defender alert passes the push policy by without building it: no tag index table is made."""
    import host
    from functions import wiring
    from test_function_app import ACR_PUSH, FLAT_ALERT

    tag_index = f"tagindex{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("REMEDIATION_TAG_INDEX_TABLE", tag_index)
    wiring.reset()

    def tables() -> set[str]:
        with TableServiceClient.from_connection_string(app_tables.connection_string) as service:
            return {table.name for table in service.list_tables()}

    assert host.call("defender_alerts_http", host.http_post("defender/alerts", json.dumps(FLAT_ALERT).encode()))
    assert tag_index not in tables()
    host.call("registry_events", host.event_grid_event(ACR_PUSH))
    assert tag_index in tables()
