"""What the service benchmarks run against: Azurite, the local Slack Web API, kmock, and the app's settings.

Neighbours: `bench.intake_throughput`, `bench.slack_ack`, `bench.end_to_end` and `bench.alert_storm`
open one `AppEnvironment` each and call the registered functions through `tests/host.py`, as the
Functions host would; `OutboxRunner` plays the host's queue trigger on the Slack outbox for as long
as the environment is open. The servers are the test suite's own (`tests/azurite.py`,
`tests/slack_server.py`, `tests/kube_api.py`), imported with tests/ on `sys.path`; everything
listens on loopback and is stopped on exit. kmock stands in for the cluster `aks-prod-weu` the
alerts name (previews and actions read it). The local Slack API here also stamps every call with
its arrival time, so a benchmark can tell when a message was posted or updated. Logs are collected
at INFO and formatted, as the host collects them (`host_logging`).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import azure.functions as func  # noqa: E402
import pytest  # noqa: E402 - MonkeyPatch.context() sets and restores the app's settings

import host  # noqa: E402
import slack_server  # noqa: E402
from azurite import Azurite  # noqa: E402
from functions import wiring  # noqa: E402
from kube_api import KubeServer, write_kubeconfig  # noqa: E402

CLUSTER_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-aks-prod"
    "/providers/Microsoft.ContainerService/managedClusters/aks-prod-weu"
)
OUTBOX_QUEUE = "slack-outbox"
MINING_ALERT = TESTS / "fixtures" / "defender-alert-k8s-node-digitalcurrencymining.continuous-export.json"


@dataclass
class StampedSlackServer(slack_server.SlackServer):
    """The tests' local Slack Web API, with the `time.perf_counter()` at which each call arrived."""

    stamps: list[tuple[float, slack_server.Call]] = field(default_factory=list)
    _stamp_lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(
        self, method: str, args: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._stamp_lock:  # one lock around both lists keeps `stamps` in `calls` order
            arrived = time.perf_counter()
            answer = super().answer(method, args, headers)
            self.stamps.append((arrived, self.calls[-1]))
        return answer

    def wait_for(self, index: int, predicate: Any, *, seconds: float = 10.0) -> list[tuple[float, slack_server.Call]]:
        """The calls since `index` once one satisfies `predicate` (the outbox is asynchronous)."""
        deadline = time.monotonic() + seconds
        while True:
            calls = self.since(index)
            if any(predicate(call) for _, call in calls) or time.monotonic() > deadline:
                return calls
            time.sleep(0.005)

    def since(self, index: int) -> list[tuple[float, slack_server.Call]]:
        with self._stamp_lock:
            return self.stamps[index:]

    def count(self) -> int:
        with self._stamp_lock:
            return len(self.stamps)


class WarningCounter(logging.Handler):
    """Formats every record, as the Functions host's log handler does, and keeps the warnings."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.warnings: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        if record.levelno >= logging.WARNING:
            self.warnings.append(f"{record.name}: {text}"[:200])


@contextmanager
def host_logging() -> Iterator[WarningCounter]:
    """The root logger at INFO with a handler that formats every record: the logs cost what the
    Functions host makes them cost (it collects INFO and formats each record it ships)."""
    counter = WarningCounter()
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(counter)
    root.setLevel(logging.INFO)
    try:
        yield counter
    finally:
        root.removeHandler(counter)
        root.setLevel(previous_level)


@dataclass
class AppEnvironment:
    """The running servers, and the registered functions called as the Functions host calls them."""

    azurite: Azurite
    slack: StampedSlackServer
    kube: KubeServer
    log: WarningCounter

    def call(self, name: str, *args: Any) -> Any:
        return host.call(name, *args)

    def post_alerts(self, body: bytes) -> func.HttpResponse:
        response: func.HttpResponse = self.call("defender_alerts_http", host.http_post("defender/alerts", body))
        return response

    def click_request(self, action_id: str, incident_id: str, *, user: str) -> func.HttpRequest:
        """A signed block_actions request, as Slack sends one when `user` clicks a button."""
        payload = slack_server.block_actions(action_id, incident_id, user=user, channel="C0SECOPS")
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", **slack_server.sign(body)}
        return func.HttpRequest("POST", "http://localhost:7071/api/slack/events", headers=headers, body=body)

    def settle(self, *, seconds: float = 60.0) -> None:
        """Wait until the Slack outbox has no job left (the host's outbox trigger has caught up)."""
        from azure.core.exceptions import ResourceNotFoundError
        from azure.storage.queue import QueueClient

        deadline = time.monotonic() + seconds
        with QueueClient.from_connection_string(self.azurite.connection_string, OUTBOX_QUEUE) as queue:

            def waiting() -> int:
                """Jobs on the queue, visible or not (a delayed one counts; the job in hand too)."""
                try:
                    return int(queue.get_queue_properties().approximate_message_count or 0)
                except ResourceNotFoundError:  # nothing was ever queued
                    return 0

            while time.monotonic() < deadline:
                if not waiting():
                    time.sleep(0.2)  # a job that the one in hand queues
                    if not waiting():
                        return
                time.sleep(0.05)

    def seed_nodes(self, names: Iterable[str]) -> None:
        """Schedulable nodes on kmock. The cordon's guard refuses the last schedulable node, and a refused
        cordon closes the incident (the next alert then opens another): seed spare nodes beside a node
        whose incident a benchmark folds into."""
        from kube_api import NODES, node

        for name in names:
            self.kube.emulator.put(NODES, node(name))

    def incidents_on(self, node: str) -> list[Any]:
        """The stored incidents whose alert names `node`."""
        return [incident for incident in wiring.engine().incidents.list() if node in json.dumps(incident.signal)]

    def summary(self) -> dict[str, Any]:
        return {"warnings": len(self.log.warnings), "first_warnings": self.log.warnings[:3]}


def forget_requests(kube: KubeServer) -> None:
    """Clear kmock's record of the requests it served, on its own event loop.

    kmock 0.8 keeps every request and, for each new one, scans that whole history while matching
    its reactions, so its answers slow down linearly as a benchmark runs (reading one node of 220
    went from 15 ms to 100 ms over 800 requests). The benchmarks call this between measurements,
    so the figures are the app's and not the emulator's history.
    """
    if kube._loop is None:
        return
    done = threading.Event()

    def clear() -> None:
        kube.emulator._requests.clear()
        done.set()

    kube._loop.call_soon_threadsafe(clear)
    if not done.wait(5):
        raise RuntimeError("kmock's event loop did not answer")


class OutboxRunner:
    """The host's listener on the Slack outbox queue: polls it and calls `slack_outbox` per job.

    A job sent with a visibility delay (the notifier's held-back fold, Slack's Retry-After) is
    received once Azurite makes it visible, as the host would. The poll starts at `poll` seconds
    after a job and doubles while the queue stays empty, up to `max_poll`: the host backs off the same
    way, to `maxPollingInterval` (2 s in host.json; the short cap here keeps a job's wait under 50 ms).
    The back-off is for the measured work: polling an empty queue every 10 ms took 36% of a CPU here
    (Azurite's and ours), at most every 50 ms 10%. A failed job becomes visible again after host.json's
    `visibilityTimeout`, as the host does it.
    """

    def __init__(
        self,
        connection_string: str,
        queue_name: str = OUTBOX_QUEUE,
        *,
        poll: float = 0.01,
        max_poll: float = 0.05,
        retry_after: int = 30,
    ) -> None:
        self._connection_string, self._queue_name = connection_string, queue_name
        self._poll, self._max_poll, self._retry_after = poll, max_poll, retry_after
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-slack-outbox", daemon=True)

    def __enter__(self) -> OutboxRunner:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        from azure.storage.queue import QueueClient

        wait = self._poll
        with QueueClient.from_connection_string(self._connection_string, self._queue_name) as queue:
            while not self._stop.is_set():
                try:
                    batch = list(queue.receive_messages(max_messages=16, visibility_timeout=60))
                except Exception:  # the queue is created with the first job; Azurite may be busy: poll on
                    batch = []
                for message in batch:
                    self._one(queue, message)
                wait = self._poll if batch else min(self._max_poll, wait * 2)
                if not batch:
                    self._stop.wait(wait)

    def _one(self, queue: Any, message: Any) -> None:
        """One job, as the host runs it: deleted when the function returns, back after
        `retry_after` when it raises. Nothing here may end the polling thread."""
        import base64

        try:
            body = base64.b64decode(message.content)
            host.call(
                "slack_outbox",
                host.queue_message(body, message_id=message.id, dequeue_count=message.dequeue_count or 1),
            )
        except Exception:
            logging.getLogger(__name__).exception("outbox job failed")
            with contextlib.suppress(Exception):
                queue.update_message(message, visibility_timeout=self._retry_after)
            return
        try:
            queue.delete_message(message)
        except Exception:  # the job ran; at worst it runs again, as a host's can
            logging.getLogger(__name__).exception("outbox job not deleted")


@contextmanager
def app_environment() -> Iterator[AppEnvironment]:
    """Azurite and the local Slack API started, the app pointed at both, its engine built anew."""
    slack = StampedSlackServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), slack_server._handler(slack))
    slack.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, name="bench-slack-api", daemon=True)
    thread.start()
    kube = KubeServer()
    kube.start()
    try:
        with (
            Azurite() as azurite,
            tempfile.TemporaryDirectory(prefix="bench-") as scratch,
            pytest.MonkeyPatch.context() as env,
            host_logging() as counter,
        ):
            kubeconfig = write_kubeconfig(Path(scratch) / "kubeconfig", server=kube.url)
            for name, value in _settings(azurite, slack, kubeconfig).items():
                env.setenv(name, value)
            wiring.reset()
            try:
                with OutboxRunner(azurite.connection_string):
                    yield AppEnvironment(azurite=azurite, slack=slack, kube=kube, log=counter)
            finally:
                wiring.reset()
    finally:
        kube.stop()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _settings(azurite: Azurite, slack: StampedSlackServer, kubeconfig: str) -> dict[str, str]:
    return {
        "AzureWebJobsStorage": azurite.connection_string,
        "REMEDIATION_ACTIONS_QUEUE": "remediation-actions",
        "REMEDIATION_KUBECONFIGS": json.dumps({CLUSTER_ID: kubeconfig}),
        "REMEDIATION_CLUSTERS": CLUSTER_ID,
        "SLACK_BOT_TOKEN": slack_server.BOT_TOKEN,
        "SLACK_SIGNING_SECRET": slack_server.SIGNING_SECRET,
        "SLACK_API_BASE_URL": slack.url + "/api/",
        "SLACK_DEFAULT_CHANNEL": slack_server.DEFAULT_CHANNEL,
        "SLACK_OUTBOX_QUEUE": OUTBOX_QUEUE,
    }


