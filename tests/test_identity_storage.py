"""Identity-based storage for real: Azurite over HTTPS with `--oauth basic`, tokens, and no account key.

The app is composed from `Settings.from_env` of the identity settings only (`AzureWebJobsStorage__*ServiceUri`,
no `AzureWebJobsStorage`, no key anywhere) and a TokenCredential handed to `compose`; it then runs the
event ledger, an incident with its audit chain, the work and Slack outbox queues, the tag index and a
snapshot blob against the emulator. `remediate audit verify` runs as a process with
`AzureWebJobsStorage__credential=managedidentity`, so azure-identity's ManagedIdentityCredential gets its
token from a local App Service style identity endpoint. A token for another audience is refused, which
shows the emulator checks what it is sent. The emulator's certificate comes from a trustme CA, trusted
through REQUESTS_CA_BUNDLE (which azure-core's requests transport honours).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import trustme
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError

from azurite import ACCOUNT_KEY, Azurite
from bot.outbox import StorageJobQueue
from remediation.cli.audit import UNKEYED
from remediation.cli.audit import verify as audit_verify
from remediation.compose import Components, LazyCredential, compose
from remediation.push_policy import TableTagIndex
from remediation.settings import Settings, SettingsError, StorageSettings
from remediation.store.clients import StorageAccess
from test_incidents import T0, make_plan, make_signal

ROOT = Path(__file__).resolve().parent.parent
STORAGE_AUDIENCE = "https://storage.azure.com"
STORAGE_SCOPE = "https://storage.azure.com/.default"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "00000000-0000-0000-0000-0000000000aa"


def jwt(audience: str, *, lifetime: int = 3600) -> tuple[str, int]:
    """An unsigned JWT as Entra would issue for `audience` (Azurite's basic mode checks no signature)."""
    now = int(time.time())
    claims = {"aud": audience, "iss": f"https://sts.windows.net/{TENANT}/", "iat": now - 60, "nbf": now - 60,
              "exp": now + lifetime, "oid": CLIENT_ID, "tid": TENANT}  # fmt: skip

    def part(data: dict[str, Any] | bytes) -> str:
        raw = data if isinstance(data, bytes) else json.dumps(data).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.{part(b'unsigned')}", now + lifetime


class StaticTokens:
    """A TokenCredential for one audience that records the scopes it is asked for."""

    def __init__(self, audience: str = STORAGE_AUDIENCE) -> None:
        self.audience = audience
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        token, expires_on = jwt(self.audience)
        return AccessToken(token, expires_on)


@dataclass(frozen=True)
class SecureAzurite:
    azurite: Azurite
    ca_bundle: Path


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureAzurite]:
    """One Azurite over HTTPS taking OAuth tokens, its certificate issued by a trustme CA."""
    folder = tmp_path_factory.mktemp("azurite-tls")
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    cert, key, bundle = folder / "cert.pem", folder / "key.pem", folder / "ca.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(bundle))
    with Azurite(tls=(cert, key), oauth=True) as emulator:
        yield SecureAzurite(emulator, bundle)


def identity_env(azurite: Azurite, **extra: str) -> dict[str, str]:
    """The identity-based settings for the emulator (and this test's own table, queue and container names)."""
    suffix = uuid.uuid4().hex[:10]
    return {
        "AzureWebJobsStorage__blobServiceUri": azurite.endpoint("blob"),
        "AzureWebJobsStorage__queueServiceUri": azurite.endpoint("queue"),
        "AzureWebJobsStorage__tableServiceUri": azurite.endpoint("table"),
        "REMEDIATION_EVENTS_TABLE": f"events{suffix}",
        "REMEDIATION_INCIDENTS_TABLE": f"incidents{suffix}",
        "REMEDIATION_AUDIT_TABLE": f"audit{suffix}",
        "REMEDIATION_TAG_INDEX_TABLE": f"tagindex{suffix}",
        "REMEDIATION_ACTIONS_QUEUE": f"actions-{suffix}",
        "SLACK_OUTBOX_QUEUE": f"outbox-{suffix}",
        "REMEDIATION_SNAPSHOTS_CONTAINER": f"snapshots{suffix}",
        **extra,
    }


@pytest.fixture
def env(secure: SecureAzurite, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(secure.ca_bundle))
    values = identity_env(secure.azurite)
    assert not any(ACCOUNT_KEY in value or "AccountKey" in value for value in values.values())
    return values


def receive_one(storage: StorageAccess, queue: str) -> str:
    with storage.queue_client(queue, create=False) as client:
        messages = list(client.receive_messages(max_messages=1, visibility_timeout=30))
    assert len(messages) == 1
    body: bytes = messages[0].content
    return body.decode()


# --- the app on identity-based storage ---------------------------------------------------------


