"""Faults along the whole chain, through the in-process host (tests/harness.py).

Each test checks three things: no action runs twice (the writes the fake server received), nothing
is lost (the incident ends in a terminal state, or stays retryable with its message on the queue),
and the Slack message tells the truth (its last update shows the incident's state). Two executors on
one queue and a worker killed between steps are in tests/test_executor.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import kmock
import pytest

from acr_server import AcrServer
from azurite import Azurite
from functions import wiring
from harness import Chain, Host
from harness import chain_fixture as chain_fixture  # the `chain` fixture
from kube_api import Fault, KubeServer
from remediation.incidents import Incident, IncidentState
from slack_server import SlackTest
from slack_server import slack_fixture as slack_fixture  # the `slack` fixture
from test_e2e_chain import ALERT, APPROVER, OLD, push_event
from test_e2e_chain import cluster_fixture as cluster_fixture  # the `cluster` fixture (kmock)
from test_e2e_chain import registry_fixture as registry_fixture  # the `registry` fixture (ACR TLS server)
from test_e2e_chain import registry_sleeps_fixture as registry_sleeps_fixture

pytest_plugins = ["kube_api"]

POD_PATH = "/api/v1/namespaces/shop/pods/web-1"
NETPOL_PATH = "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies"
WRITES = {kmock.method.POST, kmock.method.PATCH, kmock.method.PUT, kmock.method.DELETE}


def writes(kube: KubeServer, path: str) -> int:
    """Writes to `path` the Kubernetes API received, dry runs left out (faulted ones included)."""
    return sum(
        1
        for request in kube.emulator
        if request.method in WRITES and request.url.path.startswith(path) and not request.params.get("dryRun")
    )


def approved(chain: Chain) -> Incident:
    """An alert in, approved by a signed click: its work message is on the queue."""
    assert chain.post_alert(ALERT).status_code == 200
    incident = chain.the_incident()
    chain.click("incident.approve", incident.id, user=APPROVER)
    assert chain.host.peek(chain.queue_name) == [json.dumps({"incident_id": incident.id, "kind": "execute"}).encode()]
    return incident


def tells_the_truth(chain: Chain) -> None:
    state = chain.the_incident().state.value
    assert chain.shown_text().startswith(f"[{state}]"), (state, chain.shown_text())


class TestTransientApiErrors:
    def test_kubernetes_500s_and_429s_are_retried_and_each_write_lands_once(
        self, cluster: KubeServer, chain: Chain
    ) -> None:
        approved(chain)
        cluster.emulator.fail("POST", NETPOL_PATH, Fault(500, retry_after=0))
        cluster.emulator.fail("PATCH", POD_PATH, Fault(500, retry_after=0), Fault(429, retry_after=0))
        report = chain.run_executor()
        assert [(c.dequeue_count, c.error) for c in report.calls] == [(1, None)]  # retried inside the step
        assert chain.the_incident().state is IncidentState.SUCCEEDED
        assert (writes(cluster, NETPOL_PATH), writes(cluster, POD_PATH)) == (1 + 1, 2 + 1)  # faults + one write
        tells_the_truth(chain)

    def test_arm_acr_429_with_retry_after_during_quarantine_is_retried(
        self, registry: AcrServer, registry_sleeps: list[float], chain: Chain
    ) -> None:
        chain.host.event_grid("registry_events", [push_event()])
        incident = chain.the_incident()
        chain.click("incident.approve", incident.id, user=APPROVER)
        registry.fault("PATCH", r"/_tags/latest$", 429, headers={"Retry-After": "3"})
        chain.run_executor()
        assert chain.the_incident().state is IncidentState.SUCCEEDED
        assert registry_sleeps == [3.0]  # the server's Retry-After, honoured (on a fake clock)
        assert registry.faults == []  # the 429 was served
        landed = [r.path for r in registry.calls(method="PATCH")]  # authorised writes that reached the registry
        assert landed == ["/acr/v1/prod/api/_tags/latest", f"/acr/v1/prod/api/_manifests/{OLD}"]
        assert registry.tag("prod/api", "latest").attrs["read"] is False
        tells_the_truth(chain)


class TestSlackRateLimits:
    def test_a_429_on_chat_update_is_retried_and_the_message_ends_right(
        self, cluster: KubeServer, chain: Chain, slack: SlackTest
    ) -> None:
        approved(chain)
        before = len(chain.updates())
        slack.api.fail_next("chat.update", status=429, retry_after=0)  # the client waits Retry-After (+ <1 s)
        chain.run_executor()
        assert chain.the_incident().state is IncidentState.SUCCEEDED
        updates = chain.updates()[before:]
        assert updates[0].args["text"] == updates[1].args["text"]  # the rate-limited update, sent again
        assert writes(cluster, POD_PATH) == 1
        tells_the_truth(chain)
        assert "incident.undo" in chain.buttons()


class TestStorageOutage:
    @pytest.fixture
    def storage(self, slack: SlackTest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Azurite]:
        """An Azurite of this test's own, on disk and on fixed ports, so it can stop and come back."""
        with Azurite(location=tmp_path / "azurite") as own:
            monkeypatch.setenv("AzureWebJobsStorage", own.connection_string)
            wiring.reset()
            yield own
            wiring.reset()

    def test_storage_down_mid_run_then_back_the_incident_succeeds_once(
        self, cluster: KubeServer, slack: SlackTest, storage: Azurite
    ) -> None:
        chain = Chain(Host(connection_string=storage.connection_string), slack)
        incident = approved(chain)

        down = chain.run_executor(before_call=storage.stop)  # taken off the queue, then storage goes away
        [failed] = down.calls
        assert failed.error is not None and failed.dequeue_count == 1
        assert down.storage_errors  # the host could not even hand the message back: its lease runs out
        assert writes(cluster, POD_PATH) == 0

        storage.start()
        waiting = chain.the_incident()
        assert waiting.state in (IncidentState.APPROVED, IncidentState.EXECUTING)  # retryable, and queued:
        back = chain.run_executor(wait_seconds=3)  # the message reappears when its 1 s visibility runs out
        assert [(c.dequeue_count, c.error) for c in back.calls] == [(2, None)]
        assert chain.the_incident().state is IncidentState.SUCCEEDED
        assert writes(cluster, POD_PATH) == 1
        assert chain.the_incident().id == incident.id
        tells_the_truth(chain)

    def test_storage_failing_between_a_step_and_its_record_ends_succeeded_with_one_change(
        self, cluster: KubeServer, slack: SlackTest, storage: Azurite
    ) -> None:
        chain = Chain(Host(connection_string=storage.connection_string), slack)
        incident = approved(chain)
        cluster.emulator.after("POST", NETPOL_PATH, storage.stop)  # the step's last write lands, then storage goes

        down = chain.run_executor()
        assert down.calls[0].error is not None  # the record failed: the invocation fails, nothing completes
        assert (writes(cluster, NETPOL_PATH), writes(cluster, POD_PATH)) == (1, 1)
        storage.start()
        assert chain.the_incident().state is IncidentState.EXECUTING  # its lease could not even be released

        # Redeliveries meet the live lease and fail (the host brings them back) until the last, which
        # is dropped, not poisoned: the work is the timer's once the lease runs out.
        busy = chain.run_executor(wait_seconds=3)
        assert [c.dequeue_count for c in busy.calls] == [2, 3, 4, 5]
        assert all("another worker" in str(c.error) for c in busy.calls[:-1])
        assert busy.calls[-1].error is None and busy.poisoned == []
        assert chain.the_incident().state is IncidentState.EXECUTING

        lease = chain.the_incident().lease_until
        assert lease is not None
        wiring.use(clock=lambda: lease + timedelta(seconds=1))
        chain.host.timer()
        resumed = chain.run_executor()
        assert [c.error for c in resumed.calls] == [None]
        done = chain.the_incident()
        assert (done.id, done.state, done.completed_steps) == (incident.id, IncidentState.SUCCEEDED, 1)
        assert (writes(cluster, NETPOL_PATH), writes(cluster, POD_PATH)) == (1, 1)  # found applied, not redone
        tells_the_truth(chain)


