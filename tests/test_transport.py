"""The storage clients' one HTTP transport: shared connections, and proxies read once, from settings.

The real SDK clients talk to Azurite through loopback forwarders that count the TCP connections they
accept, so sharing shows as connections, not as object identity. A small HTTP proxy in front of
Azurite shows a configured proxy (`HTTP_PROXY`) is still used, and that without one the environment
is not read again per request.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

from azurite import ACCOUNT_KEY, ACCOUNT_NAME, Azurite
from bot.outbox import StorageJobQueue
from remediation.compose import Components, compose
from remediation.settings import PROXY_VARIABLES, Settings
from test_incidents import T0, make_plan, make_signal


class Forwarder:
    """A TCP forwarder on a loopback port in front of `target`; `accepted` counts its connections."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.accepted = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            upstream = socket.create_connection(("127.0.0.1", self.target))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()

    def close(self) -> None:
        self._listener.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def forwarded(azurite: Azurite) -> Iterator[dict[str, Forwarder]]:
    """One forwarder per storage service of the session's Azurite."""
    ports = {"blob": azurite.blob_port, "queue": azurite.queue_port, "table": azurite.table_port}
    forwarders = {service: Forwarder(port) for service, port in ports.items()}
    yield forwarders
    for forwarder in forwarders.values():
        forwarder.close()


def connection_string(ports: dict[str, int]) -> str:
    endpoints = "".join(
        f"{service.capitalize()}Endpoint=http://127.0.0.1:{port}/{ACCOUNT_NAME};" for service, port in ports.items()
    )
    return f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};{endpoints}"


def app_settings(storage: str) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:10]
    return {
        "AzureWebJobsStorage": storage,
        "REMEDIATION_EVENTS_TABLE": f"events{suffix}",
        "REMEDIATION_INCIDENTS_TABLE": f"incidents{suffix}",
        "REMEDIATION_AUDIT_TABLE": f"audit{suffix}",
        "REMEDIATION_ACTIONS_QUEUE": f"actions-{suffix}",
        "SLACK_OUTBOX_QUEUE": f"outbox-{suffix}",
        "REMEDIATION_SNAPSHOTS_CONTAINER": f"snapshots{suffix}",
    }


def use_storage(components: Components) -> None:
    """What an incident's life does with storage: the ledger, the incident and its audit chain, the
    actions and Slack outbox queues, a snapshot."""
    ledger = components.ledger()
    assert ledger.claim("defender:alert-shared")
    ledger.complete("defender:alert-shared")
    incidents = components.incidents()
    incident, opened = incidents.open_or_fold(plan=make_plan(), signal=make_signal(), now=T0)
    assert opened and incidents.audit.verify() == []
    components.work().enqueue(incident_id=incident.id)
    outbox = StorageJobQueue(storage=components.storage(), queue_name=components.settings.slack_outbox_queue)
    outbox.send(json.dumps({"kind": "opened", "incident_id": incident.id}))
    snapshots = components.snapshots()
    key = snapshots.save(key=f"{incident.id}/step-0", document={"kind": "Node"})
    assert snapshots.load(key) == {"kind": "Node"}


@pytest.fixture
def no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.mark.usefixtures("no_proxy_variables")
def test_every_storage_client_shares_one_connection_per_service(forwarded: dict[str, Forwarder]) -> None:
    settings = Settings.from_env(app_settings(connection_string({s: f.port for s, f in forwarded.items()})))
    components = compose(settings)
    try:
        use_storage(components)
        # Tables: the ledger, the incidents and the audit chain; queues: actions and Slack outbox.
        assert {service: forwarder.accepted for service, forwarder in forwarded.items()} == {
            "blob": 1,
            "queue": 1,
            "table": 1,
        }
        assert components.storage().transport is not None
        assert components.storage().transport.session.trust_env is False  # no proxy: no per-request scan
    finally:
        components.close()


class RecordingProxy(BaseHTTPRequestHandler):
    """A plain HTTP forward proxy: records each request's method and absolute URL, forwards it."""

    protocol_version = "HTTP/1.1"  # keeps the client's connection, as a real proxy does
    seen: list[tuple[str, str]] = []

    def _forward(self) -> None:
        type(self).seen.append((self.command, self.path))
        target = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {name: value for name, value in self.headers.items() if name.lower() != "proxy-connection"}
        upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
        path = target.path + (f"?{target.query}" if target.query else "")
        upstream.request(self.command, path, body=body, headers=headers)
        answer = upstream.getresponse()
        data = answer.read()
        self.send_response(answer.status, answer.reason)
        for name, value in answer.getheaders():
            if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        upstream.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_MERGE = do_HEAD = _forward

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


@pytest.fixture
def proxy(no_proxy_variables: None) -> Iterator[str]:
    RecordingProxy.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), RecordingProxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_configured_proxy_is_used(proxy: str, azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy)
    settings = Settings.from_env(app_settings(azurite.connection_string))
    assert settings.network.proxied
    components = compose(settings)
    try:
        assert components.ledger().claim("defender:alert-proxied")
    finally:
        components.close()
    table = f"http://127.0.0.1:{azurite.table_port}/{ACCOUNT_NAME}/"
    assert any(url.startswith(table) for _, url in RecordingProxy.seen), RecordingProxy.seen


def test_without_a_proxy_the_environment_is_not_read_per_request(
    proxy: str, azurite: Azurite, monkeypatch: pytest.MonkeyPatch
) -> None:
    components = compose(Settings.from_env(app_settings(azurite.connection_string)))
    try:
        ledger = components.ledger()
        monkeypatch.setenv("HTTP_PROXY", proxy)  # too late: the settings said there is no proxy
        assert ledger.claim("defender:alert-direct")
    finally:
        components.close()
    assert RecordingProxy.seen == []


@pytest.mark.usefixtures("no_proxy_variables")
def test_the_registry_clients_share_one_connection(
    tmp_path: Any, storage_connection_string: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ARM, Resource Graph and the ACR data plane (one TLS server here, as one host is in a test)
    reuse one connection: one session under the three clients, not one each."""
    from azure.mgmt.resourcegraph.models import QueryRequest

    from acr_server import LOGIN_SERVER, NAME, REGISTRY_ID, RESOURCE_GROUP, SUBSCRIPTION, AcrServer, FakeCredential

    with AcrServer(tmp_path) as server:
        server.push("prod/api", "latest", "sha256:" + "ab" * 32)
        forwarder = Forwarder(urlsplit(server.url).port or 443)
        address = f"https://127.0.0.1:{forwarder.port}"
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.ca_path))
        settings = Settings.from_env(
            app_settings(storage_connection_string)
            | {
                "REMEDIATION_REGISTRIES": json.dumps({LOGIN_SERVER: REGISTRY_ID}),
                "AZURE_RESOURCE_MANAGER_ENDPOINT": address,
                "REMEDIATION_ACR_DATA_ENDPOINT": address,
            }
        )
        components = compose(settings, credential=FakeCredential())
        try:
            clients = components.registry_clients()
            clients.graph().resources(QueryRequest(subscriptions=[SUBSCRIPTION], query="securityresources"))
            clients.mgmt(SUBSCRIPTION).registries.get(RESOURCE_GROUP, NAME)
            assert clients.data(LOGIN_SERVER).get_tag_properties("prod/api", "latest").name == "latest"
            assert forwarder.accepted == 1
        finally:
            components.close()
            forwarder.close()