def test_the_engines_tables_queues_and_blobs_run_on_tokens_alone(env: dict[str, str]) -> None:
    settings = Settings.from_env(env)
    assert settings.storage_connection == "" and settings.storage_uses_identity
    tokens = StaticTokens()
    components = compose(settings, credential=tokens)
    storage = components.storage()
    assert storage.uses_identity and storage.connection_string == ""
    try:
        ledger = components.ledger()
        assert ledger.claim("defender:alert-identity") is True
        assert ledger.claim("defender:alert-identity") is False
        ledger.complete("defender:alert-identity")
        assert ledger.claim("defender:alert-identity") is False

        incidents = components.incidents()
        incident, opened = incidents.open_or_fold(plan=make_plan(), signal=make_signal(), now=T0)
        assert opened and incidents.get(incident.id) == incident
        assert [record.seq for record in incidents.audit.records(incident.id)] == [1]
        assert incidents.audit.verify() == []

        components.work().enqueue(incident_id=incident.id)
        assert json.loads(receive_one(storage, settings.actions_queue))["incident_id"] == incident.id

        outbox = StorageJobQueue(storage=storage, queue_name=settings.slack_outbox_queue)
        outbox.send(json.dumps({"kind": "opened", "incident_id": incident.id}))
        outbox.close()
        assert json.loads(receive_one(storage, settings.slack_outbox_queue))["incident_id"] == incident.id

        snapshots = components.snapshots()
        key = snapshots.save(key=f"{incident.id}/step-1", document={"kind": "Deployment", "replicas": 3})
        assert snapshots.load(key) == {"kind": "Deployment", "replicas": 3}

        tags = TableTagIndex.from_storage(storage, table_name=settings.registry.tag_index_table)
        push = {"registry": "demo.azurecr.io", "repository": "prod/api", "tag": "v1"}
        assert tags.record_push(**push, digest="sha256:a", event_id="e1", time=T0) is None
        assert tags.record_push(**push, digest="sha256:b", event_id="e2", time=T0 + timedelta(minutes=1)) == "sha256:a"
        tags.close()
    finally:
        components.close()
    assert tokens.scopes and set(tokens.scopes) == {(STORAGE_SCOPE,)}


def test_a_token_for_another_audience_is_refused(env: dict[str, str]) -> None:
    components = compose(Settings.from_env(env), credential=StaticTokens("https://management.azure.com"))
    with pytest.raises(HttpResponseError) as refused:
        components.ledger()
    assert refused.value.status_code == 403
    assert "audience" in str(refused.value).lower()


def test_audit_verify_reports_a_refused_token_as_storage_refusing_us(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = audit_verify(incident=None, connection_string=None, credential=StaticTokens("https://vault.azure.net"))
    err = capsys.readouterr().err
    assert code == 3
    assert "storage refused the credentials (HTTP 403)" in err


# --- `remediate audit verify` with a managed identity ------------------------------------------


class IdentityEndpoint(BaseHTTPRequestHandler):
    """App Service's managed identity endpoint (IDENTITY_ENDPOINT / IDENTITY_HEADER, 2019-08-01)."""

    header = "identity-header-value"
    requests: list[dict[str, list[str]]] = []

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        type(self).requests.append(query)
        if self.headers.get("X-IDENTITY-HEADER") != self.header:
            self.send_error(401)
            return
        token, expires_on = jwt(query["resource"][0].rstrip("/"))
        body = json.dumps({"access_token": token, "expires_on": str(expires_on), "resource": query["resource"][0],
                           "token_type": "Bearer", "client_id": CLIENT_ID}).encode()  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def identity_endpoint() -> Iterator[str]:
    IdentityEndpoint.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), IdentityEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/msi/token"
    finally:
        server.shutdown()
        server.server_close()


def test_remediate_audit_verify_runs_on_the_managed_identity(
    env: dict[str, str], secure: SecureAzurite, identity_endpoint: str
) -> None:
    components = compose(Settings.from_env(env), credential=StaticTokens())
    try:
        incidents = components.incidents()
        for n in range(2):
            incidents.open_or_fold(plan=make_plan(group_key=f"group-{n}"), signal=make_signal(), now=T0)
    finally:
        components.close()
    keep = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    process_env = {
        **keep,
        **env,
        "AzureWebJobsStorage__credential": "managedidentity",
        "AzureWebJobsStorage__clientId": CLIENT_ID,
        "IDENTITY_ENDPOINT": identity_endpoint,
        "IDENTITY_HEADER": IdentityEndpoint.header,
        "REQUESTS_CA_BUNDLE": str(secure.ca_bundle),
    }
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from remediation.cli import main; sys.exit(main())", "audit", "verify"],
        cwd=ROOT, env=process_env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stdout, done.stderr.splitlines()) == (
        0,
        "",
        [UNKEYED, "2 audit chain(s) checked, 0 problem(s)"],
    )
    assert IdentityEndpoint.requests, "the token came from somewhere else"
    assert {query["resource"][0] for query in IdentityEndpoint.requests} == {STORAGE_AUDIENCE}
    assert {query.get("client_id", [""])[0] for query in IdentityEndpoint.requests} == {CLIENT_ID}


