"""Where an image runs: the pods running a digest on every cluster the bot may act on, asked in parallel.

Neighbours: the composition root hands an `ImageFinder` to the engine (`remediation.blast_radius`
turns its answers into the incident's `blast_radius`); it reaches the clusters through the same
`connect.ClusterClients` and `session.ClusterSession` as the actions (the allow-list, kubeconfig or
AKS, the request timeout), with few retries: this is a read shown to people, not a step to finish.

A pod runs the image when one of its container statuses (`containerStatuses`, `initContainerStatuses`,
`ephemeralContainerStatuses`) reports an `imageID` ending in `@<digest>`: the digest the kubelet
pulled, whatever tag the pod spec names, so two tags of one image are one image and a tag moved
since is not. Pods that finished (Succeeded, Failed) are left out by the field selector.

The clusters are asked at once, each in its own thread, under one overall deadline: a cluster that
fails or does not answer in time is reported as unknown with the reason, never as running nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from remediation.actions.kubernetes.runtime import ClientSource, KubernetesRuntime
from remediation.actions.kubernetes.session import PODS, ClusterSession
from remediation.retry import RetryPolicy
from remediation.settings import KubernetesSettings

logger = logging.getLogger(__name__)

DEADLINE_SECONDS = 10.0  # the whole query, all clusters; a slower cluster is reported unknown
RETRY_ATTEMPTS = 2  # one retry of a failed page: the answer is for people, now
PAGE_SIZE = 500
MAX_WORKERS = 16
RUNNING_SELECTOR = "status.phase!=Succeeded,status.phase!=Failed"
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
# The suffix a ReplicaSet of a Deployment carries: `pod-template-hash`, in Kubernetes' safe alphabet.
_TEMPLATE_HASH = re.compile(r"^(?P<deployment>.+)-[bcdfghjklmnpqrstvwxz2456789]{5,10}$")
_STATUSES = ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses")


@dataclass(frozen=True, slots=True)
class RunningPod:
    """One pod running the digest, and the workload that owns it (kind and name)."""

    namespace: str
    name: str
    kind: str  # the workload's kind: Deployment, StatefulSet, DaemonSet, Job, ReplicaSet, Pod...
    workload: str
    containers: tuple[str, ...]  # the containers running the digest
    images: tuple[str, ...]  # the image references they name (tags), as the kubelet reports them
    node: str | None = None


@dataclass(frozen=True, slots=True)
class ClusterAnswer:
    """What one cluster said: the pods running the digest, or why it is unknown (`error`)."""

    cluster: str
    pods: tuple[RunningPod, ...] = ()
    error: str | None = None
    seconds: float = 0.0
    scanned: int = 0  # pods listed

    @property
    def answered(self) -> bool:
        return self.error is None


Lister = Callable[[ClusterSession, str], Iterable[Mapping[str, Any]]]


class ImageFinder:
    """`finder(digest)`: one `ClusterAnswer` per cluster of the allow-list, in the allow-list's order.

    `runtime` gives the Kubernetes runtime (its clients and settings) on first use, so composing
    the finder reaches no cluster and loads no SDK.
    """

    def __init__(
        self,
        *,
        runtime: Callable[[], KubernetesRuntime],
        deadline: float = DEADLINE_SECONDS,
        attempts: int = RETRY_ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._runtime = runtime
        self.deadline = deadline
        self._attempts = attempts
        self._sleep = sleep

    @classmethod
    def of(
        cls, clients: ClientSource, settings: KubernetesSettings, *, deadline: float = DEADLINE_SECONDS
    ) -> ImageFinder:
        runtime = KubernetesRuntime(clients=clients, settings=settings)
        return cls(runtime=lambda: runtime, deadline=deadline)

    @classmethod
    def of_actions(
        cls, actions: Any, *, deadline: float = DEADLINE_SECONDS, sleep: Callable[[float], None] = time.sleep
    ) -> ImageFinder | None:
        """The finder on the Kubernetes runtime of an `ActionSet` (its clients shared); None without one."""
        names = sorted(name for name, action in actions.classes.items() if action.Runtime is KubernetesRuntime)
        if not names:
            return None
        return cls(runtime=lambda: actions[names[0]].runtime, deadline=deadline, sleep=sleep)

    def clusters(self) -> list[str]:
        """The clusters asked: REMEDIATION_CLUSTERS, else the kubeconfigs' keys (the allow-list)."""
        settings = self._runtime().settings
        return sorted(settings.clusters or settings.kubeconfigs)

    def __call__(self, digest: str) -> list[ClusterAnswer]:
        digest = digest.strip().lower()
        if not _DIGEST.fullmatch(digest):
            raise ValueError(f"not an image digest: {digest!r}")
        clusters = self.clusters()
        if not clusters:
            return []
        started = time.perf_counter()
        pool = ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(clusters)), thread_name_prefix="image-finder")
        try:
            futures = {cluster: pool.submit(self._ask, cluster, digest) for cluster in clusters}
            wait(futures.values(), timeout=self.deadline)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)  # a hung cluster keeps only its own thread
        answers = [self._answer(cluster, future, started=started) for cluster, future in futures.items()]
        for answer in answers:
            if not answer.answered:
                logger.warning("cluster not answering for the blast radius", extra={"cluster": answer.cluster,
                               "reason": answer.error})  # fmt: skip
        return answers

    def _answer(self, cluster: str, future: Future[ClusterAnswer], *, started: float) -> ClusterAnswer:
        if not future.done():
            future.cancel()
            waited = round(time.perf_counter() - started, 3)
            return ClusterAnswer(cluster, error=f"no answer within {self.deadline:g} s", seconds=waited)
        error = future.exception()
        if error is not None:
            return ClusterAnswer(cluster, error=_reason(error), seconds=round(time.perf_counter() - started, 3))
        return future.result()

    def _ask(self, cluster: str, digest: str) -> ClusterAnswer:
        began = time.perf_counter()
        session = self._session(cluster)
        scanned, pods = 0, []
        for item in list_running_pods(session):
            scanned += 1
            found = running(item, digest)
            if found is not None:
                pods.append(found)
        pods.sort(key=lambda p: (p.namespace, p.kind, p.workload, p.name))
        return ClusterAnswer(cluster, tuple(pods), seconds=round(time.perf_counter() - began, 3), scanned=scanned)

    def _session(self, cluster: str) -> ClusterSession:
        runtime = self._runtime()
        settings = runtime.settings
        timeout = min(settings.request_timeout_seconds, self.deadline)
        bounded = dataclasses.replace(settings, request_timeout_seconds=timeout)
        retry = RetryPolicy(
            attempts=self._attempts, max_seconds=self.deadline, max_retry_after=self.deadline / 2, sleep=self._sleep
        )
        session = runtime.session(cluster)  # the allow-list guard, and the cluster's client
        return ClusterSession(session.cluster, session.api_client, bounded, retry)


