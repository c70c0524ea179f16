"""Blast radius: where an image runs, asked of 2 kmock clusters with 1,000 pods each.

The engine's `ImageFinder` (remediation.actions.kubernetes.images), as the composition root builds
it: kubeconfigs to two kmock servers on loopback, both listed in the allow-list, asked in parallel
under the 10 s deadline. Each cluster holds `PODS_PER_CLUSTER` running pods seeded straight into the
emulator (`emulator.put`); one in ten runs the digest looked for, spread over 20 Deployments per
cluster, under two tags. One untimed query first (the clients' connections and lazy imports), then
`REPEATS` timed queries; the median counts. kmock's request history is cleared between queries.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.environment import forget_requests  # also puts tests/ on sys.path for kube_api

CLUSTERS = ("bench-east", "bench-west")
PODS_PER_CLUSTER = 1000
RUNNING_SHARE = 10  # one pod in this many runs the digest
DEPLOYMENTS = 20
REPEATS = 7
DIGEST = "sha256:" + "d" * 64
OTHER = "sha256:" + "e" * 64
REPO = "myreg.azurecr.io/prod/api"


def run() -> dict[str, Any]:
    from kube_api import PODS, KubeServer, write_kubeconfig
    from remediation.actions.kubernetes import ClusterClients
    from remediation.actions.kubernetes.images import ImageFinder
    from remediation.settings import Settings

    servers = [KubeServer() for _ in CLUSTERS]
    for server in servers:
        server.start()
    try:
        for server in servers:
            for i in range(PODS_PER_CLUSTER):
                server.emulator.put(PODS, _pod(i))
        with tempfile.TemporaryDirectory(prefix="bench-blast-") as scratch:
            kubeconfigs = {
                name: write_kubeconfig(Path(scratch) / name, server=server.url)
                for name, server in zip(CLUSTERS, servers, strict=True)
            }
            env = {"REMEDIATION_KUBECONFIGS": json.dumps(kubeconfigs), "REMEDIATION_CLUSTERS": ",".join(CLUSTERS)}
            settings = Settings.from_env(env, require_storage=False).kubernetes
            finder = ImageFinder.of(ClusterClients(settings=settings), settings)
            first = _timed(finder)
            runs = []
            for _ in range(REPEATS):
                for server in servers:
                    forget_requests(server)
                runs.append(_timed(finder))
    finally:
        for server in reversed(servers):
            server.stop()
    expected = PODS_PER_CLUSTER // RUNNING_SHARE * len(CLUSTERS)
    found = {r["pods"] for r in [first, *runs]}
    seconds = [r["seconds"] for r in runs]
    per_cluster = [s for r in runs for s in r["cluster_seconds"]]
    return {
        "clusters": len(CLUSTERS),
        "pods_per_cluster": PODS_PER_CLUSTER,
        "running_pods": expected,
        "median_s": round(statistics.median(seconds), 3),
        "min_s": round(min(seconds), 3),
        "max_s": round(max(seconds), 3),
        "first_s": first["seconds"],
        "median_cluster_s": round(statistics.median(per_cluster), 3),
        "median_cpu_s": round(statistics.median(r["cpu_seconds"] for r in runs), 3),
        "repeats": REPEATS,
        "check": "ok" if found == {expected} else f"found {sorted(found)} pods, expected {expected}",
    }


def _timed(finder: Any) -> dict[str, Any]:
    started, cpu = time.perf_counter(), time.process_time()
    answers = finder(DIGEST)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    if not all(answer.answered for answer in answers):
        raise RuntimeError(f"a cluster did not answer: {[a.error for a in answers if not a.answered]}")
    return {
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu_seconds, 3),  # the client's and kmock's, one process
        "cluster_seconds": [answer.seconds for answer in answers],
        "pods": sum(len(answer.pods) for answer in answers),
    }


def _pod(i: int) -> dict[str, Any]:
    deployment = f"svc-{i % DEPLOYMENTS}"
    template_hash = "7d9c6b5f4"
    runs_it = i % RUNNING_SHARE == 0
    digest = DIGEST if runs_it else OTHER
    tag = "latest" if i % 2 else "v1"
    owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{deployment}-{template_hash}",
             "uid": f"rs-{deployment}", "controller": True}  # fmt: skip
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{deployment}-{template_hash}-{i:05d}", "namespace": f"team-{i % 7}",
                     "labels": {"app": deployment, "pod-template-hash": template_hash}, "ownerReferences": [owner]},
        "spec": {"nodeName": f"n{i % 30}", "containers": [{"name": "app", "image": f"{REPO}:{tag}"},
                                                          {"name": "sidecar", "image": "mcr.microsoft.com/envoy:1"}]},
        "status": {"phase": "Running", "containerStatuses": [
            {"name": "app", "image": f"{REPO}:{tag}", "imageID": f"docker-pullable://{REPO}@{digest}", "ready": True},
            {"name": "sidecar", "image": "mcr.microsoft.com/envoy:1",
             "imageID": "mcr.microsoft.com/envoy@sha256:" + "f" * 64, "ready": True}]},
    }  # fmt: skip


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    figure = (
        f"median {result['median_s']} s ({result['min_s']} to {result['max_s']}) for "
        f"{result['clusters']} x {result['pods_per_cluster']:,} pods"
    )
    verdict = "-" if result["check"] == "ok" else "CHECK FAILED: " + result["check"]
    return [
        ("blast radius (image finder)", figure, "none", verdict),
        (
            "  per cluster, in parallel",
            f"median {result['median_cluster_s']} s; first query {result['first_s']} s",
            "",
            "",
        ),
        ("  CPU (client + kmock)", f"{result['median_cpu_s']} s per query", "", ""),
    ]