# --- settings and composition ------------------------------------------------------------------


def test_the_account_name_gives_the_public_cloud_endpoints_and_a_service_uri_overrides_one() -> None:
    settings = Settings.from_env({"AzureWebJobsStorage__accountName": "prodbot"})
    assert settings.storage_connection == "" and settings.storage_uses_identity
    assert [settings.storage.endpoint(service) for service in ("blob", "queue", "table")] == [
        "https://prodbot.blob.core.windows.net",
        "https://prodbot.queue.core.windows.net",
        "https://prodbot.table.core.windows.net",
    ]
    china = Settings.from_env(
        {"AzureWebJobsStorage__accountName": "prodbot",
         "AzureWebJobsStorage__tableServiceUri": "https://prodbot.table.core.chinacloudapi.cn/"}
    )  # fmt: skip
    assert china.storage.endpoint("table") == "https://prodbot.table.core.chinacloudapi.cn"
    assert china.storage.endpoint("blob") == "https://prodbot.blob.core.windows.net"


def test_service_uris_must_name_all_three_services_without_an_account_name() -> None:
    with pytest.raises(SettingsError, match="AzureWebJobsStorage__tableServiceUri is not set"):
        Settings.from_env(
            {"AzureWebJobsStorage__blobServiceUri": "https://a.blob.core.windows.net",
             "AzureWebJobsStorage__queueServiceUri": "https://a.queue.core.windows.net"}
        )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AzureWebJobsStorage__blobServiceUri", "http://127.0.0.1:10000/devstoreaccount1"),
        ("AzureWebJobsStorage__accountName", "Prod_Bot"),
        ("AzureWebJobsStorage__credential", "clientsecret"),
    ],
)
def test_a_malformed_identity_setting_is_named(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({"AzureWebJobsStorage__accountName": "prodbot", name: value})


def test_the_connection_string_wins_as_it_does_for_the_host() -> None:
    settings = Settings.from_env(
        {"AzureWebJobsStorage": "UseDevelopmentStorage=true", "AzureWebJobsStorage__accountName": "prodbot"}
    )
    assert not settings.storage_uses_identity
    storage = StorageAccess.from_settings(settings, credential=StaticTokens())
    assert (storage.uses_identity, storage.connection_string) == (False, "UseDevelopmentStorage=true")


def test_no_secret_in_the_repr_of_storage_access() -> None:
    storage = StorageAccess.from_connection_string(f"AccountName=a;AccountKey={ACCOUNT_KEY}")
    assert ACCOUNT_KEY not in repr(storage)


def test_identity_storage_needs_https_and_a_credential() -> None:
    with pytest.raises(ValueError, match="a connection string or a credential"):
        StorageAccess(table_endpoint="https://t", queue_endpoint="https://q", blob_endpoint="https://b")
    with pytest.raises(ValueError, match="not for: queue"):
        StorageAccess(table_endpoint="https://t", queue_endpoint="http://q", blob_endpoint="https://b",
                      credential=StaticTokens())  # fmt: skip


def test_storage_takes_the_handed_in_credential_else_the_composition_one_unless_it_names_its_own() -> None:
    handed = StaticTokens()
    settings = Settings.from_env({"AzureWebJobsStorage__accountName": "prodbot"})
    assert compose(settings, credential=handed).storage().credential is handed
    plain = Components(settings)
    assert plain.storage_credential is plain.credential  # one identity, one token cache
    same = Components(
        Settings.from_env({**dict.fromkeys(("AZURE_CLIENT_ID", "AzureWebJobsStorage__clientId"), CLIENT_ID),
                           "AzureWebJobsStorage__accountName": "prodbot"})
    )  # fmt: skip
    assert same.storage_credential is same.credential
    for own in ({"AzureWebJobsStorage__clientId": CLIENT_ID}, {"AzureWebJobsStorage__credential": "managedidentity"}):
        other = Components(Settings.from_env({"AzureWebJobsStorage__accountName": "prodbot", **own}))
        assert other.storage_credential is not other.credential
        assert isinstance(other.storage_credential, LazyCredential)  # nothing built before the first token


def test_settings_without_any_storage_say_both_ways() -> None:
    with pytest.raises(SettingsError, match="AzureWebJobsStorage__accountName"):
        Settings.from_env({})
    assert Settings.from_env({}, require_storage=False).storage == StorageSettings()
