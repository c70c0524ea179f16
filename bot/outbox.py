"""Slack work off the click path: every message, reply and view goes through the `slack-outbox` queue.

Neighbours: the engine's notifier in every process is `Outbox` (an enqueue, a few milliseconds), so
a click, an alert or the executor never waits on Slack; the `slack_outbox` queue trigger hands each
job to `OutboxWorker`, which reads the incident as it is now and has `bot.notifier.SlackNotifier`
make Slack show it. A job is about "show this incident as it is", so jobs may run in any order and
twice: the message record decides what is already shown (by the incident's revision, never a clock).
When Slack rate-limits (429) or fails, the job goes back on the queue to become visible after
Slack's Retry-After (or a backoff), a bounded number of times; the minute timer re-announces any
incident whose message never got posted. Each job carries the W3C `traceparent` of the span that
queued it (the incident's journey, `remediation.telemetry`), and the worker's span continues it.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from remediation import telemetry
from remediation.incidents import Incident

if TYPE_CHECKING:
    from bot.notifier import SlackNotifier
    from remediation.engine import Engine
    from remediation.store.clients import StorageAccess

logger = logging.getLogger(__name__)

QUEUE = "slack-outbox"
MAX_ATTEMPTS = 8
MAX_DELAY_SECONDS = 600  # the queue's visibility delay is capped at 7 days; Slack never asks for more than this


class JobQueue(Protocol):
    def send(self, text: str, *, delay: int = 0) -> None: ...


class StorageJobQueue:
    """The outbox on Azure Storage: base64 messages, as the Functions queue trigger reads them."""

    def __init__(
        self, *, storage: StorageAccess | None = None, connection_string: str = "", queue_name: str = QUEUE
    ) -> None:
        """On `storage` (identity-based or not), or on a connection string."""
        self._storage = storage if storage is not None else connection_string
        self._queue_name = queue_name
        self._queue: Any = None
        self._lock = threading.Lock()

    def send(self, text: str, *, delay: int = 0) -> None:
        self._client().send_message(text.encode(), visibility_timeout=delay or None)

    def _client(self) -> Any:
        """Connected (and the queue created) on the first job, not when the app is composed."""
        from remediation.store.clients import base64_queue

        with self._lock:
            if self._queue is None:
                self._queue = base64_queue(self._storage, queue_name=self._queue_name)
            return self._queue

    def close(self) -> None:
        if self._queue is not None:
            self._queue.close()


class Outbox:
    """The engine's Notifier, and the bot's way to say anything to Slack: one queued job per call."""

    def __init__(self, *, queue: JobQueue) -> None:
        self._queue = queue

    def incident_opened(self, incident: Incident) -> None:
        self._put({"kind": "opened", "incident_id": incident.id})

    def incident_updated(self, incident: Incident) -> None:
        self._put({"kind": "updated", "incident_id": incident.id})

    def approval_needed(self, incident: Incident) -> None:
        self._put({"kind": "approval", "incident_id": incident.id})

    def step_progress(self, incident: Incident, *, step: int, message: str) -> None:
        self._put({"kind": "progress", "incident_id": incident.id, "step": step, "message": message})

    def channel_post(self, incident: Incident, *, channel: str, text: str) -> None:
        self._put({"kind": "post", "incident_id": incident.id, "channel": channel, "text": text})

    def incident_finished(self, incident: Incident) -> None:
        self._put({"kind": "finished", "incident_id": incident.id})

    def note(self, incident_id: str, text: str) -> None:
        self._put({"kind": "note", "incident_id": incident_id, "text": text})

    def tell(self, *, channel: str, user: str, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        """An ephemeral reply to one person in a channel."""
        self._put({"kind": "ephemeral", "channel": channel, "user": user, "text": text, "blocks": blocks})

    def home(self, *, user: str) -> None:
        """Publish `user`'s App Home."""
        self._put({"kind": "home", "user": user})

    def later(self, job: Mapping[str, Any], *, delay: float) -> None:
        """Run `job` again in `delay` seconds (at least one: the queue counts whole seconds); not a
        failed attempt."""
        self._put(job, delay=min(MAX_DELAY_SECONDS, max(1, math.ceil(delay))))

    def retry(self, job: Mapping[str, Any], *, delay: float) -> bool:
        """Put `job` back to run after `delay` seconds; False when it has had its attempts."""
        attempt = int(job.get("attempt", 1)) + 1
        if attempt > MAX_ATTEMPTS:
            return False
        self._put({**job, "attempt": attempt}, delay=min(MAX_DELAY_SECONDS, max(1, round(delay))))
        return True

    def _put(self, job: Mapping[str, Any], *, delay: int = 0) -> None:
        self._queue.send(json.dumps({**job, **telemetry.carrier()}, sort_keys=True), delay=delay)


