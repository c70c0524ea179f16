"""A Kubernetes API for tests: kmock 0.8's emulator over real HTTP, plus the little it lacks.

kmock stores objects, parses Kubernetes URLs, serves fetch/list/create/patch/delete and renders
Status errors. `ClusterEmulator` adds, and only adds (see docs/TOOLCHAIN.md):

- `kind`/`apiVersion` on lists, label selectors and field selectors (dotted paths, `=`/`!=`);
- uid and creationTimestamp on create; a resourceVersion that moves on every write, and 409 when a
  write carries a stale one; `metadata.generation` bumped when a write touches `spec`;
- PUT (replace); `dryRun=All` (the would-be object, nothing stored);
- the pods/eviction subresource, with `pdb_blocks[(ns, name)] = N` answering 429 N times first;
- the scale subresource of Deployments and StatefulSets (an autoscaling/v1 Scale);
- `NotFound` / `AlreadyExists` reasons where kmock says `Object Not Found` / `Object Already Exists`;
- fault injection: `fail("PATCH", "/api/v1/nodes/n1", 500, Fault(429, retry_after=7), DROP)`.

`KubeServer` runs it on a free loopback port in a background thread (its own event loop) and
hands out official `kubernetes.client.ApiClient`s pointed at it. kmock is pinned to 0.8: the glue
uses its private modules for the conflict error class and the merge-patch helper.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import itertools
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp.web
import kmock
import pytest
from kmock._internal import dicts as kmock_dicts
from kmock._internal import k8s as kmock_k8s
from kubernetes import client


def res(path: str) -> kmock.resource:
    """'v1/pods' or 'apps/v1/deployments' as the key kmock files objects under."""
    *group, version, plural = path.split("/")
    return kmock.resource(group=group[0] if group else "", version=version, plural=plural)


NODES, PODS, NETPOLS = res("v1/nodes"), res("v1/pods"), res("networking.k8s.io/v1/networkpolicies")
DEPLOYMENTS, STATEFULSETS = res("apps/v1/deployments"), res("apps/v1/statefulsets")
SERVICES = res("v1/services")
RBAC = {kind: res(f"rbac.authorization.k8s.io/v1/{kind.lower()}s") for kind in
        ("ClusterRoleBinding", "RoleBinding", "ClusterRole", "Role")}  # fmt: skip
KINDS = {"nodes": "Node", "pods": "Pod", "networkpolicies": "NetworkPolicy", "deployments": "Deployment",
         "statefulsets": "StatefulSet", "services": "Service",
         **{r.plural: kind for kind, r in RBAC.items()}}  # fmt: skip


@dataclass(frozen=True)
class Fault:
    status: int = 500
    retry_after: float | None = None
    drop: bool = False  # close the connection without an answer


DROP = Fault(drop=True)


def status(code: int, reason: str, message: str, *, headers: dict[str, str] | None = None) -> aiohttp.web.Response:
    body = {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure" if code >= 400 else "Success",
            "code": code, "reason": reason, "message": message}  # fmt: skip
    return aiohttp.web.json_response(body, status=code, headers=headers)


class ClusterEmulator(kmock.KubernetesEmulator):
    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.versions = itertools.count(100)
        self.faults: dict[tuple[str, str], collections.deque[Fault]] = collections.defaultdict(collections.deque)
        self.hooks: dict[tuple[str, str], collections.deque[Callable[[], None]]] = collections.defaultdict(
            collections.deque
        )
        self.pdb_blocks: dict[tuple[str, str], int] = {}
        self.eviction_delay = 0.0  # seconds each eviction takes on the server, so concurrency shows
        self.in_flight = self.max_in_flight = 0
        for resource in (NODES, PODS, NETPOLS, DEPLOYMENTS, STATEFULSETS, SERVICES, *RBAC.values()):
            self.resources[resource] = {"kind": KINDS[resource.plural]}

    # --- seeding and inspection (from the test thread, between requests) ---

    def put(self, resource: kmock.resource, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", "2024-11-21T10:00:00Z")
        meta.setdefault("generation", 1)
        meta["resourceVersion"] = str(next(self.versions))
        self.objects[resource, meta.get("namespace"), meta["name"]] = obj
        return obj

    def get(self, resource: kmock.resource, namespace: str | None, name: str) -> dict[str, Any] | None:
        key = (resource, namespace, name)
        return None if key not in self.objects or self.objects[key].deleted else dict(self.objects[key].raw)

    def fail(self, method: str, path: str, *faults: Fault | int) -> None:
        self.faults[method.upper(), path].extend(f if isinstance(f, Fault) else Fault(f) for f in faults)

    # --- request handling ---

    def after(self, method: str, path: str, callback: Callable[[], None]) -> None:
        """Run `callback` once, right after the server has handled the next `method` on `path`
        (the write is stored and answered): a fault that strikes between a step and its record."""
        self.hooks[method.upper(), path].append(callback)

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        response = await self._respond(request)
        hooks = self.hooks.get((request.method.value, request.url.path))
        if hooks:
            await response.prepare(request._raw_request)
            await response.write_eof()
            hooks.popleft()()
        return response

    async def _respond(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        queue = self.faults.get((request.method.value, request.url.path))
        if queue:
            return self._fault(request, queue.popleft())
        if request.resource is None:
            return await super()._handle(request)
        if request.subresource == "eviction" and request.method == kmock.method.POST:
            return await self._evict(request)
        if request.subresource == "scale":
            return self._scale(request)
        if (
            request.method == kmock.method.PUT
            or request.params.get("dryRun")
            or request.action
            in (
                kmock.action.CREATE,
                kmock.action.UPDATE,
            )
        ):
            return self._write(request)
        return await super()._handle(request)

    def _fault(self, request: kmock.Request, fault: Fault) -> aiohttp.web.StreamResponse:
        if fault.drop:
            request._raw_request.transport.close()  # the client sees the connection drop
            return aiohttp.web.Response(status=500)
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
        return status(fault.status, "InjectedFault", f"injected {fault.status}", headers=headers)

    def _write(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        """Create, patch, replace (PUT) and their dry runs, with resourceVersion and generation kept."""
        data = request.data if isinstance(request.data, dict) else {}
        name = request.name or data.get("metadata", {}).get("name")
        namespace = request.namespace or data.get("metadata", {}).get("namespace")
        current = self.get(request.resource, namespace, name)
        if request.action == kmock.action.CREATE:
            if current is not None:
                return status(409, "AlreadyExists", f"{request.resource.plural} {name!r} already exists")
            new = kmock_dicts.merge_patch_dict({}, data)
            new["metadata"] = {**new.get("metadata", {}), "uid": str(uuid.uuid4()), "generation": 1,
                               "creationTimestamp": datetime.datetime.now(datetime.UTC).isoformat()}  # fmt: skip
        elif current is None:
            return status(404, "NotFound", f"{request.resource.plural} {name!r} not found")
        elif request.method == kmock.method.DELETE:
            return aiohttp.web.json_response(current)  # dry-run delete
        else:
            wanted_rv = data.get("metadata", {}).get("resourceVersion")
            if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
                return status(409, "Conflict", "the object has been modified; please apply your changes again")
            new = (
                dict(data) if request.method == kmock.method.PUT else dict(kmock_dicts.merge_patch_dict(current, data))
            )
            new["metadata"] = {**new.get("metadata", {}), "uid": current["metadata"]["uid"]}
            if new.get("spec") != current.get("spec"):
                new["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
        if request.params.get("dryRun"):
            return aiohttp.web.json_response(new, status=201 if current is None else 200)
        stored = self.put(request.resource, new)
        return aiohttp.web.json_response(stored, status=201 if current is None else 200)

    async def _evict(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        key = (request.namespace, request.name)
        if self.get(PODS, *key) is None:
            return status(404, "NotFound", f'pods "{request.name}" not found')
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.eviction_delay)
            if self.pdb_blocks.get(key, 0) > 0:
                self.pdb_blocks[key] -= 1
                return status(
                    429, "TooManyRequests", "Cannot evict pod as it would violate the pod's disruption budget."
                )
            if not request.params.get("dryRun"):
                self.objects[PODS, *key].delete()
            return status(201, "", "")
        finally:
            self.in_flight -= 1

    def _scale(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        obj = self.get(request.resource, request.namespace, request.name)
        if obj is None:
            return status(404, "NotFound", f"{request.resource.plural} {request.name!r} not found")
        if request.method == kmock.method.PATCH:
            replicas = request.data["spec"]["replicas"]
            generation = obj["metadata"].get("generation", 1) + 1
            obj = dict(
                kmock_dicts.merge_patch_dict(
                    obj, {"spec": {"replicas": replicas}, "metadata": {"generation": generation}}
                )
            )
            if not request.params.get("dryRun"):
                obj = self.put(request.resource, obj)
        meta = {k: obj["metadata"].get(k) for k in ("name", "namespace", "uid", "resourceVersion")}
        replicas = obj.get("spec", {}).get("replicas", 1)
        scale = {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": meta,
                 "spec": {"replicas": replicas}, "status": {"replicas": replicas}}  # fmt: skip
        return aiohttp.web.json_response(scale)

    async def _serve_list(self, request: kmock.Request) -> Any:
        listing = await super()._serve_list(request)
        items = [i for i in listing["items"] if _selected(i, request.params.get("labelSelector"), labels=True)]
        items = [i for i in items if _selected(i, request.params.get("fieldSelector"), labels=False)]
        group_version = "/".join(p for p in (request.resource.group, request.resource.version) if p)
        return {**listing, "kind": f"{KINDS.get(request.resource.plural, 'Object')}List",
                "apiVersion": group_version, "items": items}  # fmt: skip

    async def _render_error(self, exc: Exception) -> aiohttp.web.StreamResponse:
        if isinstance(exc, kmock_k8s.KubernetesObjectConflictError):
            return status(409, "AlreadyExists", exc.message or "already exists")
        if isinstance(exc, kmock.KubernetesNotFoundError):
            return status(404, "NotFound", exc.message or "not found")
        return await super()._render_error(exc)


def _selected(obj: dict[str, Any], selector: str | None, *, labels: bool) -> bool:
    for term in filter(None, (t.strip() for t in (selector or "").split(","))):
        negate = "!=" in term
        key, _, want = term.partition("!=" if negate else "=")
        have = (obj.get("metadata", {}).get("labels") or {}).get(key) if labels else _dig(obj, key)
        if not want.lstrip("=") and not negate:  # bare `key`: existence
            if have is None:
                return False
        elif (str(have) == want.lstrip("=")) == negate:
            return False
    return True


def _dig(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


class KubeServer:
    """kmock's server on a loopback port, in a thread with its own event loop."""

    def __init__(self, emulator: ClusterEmulator | None = None) -> None:
        self.emulator = emulator or ClusterEmulator()
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    def start(self, *, port: int | None = None) -> str:
        ready = threading.Event()

        async def serve() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            async with self.emulator, kmock.Server(self.emulator, port=port) as server:
                self.url = str(server.url).rstrip("/")
                ready.set()
                await self._stop.wait()

        self._thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True, name="kmock")
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("kmock did not start")
        return self.url

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)

    def api_client(self, *, token: str | None = None, url: str | None = None) -> client.ApiClient:
        configuration = client.Configuration(host=url or self.url)
        configuration.retries = False  # as connect.py does: the retries under test are ours
        if token:
            configuration.api_key = {"BearerToken": token}
            configuration.api_key_prefix = {"BearerToken": "Bearer"}
        return client.ApiClient(configuration)

    def authorizations(self) -> list[str | None]:
        return [r.headers.get("Authorization") for r in self.emulator]


