"""The whole chain, end to end: a Defender alert through the registered functions, the incident and
its preview, an approval, the work queue read from Azurite, the executor trigger, the change on the
Kubernetes API (kmock), then undo; and the faults: redelivery, two executors, a worker killed
between steps, API errors, and a message that fails its last delivery.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.functions import meta
from azure.functions.timer import TimerRequestConverter
from azure.storage.queue import QueueClient

import host
from conftest import AppTables
from functions import wiring
from kube_api import NETPOLS, NODES, PODS, KubeServer, node, pod, write_kubeconfig
from remediation.actions import kubernetes
from remediation.actions.dispatch import ActionSet
from remediation.actions.kubernetes import KubernetesRuntime
from remediation.actions.kubernetes.nodes import DrainNode
from remediation.actions.kubernetes.pods import IsolatePod
from remediation.actions.kubernetes.session import ClusterSession
from remediation.actions.runtime import TransientFailure
from remediation.executor import LEASE, Executor
from remediation.failures import InProgressElsewhere
from remediation.incidents import Incident, IncidentState
from remediation.logcontext import IncidentFilter

pytest_plugins = ["kube_api"]

CLUSTER_ID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1"
ALERT: dict[str, Any] = {
    "AlertType": "K8S_PrivilegedContainer",
    "SystemAlertId": "alert-e2e-1",
    "Severity": "High",
    "StartTimeUtc": "2024-11-20T08:32:12.950321Z",
    "AzureResourceId": CLUSTER_ID,
    "Entities": [{"$id": "1", "Type": "K8s-pod", "Name": "web-1", "Namespace": {"$id": "2", "Name": "shop"}}],
}
TWO_STEPS = """
name: cordon-and-isolate
description: two steps, for the crash test
on: {source: defender, types: [K8S_PrivilegedContainer]}
steps:
  - action: kubernetes.cordon_node
    params: {cluster: "${targets.cluster_resource_id}", node: n1}
  - action: kubernetes.isolate_pod
    params: {cluster: "${targets.cluster_resource_id}", namespace: "${targets.namespace}", pod: "${targets.pod}"}
approval: {mode: required, approvers: [U000SECOPS1], min_approvals: 1, timeout: 30m}
"""


@pytest.fixture
def cluster(kube: KubeServer, app_tables: AppTables, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> KubeServer:
    """kmock with four nodes and the alert's pod, reached through a kubeconfig named by the AKS id."""
    for name in ("n1", "n2", "n3", "n4"):
        kube.emulator.put(NODES, node(name))
    kube.emulator.put(PODS, pod("web-1", namespace="shop", node_name="n1"))
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server=kube.url)
    monkeypatch.setenv("REMEDIATION_KUBECONFIGS", json.dumps({CLUSTER_ID: kubeconfig}))
    monkeypatch.setenv("REMEDIATION_K8S_RETRY_ATTEMPTS", "3")
    monkeypatch.setenv("REMEDIATION_K8S_RETRY_MAX_SECONDS", "2")
    wiring.reset()
    return kube


def post_alert(**changes: Any) -> None:
    response = host.call(
        "defender_alerts_http", host.http_post("defender/alerts", json.dumps(ALERT | changes).encode())
    )
    assert response.status_code == 200, response.get_body()


def the_incident() -> Incident:
    [incident] = wiring.engine().incidents.list()
    return incident


def deliveries(tables: AppTables, *, dequeue_count: int = 1) -> list[func.QueueMessage]:
    """Take every work message off the queue, as the host hands it to the trigger."""
    with QueueClient.from_connection_string(tables.connection_string, tables.queue) as queue:
        taken = list(queue.receive_messages(max_messages=32, visibility_timeout=60))
        for message in taken:
            queue.delete_message(message)
    return [
        host.queue_message(base64.b64decode(m.content), message_id=m.id, dequeue_count=dequeue_count) for m in taken
    ]


def run_executor(message: func.QueueMessage) -> None:
    host.call("remediation_executor", message)


