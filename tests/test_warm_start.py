"""The warm-up and the first event: built once, ahead of the event under the Functions host, and no
SDK loaded that the event's path does not use.

In-process tests start `wiring.warm_up()` as function_app.py does (FUNCTIONS_WORKER_RUNTIME set, as
the host sets it) against Azurite, and hold the real composition at a gate to make the first
invocation arrive while it is being built. The loading tests run fresh interpreters, since this
one has long imported everything.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

import host
from conftest import FIXTURE_CLUSTERS, AppTables
from functions import wiring
from kube_api import NODES, KubeServer, node, write_kubeconfig
from kube_api import kube as kube  # the `kube` fixture
from remediation import compose as composition
from remediation.settings import DEFAULT_PLAYBOOKS_DIR, SettingsError
from test_function_app import ACR_PUSH, event_ids, logged

ROOT = Path(__file__).resolve().parent.parent
MINING_ALERT = ROOT / "tests" / "fixtures" / "defender-alert-k8s-node-digitalcurrencymining.continuous-export.json"


@pytest.fixture
def hosted(app_tables: AppTables, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppTables]:
    """The app's settings as the Functions host gives them to its worker; every warm-up joined after."""
    monkeypatch.setenv("FUNCTIONS_WORKER_RUNTIME", "python")
    monkeypatch.delenv("REMEDIATION_PREWARM", raising=False)
    wiring.reset()
    yield app_tables
    wiring.reset()


def inside(thread: threading.Thread, function: Callable[..., Any]) -> bool:
    """Whether `thread` is running `function` right now (anywhere on its stack)."""
    frame: FrameType | None = sys._current_frames().get(thread.ident or 0)
    while frame is not None:
        if frame.f_code is function.__code__:
            return True
        frame = frame.f_back
    return False


def wait_until(condition: Callable[[], bool]) -> None:
    event = threading.Event()
    for _ in range(1000):
        if condition():
            return
        event.wait(0.01)
    raise AssertionError("never happened")