@pytest.fixture
def kube() -> Iterator[KubeServer]:
    server = KubeServer()
    server.start()
    yield server
    server.stop()


class FakeClock:
    """Monotonic time that only moves when the code under test sleeps; every delay is recorded."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def write_kubeconfig(path: Any, *, server: str, token: str = "static-token") -> str:
    """A kubeconfig for one cluster (`test`) whose user authenticates with a bearer token."""
    import yaml

    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": server}}],
        "users": [{"name": "bot", "user": {"token": token}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "bot"}}],
    }))  # fmt: skip
    return str(path)


CLUSTER = "aks-test"


@dataclass
class Harness:
    """The handler under test, wired to the emulator through a kubeconfig, with fake time."""

    server: KubeServer
    clock: FakeClock
    snapshots: Any
    handler: Any
    progress: list[str]

    @property
    def emu(self) -> ClusterEmulator:
        return self.server.emulator

    def ctx(self, *, step: int = 0, expected: Any = None, incident: str = "inc-0001") -> Any:
        from remediation.actions.runtime import StepContext

        return StepContext(incident, step, self.snapshots, progress=self.progress.append, expected=expected)


def make_harness(server: KubeServer, tmp_path: Any, **settings: Any) -> Harness:
    from remediation.actions import kubernetes
    from remediation.actions.dispatch import ActionSet
    from remediation.actions.kubernetes import ClusterClients, KubernetesRuntime, KubernetesSettings
    from remediation.retry import RetryPolicy
    from remediation.store.snapshots import InMemorySnapshotStore

    clock = FakeClock()
    config = KubernetesSettings(
        kubeconfigs={CLUSTER: write_kubeconfig(tmp_path / "kubeconfig", server=server.url)},
        request_timeout_seconds=5,
        **settings,
    )
    retry = RetryPolicy(attempts=4, max_seconds=120, sleep=clock.sleep, clock=clock)
    runtime = KubernetesRuntime(clients=ClusterClients(settings=config), settings=config, retry=retry)
    handler = ActionSet(runtimes={KubernetesRuntime: lambda: runtime}, catalogue=kubernetes.ACTIONS)
    return Harness(server, clock, InMemorySnapshotStore(), handler, [])


@pytest.fixture
def k8s(kube: KubeServer, tmp_path: Any) -> Harness:
    return make_harness(kube, tmp_path)


def node(name: str, *, unschedulable: bool = False) -> dict[str, Any]:
    spec = {"unschedulable": True} if unschedulable else {}
    meta = {"name": name, "labels": {"agentpool": "np1"}}
    return {"apiVersion": "v1", "kind": "Node", "metadata": meta, "spec": spec, "status": {"phase": "Running"}}


def cluster_admin_binding(
    name: str = "dev-cluster-admin", *, subject: dict[str, str] | None = None, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    """A ClusterRoleBinding granting cluster-admin (to dev-user@contoso.com unless `subject` says)."""
    metadata: dict[str, Any] = {"name": name, **({"labels": labels} if labels else {})}
    granted = subject or {"kind": "User", "name": "dev-user@contoso.com"}
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": metadata,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{**granted, "apiGroup": "rbac.authorization.k8s.io"}],
    }


def pod(name: str, *, namespace: str = "payments", node_name: str = "n1", owner: str | None = "ReplicaSet",
        annotations: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    owners = [{"apiVersion": "apps/v1", "kind": owner, "name": f"{name}-owner", "uid": "o-1"}] if owner else []
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": name},
                         "ownerReferences": owners, "annotations": annotations or {}},
            "spec": {"nodeName": node_name, "containers": [{"name": "c", "image": "nginx"}]},
            "status": {"phase": "Running"}}  # fmt: skip


def service(name: str, *, namespace: str = "payments", type: str = "LoadBalancer",
            source_ranges: list[str] | None = None) -> dict[str, Any]:  # fmt: skip
    """A Service as the API server keeps it: node ports allocated when exposed, defaults filled in."""
    port: dict[str, Any] = {"name": "https", "protocol": "TCP", "port": 443, "targetPort": 8443}
    spec: dict[str, Any] = {"type": type, "selector": {"app": name}, "clusterIP": "10.0.12.34",
                            "clusterIPs": ["10.0.12.34"], "ports": [port]}  # fmt: skip
    if type in ("LoadBalancer", "NodePort"):
        port["nodePort"] = 31443
        spec["externalTrafficPolicy"] = "Cluster"
    if type == "LoadBalancer":
        spec["allocateLoadBalancerNodePorts"] = True
    if source_ranges is not None:
        spec["loadBalancerSourceRanges"] = source_ranges
    status = {"loadBalancer": {"ingress": [{"ip": "20.1.2.3"}]}} if type == "LoadBalancer" else {}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
            "spec": spec, "status": status}  # fmt: skip


def serve_as(kube: KubeServer, cluster_id: str, *, tmp_path: Any, monkeypatch: Any) -> KubeServer:
    """Point the app at `kube` for `cluster_id` through settings alone (its kubeconfig, and the
    cluster allow-list naming it), and have the next composition pick them up."""
    from functions import wiring

    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig-served", server=kube.url)
    monkeypatch.setenv("REMEDIATION_KUBECONFIGS", json.dumps({cluster_id: kubeconfig}))
    monkeypatch.setenv("REMEDIATION_CLUSTERS", cluster_id)
    wiring.reset()
    return kube