class TestRedelivery:
    def test_every_event_delivered_three_times_makes_one_incident_one_post_one_action(
        self, registry: AcrServer, chain: Chain
    ) -> None:
        chain.host.event_grid("registry_events", [push_event()] * 3)  # one Event Grid delivery, the event thrice
        chain.host.event_grid("registry_events", [push_event()])  # and Event Grid's own retry of it
        [incident] = wiring.engine().incidents.list()
        assert len(chain.posts()) == 1
        chain.click("incident.approve", incident.id, user=APPROVER)
        chain.run_executor()
        assert chain.the_incident().state is IncidentState.SUCCEEDED
        assert [r.path for r in registry.calls(method="PATCH")] == [
            "/acr/v1/prod/api/_tags/latest",
            f"/acr/v1/prod/api/_manifests/{OLD}",
        ]
        tells_the_truth(chain)

    def test_a_defender_alert_posted_three_times_makes_one_incident_one_post_one_action(
        self, cluster: KubeServer, chain: Chain
    ) -> None:
        for _ in range(3):
            assert chain.post_alert(ALERT).status_code == 200
        incident = chain.the_incident()
        assert len(chain.posts()) == 1
        chain.click("incident.approve", incident.id, user=APPROVER)
        chain.run_executor()
        assert chain.the_incident().state is IncidentState.SUCCEEDED
        assert (writes(cluster, NETPOL_PATH), writes(cluster, POD_PATH)) == (1, 1)
        tells_the_truth(chain)


class TestPoison:
    def test_a_message_failing_every_delivery_ends_the_incident_failed_and_says_so(
        self, cluster: KubeServer, chain: Chain
    ) -> None:
        approved(chain)
        cluster.emulator.fail("GET", POD_PATH, *[Fault(503, retry_after=0)] * 100)
        report = chain.run_executor()
        assert [c.dequeue_count for c in report.calls] == [1, 2, 3, 4, 5]  # Azurite's own dequeue counts
        assert all(c.error is not None for c in report.calls)
        failed = chain.the_incident()
        assert failed.state is IncidentState.FAILED
        assert "gave up" in (failed.last_error or "") and "503" in (failed.last_error or "")
        assert writes(cluster, POD_PATH) == 0
        tells_the_truth(chain)
        assert any(":x: Failed" in line for line in chain.thread())
        # The last delivery marks the incident failed and still fails, so the host keeps the message
        # in the poison queue for the record.
        assert len(report.poisoned) == 1
        assert chain.host.peek(chain.queue_name) == []
        assert len(chain.host.peek(f"{chain.queue_name}-poison")) == 1
