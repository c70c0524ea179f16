"""An in-process Functions host for end-to-end tests: what the host does for our bindings, and no more.

- Event Grid: a delivery (a JSON array) becomes one call per event of the named function, each event
  decoded by the worker's converter (`host.event_grid_event`).
- HTTP: one call of an HTTP function with a real `func.HttpRequest`.
- Queues: `drain` reads messages from Azurite (base64, as the host's queue extension encodes them),
  calls the queue trigger with the message's real dequeue count, deletes it on success, makes it
  visible again on failure, and moves it to `<queue>-poison` after host.json's `maxDequeueCount`.
- Timer: `approval_timeouts` with a real `TimerRequest`.

Neighbours: `tests/host.py` (the registered functions and binding converters), `tests/azurite.py`.
The host's 30 s visibility timeout (host.json) is compressed: a failed message is re-queued with
visibility 0, and a message whose update cannot be written (storage down) reappears after
`VISIBILITY_SECONDS`.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.core.exceptions import AzureError
from azure.functions import meta
from azure.functions.timer import TimerRequestConverter
from azure.storage.queue import QueueClient, QueueMessage

import host
from azurite import REPO_ROOT
from bot.messages import TableMessageStore
from functions import wiring
from remediation.incidents import Incident
from slack_server import Call, SlackTest, block_actions, sign

logger = logging.getLogger(__name__)

VISIBILITY_SECONDS = 1  # while a function runs; the host's is host.json's 30 s
HOST_JSON = REPO_ROOT / "host.json"
# Bounded and quick: a message-less poll costs one round trip, a storage outage fails fast.
_QUEUE_CLIENT: dict[str, Any] = {"connection_timeout": 2, "read_timeout": 5, "retry_total": 0}


def max_dequeue_count(path: Path = HOST_JSON) -> int:
    """host.json extensions.queues.maxDequeueCount (the host's default is 5 too)."""
    return int(json.loads(path.read_text())["extensions"]["queues"].get("maxDequeueCount", 5))


@dataclass(frozen=True)
class Delivery:
    """One call of a queue trigger: the message, its dequeue count, and the exception if it raised."""

    message_id: str
    body: bytes
    dequeue_count: int
    error: BaseException | None = None


@dataclass
class DrainReport:
    calls: list[Delivery] = field(default_factory=list)
    poisoned: list[bytes] = field(default_factory=list)
    storage_errors: list[str] = field(default_factory=list)  # receive/delete/update calls storage refused

    @property
    def failures(self) -> list[Delivery]:
        return [call for call in self.calls if call.error is not None]

    @property
    def succeeded(self) -> list[Delivery]:
        return [call for call in self.calls if call.error is None]


class Host:
    """The host for one storage account (an Azurite connection string)."""

    def __init__(self, *, connection_string: str, host_json: Path = HOST_JSON) -> None:
        self.connection_string = connection_string
        self.max_dequeue_count = max_dequeue_count(host_json)

    # -- Event Grid and HTTP ----------------------------------------------------------------------
    def event_grid(self, function: str, delivery: list[dict[str, Any]] | bytes) -> None:
        """An Event Grid delivery: the host splits the array and calls the function once per event."""
        events = json.loads(delivery) if isinstance(delivery, bytes) else delivery
        for event in events:
            host.call(function, host.event_grid_event(event))

    def http(
        self, function: str, *, route: str, body: bytes, headers: dict[str, str] | None = None, method: str = "POST"
    ) -> func.HttpResponse:
        request = func.HttpRequest(
            method,
            f"http://localhost:7071/api/{route}",
            headers={"Content-Type": "application/json", **(headers or {})},
            body=body,
        )
        response: func.HttpResponse = host.call(function, request)
        return response

    # -- the timer --------------------------------------------------------------------------------
    def timer(self, function: str = "approval_timeouts", *, past_due: bool = False) -> None:
        status = {"Last": "2026-01-01T00:00:00+00:00", "Next": "2026-01-01T00:01:00+00:00"}
        datum = meta.Datum(json.dumps({"IsPastDue": past_due, "ScheduleStatus": status}), "json")
        host.call(function, TimerRequestConverter.decode(datum, trigger_metadata={}))

    # -- queues -----------------------------------------------------------------------------------
    def queue(self, name: str) -> QueueClient:
        return QueueClient.from_connection_string(self.connection_string, name, **_QUEUE_CLIENT)

    def drain(
        self,
        queue_name: str,
        function: str,
        *,
        max_rounds: int = 20,
        wait_seconds: float = 0.0,
        before_call: Callable[[], None] | None = None,
    ) -> DrainReport:
        """Run the queue trigger until the queue is empty (or `max_rounds` polls), as the host would.

        `wait_seconds`: how long to keep polling an empty queue for a message whose visibility
        timeout has yet to run out (one left invisible by a failed update, say). `before_call`
        runs after a message is received and before the function is called (a fault to inject).
        """
        report = DrainReport()
        deadline = time.monotonic() + wait_seconds
        with self.queue(queue_name) as queue:
            for _ in range(max_rounds):
                try:
                    batch = list(queue.receive_messages(max_messages=8, visibility_timeout=VISIBILITY_SECONDS))
                except AzureError as error:
                    report.storage_errors.append(f"receive: {error}")
                    return report
                if not batch:
                    if time.monotonic() >= deadline:
                        return report
                    time.sleep(0.1)
                    continue
                for message in batch:
                    if before_call is not None:
                        before_call()
                    self._deliver(queue, message, function, report)
        return report

    def _deliver(self, queue: QueueClient, message: QueueMessage, function: str, report: DrainReport) -> None:
        body, count = base64.b64decode(message.content), message.dequeue_count or 1
        if count > self.max_dequeue_count:  # the host poisons these before any call
            self._poison(queue, message, report)
            return
        binding = host.queue_message(body, message_id=message.id, dequeue_count=count)
        try:
            host.call(function, binding)
        except Exception as error:  # the host logs it and lets the message come back, or poisons it
            report.calls.append(Delivery(message.id, body, count, error))
            if count >= self.max_dequeue_count:
                self._poison(queue, message, report)
            else:
                self._storage(report, "update", lambda: queue.update_message(message, visibility_timeout=0))
            return
        report.calls.append(Delivery(message.id, body, count))
        self._storage(report, "delete", lambda: queue.delete_message(message))

    def _poison(self, queue: QueueClient, message: QueueMessage, report: DrainReport) -> None:
        def move() -> None:
            with self.queue(f"{queue.queue_name}-poison") as poison:
                try:
                    poison.create_queue()
                except AzureError as error:
                    if getattr(error, "error_code", None) != "QueueAlreadyExists":
                        raise
                poison.send_message(message.content)  # the same base64 text, as the host copies it
            queue.delete_message(message)

        if self._storage(report, "poison", move):
            report.poisoned.append(base64.b64decode(message.content))

    @staticmethod
    def _storage(report: DrainReport, what: str, call: Any) -> bool:
        """A storage call of the host's own; when storage is down the message simply reappears later."""
        try:
            call()
        except AzureError as error:
            logger.warning("host %s failed: %s", what, error)
            report.storage_errors.append(f"{what}: {error}")
            return False
        return True

    def peek(self, queue_name: str) -> list[bytes]:
        """Bodies of the visible messages, without taking them."""
        with self.queue(queue_name) as queue:
            try:
                return [base64.b64decode(m.content) for m in queue.peek_messages(max_messages=32)]
            except AzureError as error:
                if getattr(error, "error_code", None) == "QueueNotFound":
                    return []
                raise


# -- the end-to-end world: the app under this host, Slack configured against the local Slack Web API -------


@dataclass
class Chain:
    """The app under the harness: alerts and clicks in, work drained from the queue, Slack's record out."""

    host: Host
    slack: SlackTest

    @property
    def queue_name(self) -> str:
        return self.slack.tables.queue

    def post_alert(self, alert: dict[str, Any]) -> func.HttpResponse:
        return self.host.http("defender_alerts_http", route="defender/alerts", body=json.dumps(alert).encode())

    def click(self, action_id: str, incident_id: str, *, user: str) -> func.HttpResponse:
        """A click on the incident's own message (its channel and ts), signed as Slack signs it."""
        ref = self.messages().get(incident_id)
        assert ref is not None, f"no Slack message for {incident_id}"
        payload = block_actions(action_id, incident_id, user=user, channel=ref.channel)
        payload["container"]["message_ts"] = ref.ts
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body)}
        response = self.host.http("slack_events", route="slack/events", body=body, headers=headers)
        assert response.status_code == 200, response.get_body()
        return response

    def run_executor(self, **options: Any) -> DrainReport:
        return self.host.drain(self.queue_name, "remediation_executor", **options)

    def the_incident(self) -> Incident:
        [incident] = wiring.engine().incidents.list()
        return incident

    def messages(self) -> TableMessageStore:
        return TableMessageStore.from_connection_string(
            self.host.connection_string, table_name=os.environ["SLACK_MESSAGES_TABLE"]
        )

    def posts(self) -> list[Call]:
        """The incident messages: top-level chat.postMessage calls (thread replies left out)."""
        return [c for c in self.slack.api.called("chat.postMessage") if not c.args.get("thread_ts")]

    def updates(self) -> list[Call]:
        return self.slack.api.called("chat.update")

    def shown_text(self) -> str:
        """What the message says now: the text of the last chat.update."""
        return str(self.updates()[-1].args["text"])

    def buttons(self) -> list[str]:
        """The action ids of the buttons of the message as last updated."""
        blocks = self.updates()[-1].args["blocks"]
        return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]

    def thread(self) -> list[str]:
        return [c.args["text"] for c in self.slack.api.called("chat.postMessage") if c.args.get("thread_ts")]


@pytest.fixture(name="chain")
def chain_fixture(slack: SlackTest) -> Chain:
    """Import with `slack_fixture` into a test module: `from harness import chain_fixture as chain_fixture`."""
    return Chain(Host(connection_string=slack.tables.connection_string), slack)
