"""A local TLS server speaking the ARM, ACR data-plane and Resource Graph REST calls our SDK clients make.

The real `ContainerRegistryClient`, `ContainerRegistryManagementClient` and `ResourceGraphClient`
talk to it over HTTPS (a `trustme` CA; clients get `connection_verify=ca_path`). It keeps state
(repositories, tags -> digest, tag and manifest attributes), answers ACR's 401 challenge and the
`/oauth2/exchange` + `/oauth2/token` dance, runs `importImage` as a 202 long-running operation
with Azure-AsyncOperation polling, evaluates the findings query's digest filter and `project`
clause over stored sub-assessments, injects scripted faults (429 with Retry-After, 5xx), and
records every request so tests can assert what the SDKs sent.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import ssl
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import trustme

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "rg-acr"
NAME = "myreg"
LOGIN_SERVER = "myreg.azurecr.io"
REGISTRY_ID = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
    f"/providers/Microsoft.ContainerRegistry/registries/{NAME}"
)
ACCESS_TOKEN = "acr-access-token"
STAMP = "2024-11-21T10:00:00.0000000Z"


def _jwt(claims: dict[str, Any]) -> str:
    """A JWT the ACR SDK can decode: its decoder pads oddly and uses standard base64, so avoid both."""
    for filler in itertools.count():
        payload = json.dumps({**claims, "pad": "x" * filler}).encode()
        encoded = base64.b64encode(payload).decode()
        if len(payload) % 3 == 0 and "+" not in encoded and "/" not in encoded:
            return f"eyJhbGciOiJub25lIn0.{encoded}.c2ln"
    raise AssertionError("unreachable")


@dataclass
class Recorded:
    method: str
    path: str  # unquoted
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    headers: dict[str, str]
    times: int


@dataclass
class Image:
    digest: str
    attrs: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(("read", "write", "delete", "list"), True))


@dataclass
class ImportOperation:
    body: dict[str, Any]
    statuses: list[str]
    error: dict[str, str] | None = None


class AcrServer:
    def __init__(self, directory: Path) -> None:
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.ca_path = directory / "acr-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_path))
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(self._context)
        self.tags: dict[str, dict[str, Image]] = {}  # repository -> tag -> digest and tag attributes
        self.manifests: dict[str, dict[str, Image]] = {}  # repository -> digest -> manifest attributes
        self.findings: list[dict[str, Any]] = []
        self.import_script: list[str] = ["InProgress", "Succeeded"]
        self.unimportable: set[str] = set()  # digests whose import fails with ImageNotFound (e.g. purged)
        self.operations: dict[str, ImportOperation] = {}
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self.lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.socket = self._context.wrap_socket(self._httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- test helpers -------------------------------------------------------------------------------
    def push(self, repository: str, tag: str, digest: str) -> None:
        with self.lock:
            self.manifests.setdefault(repository, {}).setdefault(digest, Image(digest))
            self.tags.setdefault(repository, {})[tag] = Image(digest)

    def tag(self, repository: str, tag: str) -> Image | None:
        return self.tags.get(repository, {}).get(tag)

    def manifest(self, repository: str, digest: str) -> Image:
        return self.manifests[repository][digest]

    def fault(
        self, method: str, path: str, status: int, *, headers: dict[str, str] | None = None, times: int = 1
    ) -> None:
        self.faults.append(Fault(method, re.compile(path), status, headers or {}, times))

    def calls(self, *, method: str | None = None, prefix: str = "") -> list[Recorded]:
        """Requests that reached the service (the ACR 401 challenges and token exchanges left out)."""
        return [
            r
            for r in self.requests
            if (method is None or r.method == method)
            and r.path.startswith(prefix)
            and not r.path.startswith("/oauth2/")
            and not (r.path.startswith("/acr/") and r.headers.get("authorization") != f"Bearer {ACCESS_TOKEN}")
        ]

    def snapshot(self) -> dict[str, Any]:
        """Every tag and manifest with its attributes: equal before quarantine and after release."""
        return {
            "tags": {f"{r}:{t}": (i.digest, dict(i.attrs)) for r, ts in self.tags.items() for t, i in ts.items()},
            "manifests": {f"{r}@{d}": dict(i.attrs) for r, ds in self.manifests.items() for d, i in ds.items()},
        }


def _handler(server: AcrServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _serve(self) -> None:
            Routes(server, self).dispatch()

        do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve

    return Handler


def parse_query(raw: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(raw, keep_blank_values=True))


REFRESH_TOKEN = _jwt({"exp": 4102444800, "grant_type": "refresh_token"})


_ACR_TAG = re.compile(r"^/acr/v1/(?P<repo>.+)/_tags(?:/(?P<tag>[^/]+))?$")
_ACR_MANIFEST = re.compile(r"^/acr/v1/(?P<repo>.+)/_manifests/(?P<digest>[^/]+)$")
_ARM_REGISTRY = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.ContainerRegistry"
    r"/registries/(?P<name>[^/]+)(?P<rest>/.*)?$",
    re.IGNORECASE,
)
_FLAG_KEYS = {"readEnabled": "read", "writeEnabled": "write", "deleteEnabled": "delete", "listEnabled": "list"}


class Routes:
    """One request: record it, apply any scripted fault, then route it."""

    def __init__(self, server: AcrServer, http: BaseHTTPRequestHandler) -> None:
        self.s = server
        self.h = http
        raw_path, _, raw_query = http.path.partition("?")
        self.raw_path = raw_path
        self.path = urllib.parse.unquote(raw_path)
        self.query = parse_query(raw_query)
        length = int(http.headers.get("Content-Length") or 0)
        raw = http.rfile.read(length) if length else b""
        kind = http.headers.get("Content-Type") or ""
        self.body: Any = (
            parse_query(raw.decode()) if "x-www-form-urlencoded" in kind else json.loads(raw) if raw else None
        )

    def dispatch(self) -> None:
        method = self.h.command
        headers = {k.lower(): v for k, v in self.h.headers.items()}
        with self.s.lock:
            self.s.requests.append(Recorded(method, self.path, self.query, headers, self.body))
            fault = next((f for f in self.s.faults if f.method == method and f.path.search(self.path)), None)
            if fault is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self.s.faults.remove(fault)
        if fault is not None:
            self.send(fault.status, {"error": {"code": "Throttled", "message": "scripted fault"}}, fault.headers)
            return
        with self.s.lock:
            self.route(method, headers)

    def send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.h.send_response(status)
        self.h.send_header("Content-Type", "application/json")
        self.h.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.h.send_header(name, value)
        self.h.end_headers()
        self.h.wfile.write(data)

    def route(self, method: str, headers: dict[str, str]) -> None:
        if self.path == "/oauth2/exchange" and method == "POST":
            return self.send(200, {"refresh_token": REFRESH_TOKEN})
        if self.path == "/oauth2/token" and method == "POST":
            return self.send(200, {"access_token": ACCESS_TOKEN})
        if self.path.startswith("/acr/"):
            if headers.get("authorization") != f"Bearer {ACCESS_TOKEN}":
                challenge = (
                    f'Bearer realm="{self.s.url}/oauth2/token",service="{LOGIN_SERVER}",scope="repository:x:pull"'
                )
                return self.send(401, {"errors": [{"code": "UNAUTHORIZED"}]}, {"WWW-Authenticate": challenge})
            return self.acr(method)
        if not headers.get("authorization", "").startswith("Bearer "):
            return self.send(401, {"error": {"code": "AuthenticationFailed", "message": "no token"}})
        if self.path == "/providers/Microsoft.ResourceGraph/resources" and method == "POST":
            return self.graph()
        match = _ARM_REGISTRY.match(self.path)
        if match and match["name"] == NAME:
            return self.arm(method, match["rest"] or "")
        return self.send(404, {"error": {"code": "ResourceNotFound", "message": f"{self.path} not found"}})

    # -- ACR data plane ------------------------------------------------------------------------------
    def acr(self, method: str) -> None:
        manifest = _ACR_MANIFEST.match(self.path)
        if manifest:
            return self.acr_manifest(method, manifest["repo"], manifest["digest"])
        match = _ACR_TAG.match(self.path)
        if match is None:
            return self.send(404, {"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known"}]})
        repo, tag = match["repo"], match["tag"]
        if tag is None:
            tags = self.s.tags.get(repo)
            if tags is None:
                return self.send(404, {"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known"}]})
            return self.send(
                200,
                {"registry": LOGIN_SERVER, "imageName": repo, "tags": [self.tag_json(t, i) for t, i in tags.items()]},
            )
        image = self.s.tags.get(repo, {}).get(tag)
        if image is None:
            return self.send(
                404, {"errors": [{"code": "TAG_UNKNOWN", "message": f"the specified tag {tag} does not exist"}]}
            )
        if method == "PATCH":
            image.attrs.update({_FLAG_KEYS[k]: bool(v) for k, v in (self.body or {}).items() if k in _FLAG_KEYS})
        elif method == "DELETE":
            if not image.attrs["delete"]:
                return self.send(405, {"errors": [{"code": "DENIED", "message": "the tag is protected from deletion"}]})
            del self.s.tags[repo][tag]
            return self.send(202)
        self.send(200, {"registry": LOGIN_SERVER, "imageName": repo, "tag": self.tag_json(tag, image)})

    @staticmethod
    def tag_json(tag: str, image: Image) -> dict[str, Any]:
        return {
            "name": tag,
            "digest": image.digest,
            "createdTime": STAMP,
            "lastUpdateTime": STAMP,
            "signed": False,
            "changeableAttributes": {k: image.attrs[v] for k, v in _FLAG_KEYS.items()},
        }

    def acr_manifest(self, method: str, repo: str, digest: str) -> None:
        image = self.s.manifests.get(repo, {}).get(digest)
        if image is None:
            return self.send(404, {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]})
        if method == "PATCH":
            image.attrs.update({_FLAG_KEYS[k]: bool(v) for k, v in (self.body or {}).items() if k in _FLAG_KEYS})
        tags = sorted(t for t, i in self.s.tags.get(repo, {}).items() if i.digest == digest)
        manifest = {
            "digest": digest,
            "imageSize": 1024,
            "createdTime": STAMP,
            "lastUpdateTime": STAMP,
            "architecture": "amd64",
            "os": "linux",
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "tags": tags,
            "changeableAttributes": {k: image.attrs[v] for k, v in _FLAG_KEYS.items()},
        }
        self.send(200, {"registry": LOGIN_SERVER, "imageName": repo, "manifest": manifest})

    # -- ARM -----------------------------------------------------------------------------------------
    def arm(self, method: str, rest: str) -> None:
        if rest == "" and method == "GET":
            return self.send(200, self.registry_json())
        if rest == "/importImage" and method == "POST":
            op = f"op{len(self.s.operations) + 1}"
            self.s.operations[op] = ImportOperation(self.body, list(self.s.import_script))
            base = f"{self.s.url}{REGISTRY_ID}"
            version = self.query.get("api-version", "")
            return self.send(
                202,
                None,
                {
                    "Azure-AsyncOperation": f"{base}/operationStatuses/{op}?api-version={version}",
                    "Location": f"{base}/operationResults/{op}?api-version={version}",
                },
            )
        status = re.fullmatch(r"/operation(Statuses|Results)/(op\d+)", rest)
        if status and method == "GET":
            operation = self.s.operations[status[2]]
            if status[1] == "Results":
                return self.send(200, {})
            return self.send(200, self.poll(operation))
        return self.send(404, {"error": {"code": "NotFound", "message": rest}})

    def registry_json(self) -> dict[str, Any]:
        return {
            "id": REGISTRY_ID,
            "name": NAME,
            "type": "Microsoft.ContainerRegistry/registries",
            "location": "westeurope",
            "sku": {"name": "Premium", "tier": "Premium"},
            "properties": {"loginServer": LOGIN_SERVER, "provisioningState": "Succeeded", "adminUserEnabled": False},
        }

    def poll(self, operation: ImportOperation) -> dict[str, Any]:
        if operation.error is not None:
            return {"status": "Failed", "error": operation.error}
        status = operation.statuses.pop(0) if len(operation.statuses) > 1 else operation.statuses[0]
        if status == "Succeeded":
            operation.error = self.do_import(operation.body)
            if operation.error is not None:
                return {"status": "Failed", "error": operation.error}
        if status == "Failed":
            operation.error = {"code": "InternalServerError", "message": "scripted failure"}
            return {"status": "Failed", "error": operation.error}
        return {"status": status}

    def do_import(self, body: dict[str, Any]) -> dict[str, str] | None:
        source = body["source"]
        if source.get("resourceId", "").lower() != REGISTRY_ID.lower():
            return {"code": "InvalidParameters", "message": f"unknown source registry {source.get('resourceId')}"}
        repo, sep, digest = source["sourceImage"].partition("@")
        if not sep:
            repo, _, tag = source["sourceImage"].partition(":")
            image = self.s.tags.get(repo, {}).get(tag)
            digest = image.digest if image else ""
        if digest not in self.s.manifests.get(repo, {}) or digest in self.s.unimportable:
            return {
                "code": "ImageNotFound",
                "message": f"Image '{source['sourceImage']}' not found in the source registry",
            }
        for target in body.get("targetTags", []):
            target_repo, _, target_tag = target.partition(":")
            if body.get("mode") == "NoForce" and target_tag in self.s.tags.get(target_repo, {}):
                return {"code": "TargetTagAlreadyExists", "message": f"{target} already exists"}
            self.s.manifests.setdefault(target_repo, {}).setdefault(digest, Image(digest))
            self.s.tags.setdefault(target_repo, {})[target_tag] = Image(digest)
        return None

    # -- Resource Graph ------------------------------------------------------------------------------
    def graph(self) -> None:
        query = self.body["query"]
        wanted = re.search(r"artifactDetails\.digest\s*==\s*'([^']+)'", query)
        rows = [
            row
            for row in self.s.findings
            if wanted and row["properties"]["additionalData"]["artifactDetails"]["digest"] == wanted[1]
        ]
        project = re.search(r"\|\s*project\s+(.+?)(?:\||$)", query, re.S)
        if project:
            columns = re.findall(r"(\w+)\s*=\s*tostring\(([\w.]+)\)", project[1])
            rows = [{name: _path(row, path) for name, path in columns} for row in rows]
        self.send(
            200, {"totalRecords": len(rows), "count": len(rows), "resultTruncated": "false", "data": rows, "facets": []}
        )


def _path(row: dict[str, Any], path: str) -> str:
    value: Any = row
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


class FakeCredential:
    """A TokenCredential that hands out one fixed AAD token and remembers the scopes asked for."""

    def __init__(self) -> None:
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.scopes.extend(scopes)
        return AccessToken("fake-aad-token", 4102444800)


def endpoints(server: AcrServer) -> Any:
    from remediation.actions.container_registry import Endpoints

    return Endpoints(
        arm_base_url=server.url,
        data_endpoint=server.url,
        connection_verify=str(server.ca_path),
        connection_timeout=2,
        read_timeout=5,
        polling_interval=0,
    )


def registry_actions(server: AcrServer, *, registries: dict[str, str], sleep: Any = None) -> Any:
    """The registry family's actions bound to a runtime that reaches `server` with a fake credential."""
    from remediation.actions import container_registry
    from remediation.actions.container_registry import RegistryClients, RegistryRuntime
    from remediation.actions.dispatch import ActionSet
    from remediation.retry import RetryPolicy

    def runtime() -> RegistryRuntime:
        clients = RegistryClients(credential=FakeCredential(), endpoints=endpoints(server))
        retry = RetryPolicy(sleep=sleep or (lambda seconds: None))
        return RegistryRuntime.build(clients=clients, registries=registries, retry=retry)

    return ActionSet(runtimes={RegistryRuntime: runtime}, catalogue=container_registry.ACTIONS)