class SlackRetry(Exception):
    """Slack did not take the call now (429, 5xx, a dropped connection): try again after `delay`."""

    def __init__(self, message: str, *, delay: float) -> None:
        super().__init__(message)
        self.delay = delay


@dataclass(frozen=True, slots=True)
class OutboxWorker:
    """Does one job: makes Slack show what the job is about, now."""

    engine: Engine
    notifier: SlackNotifier
    outbox: Outbox

    def run(self, text: str) -> None:
        """The job in `text`; a Slack failure puts it back on the queue after Slack's Retry-After."""
        try:
            job = json.loads(text)
            kind = job["kind"]
        except (ValueError, KeyError, TypeError) as problem:
            logger.error("Slack job dropped: %s", problem, extra={"reason": str(problem)})
            telemetry.POISON.add(1, {"queue": QUEUE, "kind": "malformed"})
            return
        with telemetry.consumed("slack.job", job, attributes=_extra(job)) as span:
            try:
                self._do(kind, job)
            except SlackRetry as busy:
                telemetry.failed(busy, current=span)
                if self.outbox.retry(job, delay=busy.delay):
                    logger.warning("Slack %s job retried in %.0f s: %s", kind, busy.delay, busy, extra=_extra(job))
                else:
                    logger.error(
                        "Slack %s job gave up after %d attempts: %s", kind, MAX_ATTEMPTS, busy, extra=_extra(job)
                    )
                    telemetry.POISON.add(1, {"queue": QUEUE, "kind": str(kind)})

    def _do(self, kind: str, job: Mapping[str, Any]) -> None:
        from bot.home import publish_home

        if kind == "ephemeral":
            self.notifier.ephemeral(
                channel=job["channel"], user=job["user"], text=job["text"], blocks=job.get("blocks")
            )
            return
        if kind == "home":
            publish_home(engine=self.engine, user=job["user"], call=self.notifier.call)
            return
        incident = self.engine.incidents.get(str(job["incident_id"]))
        if incident is None:
            logger.warning("Slack job for an unknown incident dropped", extra=_extra(job))
            return
        if kind == "note":
            self.notifier.note(incident, job["text"])
        elif kind == "progress":
            self.notifier.step_progress(incident, step=int(job["step"]), message=str(job["message"]))
        elif kind == "approval":
            self.notifier.approval_needed(incident)
        elif kind == "post":
            self.notifier.channel_post(incident, channel=str(job["channel"]), text=str(job["text"]))
        elif kind == "updated":  # a fold inside the update interval is shown when it is over
            wait = self.notifier.held_back(incident, self.notifier.show(incident, force=False))
            if wait is not None:
                self.outbox.later(job, delay=wait)
        else:  # opened, finished: show the incident as it is
            self.notifier.show(incident, force=True)
        if not incident.announced and self.notifier.has_message(incident.id):
            self.engine.mark_announced(incident.id)


def _extra(job: Mapping[str, Any]) -> dict[str, Any]:
    return {"incident_id": job.get("incident_id"), "slack_job": job.get("kind"), "attempt": job.get("attempt", 1)}