_MINING = json.loads(MINING_ALERT.read_bytes())


def mining_alert(*, alert_id: str, node: str, image: str = "docker.io/library/xmrig:6.21") -> dict[str, Any]:
    """A node-compromise alert on `node` (playbook node-cordon: one approval, cordon the node).

    Built on the published mining alert's shape with its type changed to a node-level one (a process
    read the kubelet's kubeconfig); the group key is (cluster, node), so one node is one incident
    and alerts on the same node fold into it.
    """
    alert: dict[str, Any] = copy.deepcopy(_MINING)
    alert["SystemAlertId"] = alert_id
    alert["AlertType"] = "K8S.NODE_KubeConfigAccess"
    for entity in alert["Entities"]:
        if entity.get("Type") == "host":
            entity["HostName"] = node
        elif entity.get("Type") == "container-image":
            entity["ImageId"] = image
    return alert


def incident_of(call: slack_server.Call) -> str | None:
    """The incident a top-level chat.postMessage shows (its buttons' block id), None for anything else."""
    if call.method != "chat.postMessage" or call.args.get("thread_ts"):
        return None
    for block in call.args.get("blocks") or []:
        block_id = str(block.get("block_id", ""))
        if block_id.startswith("incident:"):
            return block_id.removeprefix("incident:")
    return None


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest value with at least `fraction` of the values at or below it."""
    ordered = sorted(values)
    rank = max(1, -(-int(fraction * 1000) * len(ordered) // 1000))
    return ordered[min(rank, len(ordered)) - 1]
