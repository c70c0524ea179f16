"""An incident's blast radius: where the image it is about runs, measured when it opens.

Neighbours: the engine calls `measure` when an incident about an image opens (a push, a quarantine,
a malicious-image or miner alert, a Defender finding) and keeps the result on the incident
(`Incident.blast_radius`, JSON); the finder is `remediation.actions.kubernetes.images.ImageFinder`
(any callable from digest to per-cluster answers will do); `bot.blocks`, `bot.views` and
`remediate simulate` show it through `headline` and `workload_lines`.

The image is found by digest only: `targets.digest`, or the `@sha256:` of `targets.image`. An alert
that names an image by tag alone is not resolved to a digest (the tag may have moved since the pod
pulled it): its blast radius says "digest unknown: not measured". A cluster that did not answer is
listed as unknown, and the headline never calls the image absent from it.

The JSON kept on the incident:

    {"measured_at": "...", "status": "measured" | "digest_unknown" | "no_clusters" | "failed" | "offline",
     "digest": "sha256:..." | null, "image": "..." | null,
     "pods": 7, "workloads": 3, "clusters_running": 2,
     "clusters": [{"cluster": "aks1", "pods": 5}, {"cluster": "aks2", "unknown": "no answer within 10 s"}],
     "running": [{"cluster", "namespace", "kind", "name", "pods", "images"}, ...],  # workloads, at most MAX_WORKLOADS
     "more": 0}  # workloads left out of `running`
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from remediation.actions.kubernetes.images import ClusterAnswer
from remediation.clock import timestamp

logger = logging.getLogger(__name__)

Finder = Callable[[str], Sequence[ClusterAnswer]]

MAX_WORKLOADS = 100  # kept on the incident; Details names them all, then "and N more"
MAX_IMAGES = 5  # image references kept per workload
MAX_CHARS = 20_000  # of the JSON: a table column holds 64 KiB of UTF-16, about 32,000 characters
FIRST_FEW = 3  # workloads the message names; Details names them all
MEASURED = "measured"
DIGEST_UNKNOWN = "digest_unknown"
NO_CLUSTERS = "no_clusters"
FAILED = "failed"
OFFLINE = "offline"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}", re.IGNORECASE)
_AKS_NAME = re.compile(r"/managedclusters/([^/]+)$", re.IGNORECASE)


def image_of(signal: Mapping[str, Any]) -> tuple[str | None, str | None] | None:
    """(digest, image) the Signal summary is about; None when it names no image at all."""
    targets = signal.get("targets") or {}
    digest_field = str(targets.get("digest") or "").strip()
    image = str(targets.get("image") or "").strip() or None
    if not digest_field and image is None:
        return None
    digest = digest_field.lower() if _DIGEST.fullmatch(digest_field) else None
    if digest is None and image is not None and "@" in image:
        suffix = image.rpartition("@")[2].strip()
        digest = suffix.lower() if _DIGEST.fullmatch(suffix) else None
    if image is None and targets.get("repository"):
        server = targets.get("registry_login_server")
        tag = f":{targets['tag']}" if targets.get("tag") else ""
        image = f"{server}/{targets['repository']}{tag}" if server else f"{targets['repository']}{tag}"
    return digest, image


def measure(signal: Mapping[str, Any], finder: Finder, *, now: datetime) -> dict[str, Any] | None:
    """The blast radius of the image `signal` is about, asked of `finder` now; None if it names no image."""
    found = image_of(signal)
    if found is None:
        return None
    digest, image = found
    base: dict[str, Any] = {"measured_at": timestamp(now), "digest": digest, "image": image}
    if digest is None:
        return {**base, "status": DIGEST_UNKNOWN}
    try:
        answers = list(finder(digest))
    except Exception as error:  # a blast radius never keeps an incident from opening
        logger.warning("blast radius not measured", extra={"digest": digest, "reason": str(error)})
        return {**base, "status": FAILED, "reason": str(error)[:300]}
    if not answers:
        return {**base, "status": NO_CLUSTERS}
    return {**base, "status": MEASURED, **tally(answers)}


def offline(signal: Mapping[str, Any]) -> dict[str, Any] | None:
    """What `remediate simulate` says: the digest it would look for, not measured (it reaches no cluster)."""
    found = image_of(signal)
    if found is None:
        return None
    digest, image = found
    return {"status": OFFLINE if digest else DIGEST_UNKNOWN, "digest": digest, "image": image}


def tally(answers: Sequence[ClusterAnswer]) -> dict[str, Any]:
    """Pods, workloads and clusters running the digest, and the clusters that did not answer."""
    clusters: list[dict[str, Any]] = []
    workloads: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for answer in answers:
        if not answer.answered:
            clusters.append({"cluster": answer.cluster, "unknown": answer.error})
            continue
        clusters.append({"cluster": answer.cluster, "pods": len(answer.pods)})
        for pod in answer.pods:
            key = (answer.cluster, pod.namespace, pod.kind, pod.workload)
            entry = workloads.setdefault(
                key,
                {"cluster": answer.cluster, "namespace": pod.namespace, "kind": pod.kind, "name": pod.workload,
                 "pods": 0, "images": []},
            )  # fmt: skip
            entry["pods"] += 1
            entry["images"] = sorted({*entry["images"], *pod.images})
    ranked = sorted(workloads.values(), key=lambda w: (-w["pods"], w["cluster"], w["namespace"], w["name"]))
    for entry in ranked:
        entry["images"] = entry["images"][:MAX_IMAGES]
    kept = ranked[:MAX_WORKLOADS]
    while kept and len(json.dumps(kept)) > MAX_CHARS:
        kept = kept[: len(kept) // 2]
    return {
        "pods": sum(w["pods"] for w in ranked),
        "workloads": len(ranked),
        "clusters_running": len({w["cluster"] for w in ranked}),
        "clusters": clusters,
        "running": kept,
        "more": len(ranked) - len(kept),
    }


def cluster_name(cluster: str) -> str:
    """A cluster as people name it: an AKS resource id by its name, a kubeconfig key as it is."""
    match = _AKS_NAME.search(cluster)
    return match.group(1) if match else cluster


def unknown_clusters(blast: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(str(c["cluster"]), str(c.get("unknown") or "")) for c in blast.get("clusters") or () if "unknown" in c]


def headline(blast: Mapping[str, Any], *, quarantine: bool = False) -> str:
    """One line: 'runs in 7 pods of 3 workloads on 2 clusters; unknown: aks2 (no answer within 10 s)'.

    `quarantine`: the incident would quarantine the image, so an image running nowhere says that
    the quarantine stops no running pod.
    """
    status = blast.get("status")
    image = blast.get("image")
    if status == DIGEST_UNKNOWN:
        named = f" ({image} names no digest)" if image else ""
        return f"digest unknown: not measured{named}"
    if status == OFFLINE:
        return f"not measured offline (simulate reaches no cluster); would look for {blast.get('digest')}"
    if status == NO_CLUSTERS:
        return "not measured: no cluster is configured (REMEDIATION_CLUSTERS, REMEDIATION_KUBECONFIGS)"
    if status == FAILED:
        return f"not measured: {blast.get('reason') or 'the query failed'}"
    unknown = unknown_clusters(blast)
    asked = len(blast.get("clusters") or ())
    answered = asked - len(unknown)
    pods, workloads, running = int(blast.get("pods", 0)), int(blast.get("workloads", 0)), blast.get("clusters_running")
    if pods:
        line = (
            f"runs in {_count(pods, 'pod')} of {_count(workloads, 'workload')}"
            f" on {_count(int(running or 0), 'cluster')}"
        )
    elif not unknown:
        line = f"runs nowhere: no pod runs it on the {_count(asked, 'cluster')} asked"
        if quarantine:
            line += "; quarantining it stops no running pod"
    else:
        line = f"runs in no pod on the {_count(answered, 'cluster')} that answered"
    if unknown:
        line += "; unknown: " + ", ".join(f"{cluster_name(c)} ({reason})" for c, reason in unknown)
    return line


def workload_lines(blast: Mapping[str, Any], *, limit: int | None = None) -> list[str]:
    """'aks1 · payments/api (Deployment, 3 pods; prod/api:v1, prod/api:latest)' per workload, most pods first."""
    running = list(blast.get("running") or ())
    shown = running if limit is None else running[:limit]
    lines = []
    for w in shown:
        images = ", ".join(str(i) for i in w.get("images") or ())
        where = f"{cluster_name(str(w['cluster']))} · {w['namespace']}/{w['name']}"
        lines.append(f"{where} ({w['kind']}, {_count(int(w['pods']), 'pod')}" + (f"; {images})" if images else ")"))
    left = len(running) - len(shown) + int(blast.get("more", 0))
    if left > 0:
        lines.append(f"and {left} more workload{'s' if left != 1 else ''}")
    return lines


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