def tick() -> None:
    """The minute timer, as the host calls it."""
    status = {"Last": "2026-01-01T00:00:00+00:00", "Next": "2026-01-01T00:01:00+00:00"}
    datum = meta.Datum(json.dumps({"IsPastDue": False, "ScheduleStatus": status}), "json")
    host.call("approval_timeouts", TimerRequestConverter.decode(datum, trigger_metadata={}))


def isolated(kube: KubeServer) -> bool:
    return kube.emulator.get(NETPOLS, "shop", "remediation-isolate-web-1") is not None


class TestEndToEnd:
    def test_alert_approve_execute_undo(self, cluster: KubeServer, app_tables: AppTables) -> None:
        post_alert()
        incident = the_incident()
        assert incident.state is IncidentState.AWAITING_APPROVAL
        [preview] = incident.previews
        assert preview["target"]["uid"] == cluster.emulator.get(PODS, "shop", "web-1")["metadata"]["uid"]
        assert deliveries(app_tables) == []
        wiring.engine().approve(incident.id, user="U000SECOPS1")
        [message] = deliveries(app_tables)
        run_executor(message)
        done = the_incident()
        assert (done.state, done.completed_steps) == (IncidentState.SUCCEEDED, 1)
        assert isolated(cluster)
        assert cluster.emulator.get(PODS, "shop", "web-1")["metadata"]["labels"]["remediation.security/isolated"]

        wiring.engine().request_undo(incident.id, user="U000SECOPS1")

        wiring.engine().request_undo(incident.id, user="U000SECOPS2")  # a second approver agrees
        [undo] = deliveries(app_tables)
        run_executor(undo)
        run_executor(undo)  # a redelivered undo finds the incident undone and does nothing
        assert (the_incident().state, the_incident().undo_steps) == (IncidentState.UNDONE, 1)
        assert not isolated(cluster)
        assert "remediation.security/isolated" not in cluster.emulator.get(PODS, "shop", "web-1")["metadata"]["labels"]
        assert wiring.engine().incidents.audit.verify(incident.id) == []  # type: ignore[attr-defined]

    def test_a_pod_replaced_after_the_approval_is_refused(self, cluster: KubeServer, app_tables: AppTables) -> None:
        post_alert()
        wiring.engine().approve(the_incident().id, user="U000SECOPS1")
        cluster.emulator.put(PODS, pod("web-1", namespace="shop", node_name="n1"))  # new uid, same name
        [message] = deliveries(app_tables)
        run_executor(message)
        failed = the_incident()
        assert failed.state is IncidentState.FAILED
        assert "re-created since approval" in (failed.last_error or "")
        assert not isolated(cluster)


class TestOperations:
    def test_every_line_logged_while_executing_names_the_incident(
        self, cluster: KubeServer, app_tables: AppTables, caplog: pytest.LogCaptureFixture
    ) -> None:
        post_alert()
        incident = the_incident()
        wiring.engine().approve(incident.id, user="U000SECOPS1")
        [message] = deliveries(app_tables)
        caplog.clear()
        caplog.set_level(logging.DEBUG)
        caplog.handler.addFilter(IncidentFilter())  # as install() equips the worker's root handler
        run_executor(message)
        lines = [record for record in caplog.records if not record.name.startswith("functions")]
        assert the_incident().state is IncidentState.SUCCEEDED
        assert len(lines) >= 3
        assert {getattr(record, "incident_id", None) for record in lines} == {incident.id}