class TestWarmUp:
    def test_only_under_the_host_or_when_asked(self, hosted: AppTables, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("REMEDIATION_PREWARM", "off")
        assert wiring.warm_up() is None
        monkeypatch.delenv("FUNCTIONS_WORKER_RUNTIME")
        monkeypatch.delenv("REMEDIATION_PREWARM")
        assert wiring.warm_up() is None
        monkeypatch.setenv("REMEDIATION_PREWARM", "on")
        warming = wiring.warm_up()
        assert warming is not None and warming.name == wiring.WARM_UP_THREAD and warming.daemon
        warming.join()

    def test_the_first_invocation_waits_for_the_warm_ups_build_instead_of_building_twice(
        self, hosted: AppTables, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO)
        gate, built_by = threading.Event(), []
        real = composition.compose

        def held(*args: Any, **kwargs: Any) -> composition.Components:
            built_by.append(threading.current_thread().name)
            gate.wait(30)
            return real(*args, **kwargs)

        monkeypatch.setattr(composition, "compose", held)
        warming = wiring.warm_up()
        assert warming is not None
        wait_until(lambda: built_by == [wiring.WARM_UP_THREAD])
        first = threading.Thread(target=host.call, args=("registry_events", host.event_grid_event(ACR_PUSH)))
        first.start()
        wait_until(lambda: inside(first, wiring.components))  # the event has asked for the composition
        gate.set()
        first.join()
        warming.join()
        assert built_by == [wiring.WARM_UP_THREAD]
        with hosted.client(hosted.events) as table:
            assert event_ids(table) == ["registry:" + ACR_PUSH["id"]]
        [done] = logged(caplog, "warm-up done in")
        assert done.levelno == logging.INFO and done.warm_up_ms >= 0  # type: ignore[attr-defined]

    def test_a_failed_warm_up_is_forgotten_and_the_event_reports_the_failure(
        self, hosted: AppTables, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        folder = tmp_path / "playbooks"
        folder.mkdir()  # no playbook yet
        monkeypatch.setenv("REMEDIATION_PLAYBOOKS_DIR", str(folder))
        warming = wiring.warm_up()
        assert warming is not None
        warming.join()
        [failed] = logged(caplog, "warm-up failed after")
        assert failed.levelno == logging.WARNING and "no playbooks" in failed.reason  # type: ignore[attr-defined]
        with pytest.raises(Exception, match="no playbooks"):
            host.call("registry_events", host.event_grid_event(ACR_PUSH))
        for playbook in DEFAULT_PLAYBOOKS_DIR.glob("*.yaml"):
            shutil.copy(playbook, folder)
        host.call("registry_events", host.event_grid_event(ACR_PUSH))
        with hosted.client(hosted.events) as table:
            assert event_ids(table) == ["registry:" + ACR_PUSH["id"]]

    def test_a_warm_up_that_cannot_compose_leaves_nothing_behind(
        self, hosted: AppTables, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        connection = hosted.connection_string
        monkeypatch.delenv("AzureWebJobsStorage")
        warming = wiring.warm_up()
        assert warming is not None
        warming.join()
        [failed] = logged(caplog, "warm-up failed after")
        assert "AzureWebJobsStorage is not set" in failed.reason  # type: ignore[attr-defined]
        with pytest.raises(SettingsError, match="AzureWebJobsStorage is not set"):
            host.call("registry_events", host.event_grid_event(ACR_PUSH))
        monkeypatch.setenv("AzureWebJobsStorage", connection)
        host.call("registry_events", host.event_grid_event(ACR_PUSH))
        with hosted.client(hosted.events) as table:
            assert event_ids(table) == ["registry:" + ACR_PUSH["id"]]


# -- what a fresh worker loads ----------------------------------------------------------------------

LOADED = """
import json, sys, threading
{before}
import function_app
{after}
heavy = ("kubernetes.client", "kubernetes.client.api.core_v1_api", "azure.data.tables", "azure.storage.queue",
         "azure.storage.blob", "azure.identity", "azure.mgmt.resourcegraph", "azure.containerregistry", "slack_sdk",
         "slack_bolt", "yaml", "remediation.engine")
print(json.dumps({{"loaded": sorted(name for name in heavy if name in sys.modules), "answer": answer}}))
"""
JOIN_WARM_UP = """
[warming] = [thread for thread in threading.enumerate() if thread.name == "remediation-warm-up"]
warming.join()
answer = None
"""
CALL = """
from azure.functions import HttpRequest, meta
from azure.functions.eventgrid import EventGridEventInConverter
functions = {{f.get_function_name(): f.get_user_function() for f in function_app.app.get_functions()}}
kind, body = {kind!r}, {body!r}
if kind == "defender":
    request = HttpRequest("POST", "http://localhost:7071/api/defender/alerts", headers={{}}, body=body.encode())
    answer = json.loads(functions["defender_alerts_http"](request).get_body())
else:
    event = EventGridEventInConverter.decode(meta.Datum(body, "json"), trigger_metadata={{}})
    answer = functions["registry_events"](event)
"""


def run_worker(code: str, env: dict[str, str]) -> dict[str, Any]:
    keep = {name: value for name, value in os.environ.items() if name in ("PATH", "HOME", "LANG")}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**keep, **env}, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    result["log"] = done.stderr
    return result


def app_env(tables: AppTables, **more: str) -> dict[str, str]:
    return {
        "AzureWebJobsStorage": tables.connection_string,
        "REMEDIATION_EVENTS_TABLE": tables.events,
        "REMEDIATION_INCIDENTS_TABLE": tables.incidents,
        "REMEDIATION_AUDIT_TABLE": tables.audit,
        "REMEDIATION_ACTIONS_QUEUE": tables.queue,
        "REMEDIATION_CLUSTERS": ",".join(FIXTURE_CLUSTERS),
        # Slack is on: the event only enqueues for it, so no Slack client may be made.
        "SLACK_BOT_TOKEN": "xoxb-unused",
        "SLACK_SIGNING_SECRET": "unused",
        "SLACK_API_BASE_URL": "http://127.0.0.1:9/api/",
        **more,
    }


@pytest.fixture
def cluster(kube: KubeServer, tmp_path: Path) -> dict[str, str]:
    """kmock as the fixture alert's cluster, the one cluster allowed, with the alert's node and two more."""
    for name in ("aks-cold-node", "aks-spare-1", "aks-spare-2"):
        kube.emulator.put(NODES, node(name))
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server=kube.url)
    return {"REMEDIATION_KUBECONFIGS": json.dumps({FIXTURE_CLUSTERS[0]: kubeconfig}),
            "REMEDIATION_CLUSTERS": FIXTURE_CLUSTERS[0]}  # fmt: skip


def node_alert() -> str:
    """A node-compromise alert on kmock's node (playbook node-cordon: its preview reads the node)."""
    alert = json.loads(MINING_ALERT.read_text())
    alert["AlertType"] = "K8S.NODE_KubeConfigAccess"
    for entity in alert["Entities"]:
        if entity.get("Type") == "host":
            entity["HostName"] = "aks-cold-node"
    return json.dumps(alert)


class TestFreshWorker:
    def test_under_the_host_loading_the_app_builds_the_first_events_needs(self, app_tables: AppTables) -> None:
        env = app_env(app_tables, FUNCTIONS_WORKER_RUNTIME="python")
        result = run_worker(LOADED.format(before="import logging; logging.basicConfig(level=logging.INFO)",
                                          after=JOIN_WARM_UP), env)  # fmt: skip
        assert "functions.wiring:warm-up done in" in result["log"].replace("INFO:", "")
        # The composition, the playbooks and, clusters being allowed, the kubernetes API; the
        # registry SDKs stay out (no registry is ours), and so does everything made on first use.
        assert result["loaded"] == [
            "azure.data.tables", "azure.storage.queue", "kubernetes.client", "kubernetes.client.api.core_v1_api",
            "remediation.engine", "yaml",
        ]  # fmt: skip

    def test_the_first_defender_alert_loads_no_blob_slack_identity_or_arm_sdk(
        self, app_tables: AppTables, cluster: dict[str, str]
    ) -> None:
        code = LOADED.format(before="", after=CALL.format(kind="defender", body=node_alert()))
        result = run_worker(code, app_env(app_tables, **cluster))
        assert (result["answer"]["accepted"], result["answer"]["rejected"]) == (1, 0)
        # The node's preview and where its image runs are read by path: no typed CoreV1Api (~0.65 s).
        assert result["loaded"] == [
            "azure.data.tables", "azure.storage.queue", "kubernetes.client", "remediation.engine", "yaml",
        ]  # fmt: skip

    def test_the_first_push_loads_no_kubernetes_blob_slack_or_azure_sdk(self, app_tables: AppTables) -> None:
        code = LOADED.format(before="", after=CALL.format(kind="acr", body=json.dumps(ACR_PUSH)))
        result = run_worker(code, app_env(app_tables))
        # The queue SDK comes with the push policy (its findings re-checks); the registry is not ours,
        # so no token is asked for, and no playbook matches, so no cluster is asked where it runs.
        assert result["loaded"] == ["azure.data.tables", "azure.storage.queue", "remediation.engine", "yaml"]


def test_warming_stops_before_the_sdks_when_told(app_tables: AppTables) -> None:
    """`Components.warm(stop=...)`: the wiring stops it once an event is being handled, which then
    imports what its own path needs and nothing else."""
    code = """
import json, sys
from remediation.compose import compose
from remediation.settings import Settings
components = compose(Settings.from_env())
components.warm(stop=lambda: {stop})
print(json.dumps({{"loaded": "kubernetes.client.api.core_v1_api" in sys.modules, "answer": None}}))
"""
    env = app_env(app_tables)
    assert run_worker(code.format(stop=True), env)["loaded"] is False
    assert run_worker(code.format(stop=False), env)["loaded"] is True
