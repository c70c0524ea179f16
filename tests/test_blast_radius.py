"""Where an incident's image runs: pods by digest on two kmock clusters, one of them down at times.

The finder (`remediation.actions.kubernetes.images`) against two `KubeServer`s reached through
kubeconfigs named in REMEDIATION_KUBECONFIGS and allowed by REMEDIATION_CLUSTERS; the engine keeping
the result on the incident it opens from a registry push; the message, Details and `/remediate show`
saying it; and the whole chain (Event Grid push → Slack message) through the in-process host.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from acr_server import LOGIN_SERVER, AcrServer
from bot.blocks import incident_blocks
from bot.views import details_blocks
from functions import wiring
from harness import Chain
from harness import chain_fixture as chain_fixture  # the `chain` fixture
from kube_api import PODS, KubeServer, write_kubeconfig
from remediation.actions.kubernetes import ClusterClients
from remediation.actions.kubernetes.images import ImageFinder, image_digest, workload_of
from remediation.blast_radius import headline, measure
from remediation.engine import Engine
from remediation.incidents import Incident, InMemoryIncidentStore
from remediation.playbooks import load_playbooks
from remediation.settings import KubernetesSettings, Settings
from remediation.signals import Signal, decode_batch, parse_any
from slack_server import slack_fixture as slack_fixture  # the `slack` fixture
from test_e2e_chain import OLD, push_event
from test_e2e_chain import registry_fixture as registry_fixture  # the `registry` fixture
from test_e2e_chain import registry_sleeps_fixture as registry_sleeps_fixture

PLAYBOOKS = Path(__file__).resolve().parent.parent / "playbooks"
DIGEST = OLD  # prod/api:latest and prod/api:v1 in the registry of test_e2e_chain
OTHER = "sha256:" + "b" * 64
NOWHERE = "sha256:" + "c" * 64
REPO = f"{LOGIN_SERVER}/prod/api"


def image_pod(
    name: str,
    *,
    namespace: str = "payments",
    digest: str = DIGEST,
    tag: str = "v1",
    owner: tuple[str, str] | None = None,
    labels: dict[str, str] | None = None,
    phase: str = "Running",
    pullable: bool = True,
    init: bool = False,
) -> dict[str, Any]:
    """A pod whose container runs `digest`, pulled by `tag`, as the kubelet reports it."""
    owners = []
    if owner is not None:
        owners.append({"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1], "uid": "u", "controller": True})
    image_id = f"{'docker-pullable://' if pullable else ''}{REPO}@{digest}"
    statuses = [{"name": "app", "image": f"{REPO}:{tag}", "imageID": image_id, "ready": True}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {},
                     "ownerReferences": owners},
        "spec": {"nodeName": "n1", "containers": [{"name": "app", "image": f"{REPO}:{tag}"}]},
        "status": {"phase": phase, "initContainerStatuses" if init else "containerStatuses": statuses},
    }  # fmt: skip


def seed_east(kube: KubeServer) -> None:
    """3 pods of Deployment api (two tags), 1 of StatefulSet db (init container), and pods that do not count."""
    rs = ("ReplicaSet", "api-7d9c6b5f4")
    put = kube.emulator.put
    put(PODS, image_pod("api-7d9c6b5f4-aaaaa", owner=rs, labels={"pod-template-hash": "7d9c6b5f4"}, tag="v1"))
    put(PODS, image_pod("api-7d9c6b5f4-bbbbb", owner=rs, labels={"pod-template-hash": "7d9c6b5f4"}, tag="latest"))
    put(PODS, image_pod("api-7d9c6b5f4-ccccc", owner=rs, tag="latest", pullable=False))  # no label: name suffix
    put(PODS, image_pod("db-0", namespace="data", owner=("StatefulSet", "db"), init=True))
    put(PODS, image_pod("web-1", owner=("ReplicaSet", "web-5b8f7c9d6"), digest=OTHER))  # another image
    put(PODS, image_pod("api-job-x", owner=("Job", "migrate"), phase="Succeeded"))  # finished: not running


def seed_west(kube: KubeServer) -> None:
    """2 pods of DaemonSet agent (tag latest) and a bare pod: 3 pods, 2 workloads."""
    put = kube.emulator.put
    put(PODS, image_pod("agent-x1", namespace="monitoring", owner=("DaemonSet", "agent"), tag="latest"))
    put(PODS, image_pod("agent-x2", namespace="monitoring", owner=("DaemonSet", "agent"), tag="latest"))
    put(PODS, image_pod("debug", namespace="default"))
    put(PODS, image_pod("other", namespace="default", digest=OTHER))


@pytest.fixture
def clusters(tmp_path: Path) -> Iterator[dict[str, KubeServer]]:
    servers = {"east": KubeServer(), "west": KubeServer()}
    for server in servers.values():
        server.start()
    seed_east(servers["east"])
    seed_west(servers["west"])
    yield servers
    for server in reversed(servers.values()):  # last started, first stopped: kmock's DNS interceptors nest
        stop(server)


def stop(server: KubeServer) -> None:
    """Stop a server that a test may have stopped already (a cluster down)."""
    if server._thread is not None and server._thread.is_alive():
        server.stop()


def env_of(servers: dict[str, KubeServer], tmp_path: Path) -> dict[str, str]:
    kubeconfigs = {name: write_kubeconfig(tmp_path / f"kc-{name}", server=s.url) for name, s in servers.items()}
    return {
        "REMEDIATION_KUBECONFIGS": json.dumps(kubeconfigs),
        "REMEDIATION_CLUSTERS": ",".join(servers),
        "REMEDIATION_K8S_REQUEST_TIMEOUT_SECONDS": "3",
    }


def kube_settings(servers: dict[str, KubeServer], tmp_path: Path) -> KubernetesSettings:
    return Settings.from_env(env_of(servers, tmp_path), require_storage=False).kubernetes


def finder_for(settings: KubernetesSettings, **kwargs: Any) -> ImageFinder:
    return ImageFinder.of(ClusterClients(settings=settings), settings, **kwargs)


def push_signal(*, digest: str = DIGEST) -> Signal:
    event = push_event()
    event["data"]["target"]["digest"] = digest
    [signal] = [s for s in decode_batch(json.dumps([event]).encode(), parse_any) if isinstance(s, Signal)]
    # What the push policy adds in the app (`latest` is disallowed in prod/*): the playbook's condition.
    return dataclasses.replace(signal, extended_properties={**signal.extended_properties, "disallowed_tag": "true"})


def message_text(blocks: list[dict[str, Any]]) -> str:
    return "\n".join(str(block.get("text", {}).get("text", "")) for block in blocks if block.get("type") == "section")


class TestFinder:
    def test_pods_by_digest_on_both_clusters_whatever_the_tag(
        self, clusters: dict[str, KubeServer], tmp_path: Path
    ) -> None:
        answers = finder_for(kube_settings(clusters, tmp_path))(DIGEST)
        assert [a.cluster for a in answers] == ["east", "west"]
        east, west = answers
        assert east.answered and west.answered
        assert sorted((p.namespace, p.kind, p.workload, p.name) for p in east.pods) == [
            ("data", "StatefulSet", "db", "db-0"),
            ("payments", "Deployment", "api", "api-7d9c6b5f4-aaaaa"),
            ("payments", "Deployment", "api", "api-7d9c6b5f4-bbbbb"),
            ("payments", "Deployment", "api", "api-7d9c6b5f4-ccccc"),
        ]
        assert {(p.kind, p.workload) for p in west.pods} == {("DaemonSet", "agent"), ("Pod", "debug")}
        blast = measure(push_signal().summary(), finder_for(kube_settings(clusters, tmp_path)), now=datetime.now(UTC))
        assert blast is not None
        assert (blast["pods"], blast["workloads"], blast["clusters_running"]) == (7, 4, 2)
        assert headline(blast) == "runs in 7 pods of 4 workloads on 2 clusters"
        [api] = [w for w in blast["running"] if w["name"] == "api"]
        assert api["images"] == [f"{REPO}:latest", f"{REPO}:v1"]  # one image, two tags

    def test_a_cluster_that_does_not_answer_is_unknown_never_empty(
        self, clusters: dict[str, KubeServer], tmp_path: Path
    ) -> None:
        settings = kube_settings(clusters, tmp_path)
        clusters["west"].stop()
        started = time.perf_counter()
        answers = finder_for(settings)(DIGEST)
        assert time.perf_counter() - started < 10
        east, west = answers
        assert (len(east.pods), west.answered, west.pods) == (4, False, ())
        assert "west" in (west.error or "") and "cannot reach" in (west.error or "")
        blast = measure(push_signal().summary(), finder_for(settings), now=datetime.now(UTC))
        assert blast is not None
        line = headline(blast)
        assert line.startswith("runs in 4 pods of 2 workloads on 1 cluster; unknown: west (")
        assert "runs nowhere" not in line

    def test_a_cluster_slower_than_the_deadline_is_unknown(
        self, clusters: dict[str, KubeServer], tmp_path: Path
    ) -> None:
        settings = kube_settings(clusters, tmp_path)
        real, release = ClusterClients(settings=settings), threading.Event()

        class SlowWest:
            def get(self, cluster: str) -> Any:
                if cluster == "west":
                    release.wait(5)
                return real.get(cluster)

        finder = ImageFinder.of(SlowWest(), settings, deadline=0.5)
        started = time.perf_counter()
        east, west = finder(DIGEST)
        release.set()
        assert time.perf_counter() - started < 2
        assert (len(east.pods), west.error) == (4, "no answer within 0.5 s")

    def test_an_image_running_nowhere(self, clusters: dict[str, KubeServer], tmp_path: Path) -> None:
        blast = measure(
            push_signal(digest=NOWHERE).summary(), finder_for(kube_settings(clusters, tmp_path)), now=datetime.now(UTC)
        )
        assert blast is not None and blast["pods"] == 0
        assert headline(blast, quarantine=True) == (
            "runs nowhere: no pod runs it on the 2 clusters asked; quarantining it stops no running pod"
        )

    def test_digests_and_workloads(self) -> None:
        assert image_digest(f"docker-pullable://{REPO}@{DIGEST.upper().replace('SHA256', 'sha256')}") == DIGEST
        assert image_digest(f"{REPO}@{DIGEST}") == DIGEST
        assert image_digest(DIGEST) is None  # a bare image id is not a manifest digest
        assert image_digest(f"{REPO}:v1") is None
        assert workload_of({"name": "p", "ownerReferences": [{"kind": "ReplicaSet", "name": "web-5b8f7c9d6"}]}) == (
            "Deployment",
            "web",
        )
        assert workload_of({"name": "p", "ownerReferences": [{"kind": "ReplicaSet", "name": "custom"}]}) == (
            "ReplicaSet",
            "custom",
        )
        assert workload_of({"name": "p"}) == ("Pod", "p")


def miner_alert_summary(image: str) -> dict[str, Any]:
    return {"type": "K8S.NODE_DigitalCurrencyMining", "targets": {"image": image, "node": "n1"}}


class TestMeasure:
    def test_an_image_by_tag_only_is_not_resolved(self) -> None:
        def never(digest: str) -> list[Any]:
            raise AssertionError("no cluster is asked without a digest")

        blast = measure(miner_alert_summary("docker.io/xmrig/xmrig:latest"), never, now=datetime.now(UTC))
        assert blast is not None and blast["status"] == "digest_unknown" and blast["measured_at"]
        assert headline(blast).startswith("digest unknown: not measured")

    def test_a_digest_in_the_image_reference_is_used(self) -> None:
        asked: list[str] = []

        def finder(digest: str) -> list[Any]:
            asked.append(digest)
            return []

        blast = measure(miner_alert_summary(f"{REPO}:1.0@{DIGEST}"), finder, now=datetime.now(UTC))
        assert asked == [DIGEST] and blast is not None and blast["status"] == "no_clusters"

    def test_no_image_no_blast_radius(self) -> None:
        assert measure({"targets": {"node": "n1"}}, lambda d: [], now=datetime.now(UTC)) is None


def engine_for(settings: KubernetesSettings) -> Engine:
    return Engine(
        playbooks=lambda: load_playbooks(PLAYBOOKS),
        incidents=InMemoryIncidentStore(),
        image_finder=finder_for(settings),
    )


class TestEngineAndMessage:
    def test_a_push_opens_an_incident_that_says_where_the_image_runs(
        self, clusters: dict[str, KubeServer], tmp_path: Path
    ) -> None:
        settings = kube_settings(clusters, tmp_path)
        clusters["west"].stop()
        engine = engine_for(settings)
        engine.handle(push_signal())
        [incident] = engine.incidents.list()
        assert incident.playbook == "registry-quarantine-latest-in-prod"
        blast = incident.blast_radius
        assert blast is not None and blast["measured_at"] and blast["digest"] == DIGEST
        text = message_text(incident_blocks(incident))
        assert "runs in 4 pods of 2 workloads on 1 cluster" in text
        assert "unknown: west" in text
        assert "east · payments/api (Deployment, 3 pods" in text
        assert Incident.from_json(json.loads(json.dumps(incident.to_json()))).blast_radius == blast

    def test_the_message_names_the_first_few_and_details_all(
        self, clusters: dict[str, KubeServer], tmp_path: Path
    ) -> None:
        engine = engine_for(kube_settings(clusters, tmp_path))
        engine.handle(push_signal())
        [incident] = engine.incidents.list()
        text = message_text(incident_blocks(incident))
        assert "runs in 7 pods of 4 workloads on 2 clusters" in text
        assert "and 1 more workload (all in Details)" in text
        details = message_text(details_blocks(incident))
        assert "*Clusters asked:* east: 4 pod(s) · west: 3 pod(s)" in details
        for workload in ("payments/api", "data/db", "monitoring/agent", "default/debug"):
            assert workload in details

    def test_a_quarantine_of_an_image_running_nowhere_says_so(
        self, clusters: dict[str, KubeServer], tmp_path: Path
    ) -> None:
        engine = engine_for(kube_settings(clusters, tmp_path))
        engine.handle(push_signal(digest=NOWHERE))
        [incident] = engine.incidents.list()
        text = message_text(incident_blocks(incident))
        assert "runs nowhere: no pod runs it on the 2 clusters asked; quarantining it stops no running pod" in text

    def test_table_rows_keep_it(self) -> None:
        from azure.data.tables import TableEntity

        from remediation.store.incident_rows import entity_of, row_of

        blast = {"measured_at": "2024-11-21T10:00:00+00:00", "status": "measured", "pods": 1, "clusters": []}
        engine = Engine(playbooks=lambda: load_playbooks(PLAYBOOKS), incidents=InMemoryIncidentStore())
        engine.handle(push_signal())
        [incident] = engine.incidents.list()
        assert incident.blast_radius is None  # no finder, nothing measured
        entity = TableEntity(entity_of(Incident.from_json({**incident.to_json(), "blast_radius": blast})))
        entity._metadata = {"etag": "e", "timestamp": datetime.now(UTC)}
        assert row_of(entity).incident.blast_radius == blast


@pytest.fixture(name="two_clusters")
def two_clusters_fixture(
    registry: AcrServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, KubeServer]]:
    """Two kmock clusters the app may act on (the second one down), next to the ACR TLS server."""
    servers = {"east": KubeServer(), "west": KubeServer()}
    for server in servers.values():
        server.start()
    seed_east(servers["east"])
    for name, value in env_of(servers, tmp_path).items():
        monkeypatch.setenv(name, value)
    servers["west"].stop()
    wiring.reset()  # the registry's credential and sleep stay (`wiring.use`)
    yield servers
    servers["east"].stop()


class TestChain:
    def test_push_to_slack_message_with_the_blast_radius(
        self, two_clusters: dict[str, KubeServer], chain: Chain
    ) -> None:
        chain.host.event_grid("registry_events", [push_event()])
        incident = chain.the_incident()
        assert incident.blast_radius is not None and incident.blast_radius["pods"] == 4
        [post] = chain.posts()
        text = message_text(post.args["blocks"])
        assert "runs in 4 pods of 2 workloads on 1 cluster" in text
        assert "unknown: west" in text