class TestFaults:
    def test_every_message_delivered_three_times_runs_once(self, cluster: KubeServer, app_tables: AppTables) -> None:
        for _ in range(3):
            post_alert()
        wiring.engine().approve(the_incident().id, user="U000SECOPS1")
        [message] = deliveries(app_tables)
        run_executor(message)
        version = cluster.emulator.get(PODS, "shop", "web-1")["metadata"]["resourceVersion"]
        run_executor(message)
        run_executor(message)
        assert cluster.emulator.get(PODS, "shop", "web-1")["metadata"]["resourceVersion"] == version
        records = wiring.engine().incidents.audit.records(the_incident().id)  # type: ignore[attr-defined]
        assert [(record.kind, record.to_state) for record in records] == [
            ("opened", "awaiting_approval"),
            ("update", "awaiting_approval"),  # the preview, bound to the pod's uid
            ("approval", "approved"),
            ("transition", "executing"),
            ("step", "executing"),  # one step run, whatever the number of deliveries
            ("transition", "succeeded"),
        ]

    def test_two_executors_on_one_queue_run_it_once(self, cluster: KubeServer, app_tables: AppTables) -> None:
        post_alert()
        wiring.engine().approve(the_incident().id, user="U000SECOPS1")
        [message] = deliveries(app_tables)
        engine = wiring.engine()
        executors = [
            Executor(incidents=engine.incidents, actions=wiring.actions(), snapshots=wiring.snapshots())
            for _ in range(2)
        ]
        barrier, results = threading.Barrier(2), []

        def work(executor: Executor) -> None:
            barrier.wait()
            try:
                results.append(executor.execute(json.loads(message.get_body())["incident_id"]))
            except InProgressElsewhere as busy:  # the other one holds the lease: this delivery comes back
                results.append(busy)

        threads = [threading.Thread(target=work, args=(executor,)) for executor in executors]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert the_incident().state is IncidentState.SUCCEEDED
        assert the_incident().completed_steps == 1
        assert len(results) == 2 and sum(isinstance(r, Incident) for r in results) >= 1

    def test_a_worker_killed_between_two_steps_resumes_after_the_last_one(
        self, cluster: KubeServer, app_tables: AppTables, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        (tmp_path / "books").mkdir()
        (tmp_path / "books" / "two.yaml").write_text(TWO_STEPS)
        monkeypatch.setenv("REMEDIATION_PLAYBOOKS_DIR", str(tmp_path / "books"))
        wiring.reset()
        post_alert()
        wiring.engine().approve(the_incident().id, user="U000SECOPS1")
        [message] = deliveries(app_tables)
        incident_id = json.loads(message.get_body())["incident_id"]

        class WorkerKilled(BaseException):
            """The process dies: nothing of ours may catch it."""

        class DiesOnIsolate(IsolatePod):
            def apply_on(self, *args: Any) -> Any:
                raise WorkerKilled()

        dying = ActionSet(
            runtimes={KubernetesRuntime: lambda: wiring.actions()["kubernetes.isolate_pod"].runtime},
            catalogue=[cls for cls in kubernetes.ACTIONS if cls is not IsolatePod] + [DiesOnIsolate],
        )
        engine = wiring.engine()
        first = Executor(incidents=engine.incidents, actions=dying, snapshots=wiring.snapshots())
        with pytest.raises(WorkerKilled):
            first.execute(incident_id)
        stuck = the_incident()
        assert (stuck.state, stuck.completed_steps) == (IncidentState.EXECUTING, 1)
        cordoned_version = cluster.emulator.get(NODES, None, "n1")["metadata"]["resourceVersion"]

        with pytest.raises(InProgressElsewhere):
            run_executor(message)  # the dead worker's lease still runs: this delivery comes back later
        last = host.queue_message(message.get_body(), message_id=message.id, dequeue_count=5)
        run_executor(last)  # its last delivery is dropped, not poisoned: nothing is changed
        assert the_incident().state is IncidentState.EXECUTING

        assert stuck.lease_until is not None
        later = stuck.lease_until + timedelta(seconds=1)
        wiring.use(clock=lambda: later)  # the lease has run out when the minute timer ticks
        tick()
        [redriven] = deliveries(app_tables)
        run_executor(redriven)
        done = the_incident()
        assert (done.state, done.completed_steps) == (IncidentState.SUCCEEDED, 2)
        assert cluster.emulator.get(NODES, None, "n1")["metadata"]["resourceVersion"] == cordoned_version
        assert isolated(cluster)

    def test_api_errors_are_retried_then_the_step_succeeds(self, cluster: KubeServer, app_tables: AppTables) -> None:
        post_alert()
        wiring.engine().approve(the_incident().id, user="U000SECOPS1")
        cluster.emulator.fail("PATCH", "/api/v1/namespaces/shop/pods/web-1", 500, 429)
        [message] = deliveries(app_tables)
        run_executor(message)
        assert the_incident().state is IncidentState.SUCCEEDED
        assert isolated(cluster)

    def test_the_last_delivery_of_a_failing_message_ends_the_incident_failed(
        self, cluster: KubeServer, app_tables: AppTables
    ) -> None:
        post_alert()
        wiring.engine().approve(the_incident().id, user="U000SECOPS1")
        [message] = deliveries(app_tables)
        cluster.emulator.fail("GET", "/api/v1/namespaces/shop/pods/web-1", *[503] * 40)
        with pytest.raises(TransientFailure):  # the host will deliver it again
            run_executor(message)
        waiting = the_incident()
        assert (waiting.state, waiting.lease_until) == (IncidentState.EXECUTING, None)  # released for the retry
        assert "503" in (waiting.last_error or "")
        last = host.queue_message(message.get_body(), message_id=message.id, dequeue_count=5)
        with pytest.raises(TransientFailure):  # the last delivery: failed still, for the poison queue
            run_executor(last)
        assert the_incident().state is IncidentState.FAILED
        assert "gave up" in (the_incident().last_error or "")


def test_a_malformed_work_message_is_dropped(app_tables: AppTables) -> None:
    run_executor(host.queue_message(b"not json"))
    run_executor(host.queue_message(b'{"kind": "execute"}'))


def test_an_undo_failing_its_last_delivery_is_recorded_not_pretended(
    cluster: KubeServer, app_tables: AppTables
) -> None:
    post_alert()
    incident = the_incident()
    wiring.engine().approve(incident.id, user="U000SECOPS1")
    [message] = deliveries(app_tables)
    run_executor(message)
    wiring.engine().request_undo(incident.id, user="U000SECOPS1")
    wiring.engine().request_undo(incident.id, user="U000SECOPS2")  # a second approver agrees
    [undo] = deliveries(app_tables, dequeue_count=5)
    cluster.emulator.fail("GET", "/api/v1/namespaces/shop/pods/web-1", *[503] * 40)
    with pytest.raises(TransientFailure):
        run_executor(undo)
    kept = the_incident()
    assert kept.state is IncidentState.SUCCEEDED
    assert "undo gave up" in (kept.last_error or "")
    assert isolated(cluster)


class TestFailureDomains:
    """Only opening incidents depends on the playbooks; nothing of execution depends on Slack."""

    @pytest.mark.parametrize("breakage", ["invalid playbooks", "Slack misconfigured"])
    def test_execution_undo_and_the_timer_run_whatever_else_is_broken(
        self, breakage: str, cluster: KubeServer, app_tables: AppTables, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        post_alert()
        incident = the_incident()
        wiring.engine().approve(incident.id, user="U000SECOPS1")
        [message] = deliveries(app_tables)
        if breakage == "invalid playbooks":
            (tmp_path / "broken").mkdir()
            (tmp_path / "broken" / "bad.yaml").write_text("name: [unclosed\n")
            monkeypatch.setenv("REMEDIATION_PLAYBOOKS_DIR", str(tmp_path / "broken"))
        else:
            monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-set-but-no-signing-secret")
        wiring.reset()  # a fresh worker, started with the broken configuration
        with pytest.raises(Exception, match=r"playbook|SLACK_SIGNING_SECRET"):
            if breakage == "invalid playbooks":
                post_alert(SystemAlertId="another-alert")
            else:
                wiring.slack_app()

        run_executor(message)
        assert (the_incident().state, isolated(cluster)) == (IncidentState.SUCCEEDED, True)
        tick()
        wiring.engine().request_undo(incident.id, user="U000SECOPS1")
        wiring.engine().request_undo(incident.id, user="U000SECOPS2")  # a second approver agrees
        [undo] = deliveries(app_tables)
        run_executor(undo)
        assert (the_incident().state, isolated(cluster)) == (IncidentState.UNDONE, False)


DRAIN = """
name: drain-the-node
description: one long step, for the mid-drain crash test
on: {source: defender, types: [K8S_PrivilegedContainer]}
steps:
  - action: kubernetes.drain_node
    params: {cluster: "${targets.cluster_resource_id}", node: n1, max_concurrency: 1}
approval: {mode: required, approvers: [U000SECOPS1], min_approvals: 1, timeout: 30m}
"""


class TestLongSteps:
    def test_a_worker_killed_mid_drain_is_resumed_by_the_timer_and_evicts_each_pod_once(
        self, cluster: KubeServer, app_tables: AppTables, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        for index in range(5):
            cluster.emulator.put(PODS, pod(f"api-{index}", namespace="shop", node_name="n1"))
        (tmp_path / "books").mkdir()
        (tmp_path / "books" / "drain.yaml").write_text(DRAIN)
        monkeypatch.setenv("REMEDIATION_PLAYBOOKS_DIR", str(tmp_path / "books"))
        wiring.reset()
        post_alert()
        wiring.engine().approve(the_incident().id, user="U000SECOPS1")
        [message] = deliveries(app_tables)
        incident_id = json.loads(message.get_body())["incident_id"]

        class WorkerKilled(BaseException):
            """The process dies: nothing of ours may catch it."""

        evictions: list[str] = []

        @dataclasses.dataclass(frozen=True, slots=True)
        class DyingSession(ClusterSession):
            def call(self, method: Any, *args: Any, what: str, **kwargs: Any) -> Any:
                if what.startswith("evict"):
                    if len(evictions) == 3:
                        raise WorkerKilled()  # dead: nothing more leaves this worker
                    evictions.append(what)
                return ClusterSession.call(self, method, *args, what=what, **kwargs)

        class DiesMidDrain(DrainNode):
            def apply_on(self, s: ClusterSession, params: Any, ctx: Any) -> Any:
                return super().apply_on(DyingSession(s.cluster, s.api_client, s.settings, s.retry), params, ctx)

        minutes = iter(range(1000))
        started = datetime.now(UTC)

        def clock() -> datetime:  # a minute passes at every reading: the drain is long
            return started + timedelta(minutes=next(minutes))

        dying = ActionSet(
            runtimes={KubernetesRuntime: lambda: wiring.actions()["kubernetes.drain_node"].runtime},
            catalogue=[DiesMidDrain],
        )
        first = Executor(incidents=wiring.engine().incidents, actions=dying, snapshots=wiring.snapshots(), clock=clock)
        with pytest.raises(WorkerKilled):
            first.execute(incident_id)
        stuck = the_incident()
        assert (stuck.state, stuck.completed_steps, len(evictions)) == (IncidentState.EXECUTING, 0, 3)
        assert stuck.lease_until is not None and stuck.lease_until > started + LEASE  # renewed as evictions went
        assert cluster.emulator.get(NODES, None, "n1")["spec"]["unschedulable"] is True

        wiring.use(clock=lambda: stuck.lease_until + timedelta(seconds=1))  # type: ignore[operator]
        tick()
        [redriven] = deliveries(app_tables)
        run_executor(redriven)
        done = the_incident()
        assert (done.state, done.completed_steps) == (IncidentState.SUCCEEDED, 1)
        on_n1 = [
            name for name in ["web-1", *(f"api-{i}" for i in range(5))] if cluster.emulator.get(PODS, "shop", name)
        ]
        assert on_n1 == []
        posts = [
            r.url.path for r in cluster.emulator if r.url.path.endswith("/eviction") and not r.params.get("dryRun")
        ]
        assert len(posts) == len(set(posts)) == 6  # every pod evicted, none twice


def test_no_step_may_outlive_the_lease_nor_the_lease_the_function() -> None:
    import re as _re

    from remediation.actions.kubernetes.nodes import DrainNodeParams
    from remediation.actions.runtime import MAX_STEP_SECONDS

    timeout = json.loads((Path(__file__).resolve().parents[1] / "host.json").read_text())["functionTimeout"]
    hours, minutes, seconds = (int(part) for part in _re.fullmatch(r"(\d+):(\d+):(\d+)", timeout).groups())  # type: ignore[union-attr]
    function_timeout = timedelta(hours=hours, minutes=minutes, seconds=seconds)
    assert timedelta(seconds=MAX_STEP_SECONDS) < LEASE < function_timeout
    assert DrainNodeParams.model_fields["timeout_seconds"].metadata[-1].le == MAX_STEP_SECONDS