def list_running_pods(session: ClusterSession) -> Iterable[Mapping[str, Any]]:
    """Every pod that has not finished, on all namespaces, a page at a time, as raw JSON dicts.

    Read by path (`ClusterSession.get`), which skips the client's model objects: a thousand pods
    are parsed once, by `json`, not turned into objects and back.
    """
    token: str | None = None
    while True:
        query = {"fieldSelector": RUNNING_SELECTOR, "limit": str(PAGE_SIZE)}
        if token:
            query["continue"] = token
        body = session.get(PODS, query=query, what="list pods")
        yield from body.get("items") or ()
        token = (body.get("metadata") or {}).get("continue") or None
        if not token:
            return


def running(pod: Mapping[str, Any], digest: str) -> RunningPod | None:
    """The pod as a `RunningPod` when a container of it runs `digest` (by imageID), else None."""
    status = pod.get("status") or {}
    containers, images = [], []
    for key in _STATUSES:
        for container in status.get(key) or ():
            if image_digest(str(container.get("imageID") or "")) == digest:
                containers.append(str(container.get("name") or "?"))
                images.append(str(container.get("image") or ""))
    if not containers:
        return None
    meta = pod.get("metadata") or {}
    kind, workload = workload_of(meta)
    return RunningPod(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        kind=kind,
        workload=workload,
        containers=tuple(containers),
        images=tuple(sorted({image for image in images if image})),
        node=(pod.get("spec") or {}).get("nodeName"),
    )


def image_digest(reference: str) -> str | None:
    """`sha256:...` from `[docker-pullable://]registry/repo@sha256:...`; None without a `@` digest."""
    _, at, digest = reference.rpartition("@")
    digest = digest.strip().lower()
    return digest if at and _DIGEST.fullmatch(digest) else None


def workload_of(meta: Mapping[str, Any]) -> tuple[str, str]:
    """(kind, name) of the workload owning a pod: its controller, a ReplicaSet read as its Deployment."""
    owners: Sequence[Mapping[str, Any]] = meta.get("ownerReferences") or ()
    owner = next((o for o in owners if o.get("controller")), owners[0] if owners else None)
    if owner is None:
        return "Pod", str(meta.get("name") or "")
    kind, name = str(owner.get("kind") or "?"), str(owner.get("name") or "?")
    if kind == "ReplicaSet":
        template_hash = (meta.get("labels") or {}).get("pod-template-hash")
        if template_hash and name.endswith(f"-{template_hash}"):
            return "Deployment", name[: -len(template_hash) - 1]
        match = _TEMPLATE_HASH.fullmatch(name)
        if match is not None:
            return "Deployment", match["deployment"]
    return kind, name


def _reason(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text[:300]
