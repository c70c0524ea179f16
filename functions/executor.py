"""Queue trigger on `remediation-actions`: the executor runs, or undoes, one approved incident.

A message is `{"incident_id", "kind": "execute" | "undo" | "preview"}`; `preview` reads the targets
of an incident whose missing input was just supplied (too slow for the click that supplied it). A
transient failure raises, so the host delivers the message again (host.json: maxDequeueCount 5). On
the last delivery the incident is first marked as given up (an execution ends failed, an undo
records its error), so Slack tells the truth, and the error is raised once more so the host keeps
the message in the poison queue. A malformed message is logged and dropped: no retry can fix it. A
delivery that finds another live worker holding the incident's lease fails, so the host brings it
back later; on its last delivery it is dropped with a warning, since that worker (or, if it died,
the timer's re-drive) finishes the work. The message's `traceparent` is continued, so the run and its
action calls are spans of the incident's trace; a poisoned message is counted (`remediation.poison`).
"""

from __future__ import annotations

import json
import logging

import azure.functions as func

from functions import wiring
from remediation import telemetry
from remediation.failures import InProgressElsewhere

logger = logging.getLogger(__name__)

bp = func.Blueprint()

MAX_DEQUEUE_COUNT = 5  # host.json extensions.queues.maxDequeueCount
QUEUE = "remediation-actions"  # its name in metrics, whatever REMEDIATION_ACTIONS_QUEUE calls it


@bp.function_name("remediation_executor")
@bp.queue_trigger(arg_name="message", queue_name="%REMEDIATION_ACTIONS_QUEUE%", connection="AzureWebJobsStorage")
def remediation_executor(message: func.QueueMessage) -> None:
    try:
        work = json.loads(message.get_body())
        incident_id, kind = str(work["incident_id"]), work.get("kind", "execute")
    except (ValueError, KeyError, TypeError) as error:
        logger.error("work message dropped: %s", error, extra={"message_id": message.id, "reason": str(error)})
        telemetry.POISON.add(1, {"queue": QUEUE, "kind": "malformed"})
        return
    attributes = {"incident_id": incident_id, "kind": kind, "dequeue_count": message.dequeue_count}
    with telemetry.consumed("remediation-actions process", work, attributes=attributes):
        _run(incident_id, kind, dequeue_count=message.dequeue_count or 0)


def _run(incident_id: str, kind: str, *, dequeue_count: int) -> None:
    if kind == "preview":
        wiring.engine().refresh_previews(incident_id)
        return
    executor = wiring.executor()
    try:
        if kind == "undo":
            executor.undo(incident_id)
        else:
            executor.execute(incident_id)
    except InProgressElsewhere as busy:
        if dequeue_count < MAX_DEQUEUE_COUNT:
            raise  # the host delivers it again later
        # Still running elsewhere after every redelivery: that worker finishes it, or, if it died,
        # the minute timer re-drives the incident once its lease runs out. Nothing to poison.
        logger.warning("duplicate delivery dropped: %s", busy, extra={"incident_id": incident_id, "kind": kind})
    except Exception as error:
        if dequeue_count >= MAX_DEQUEUE_COUNT:
            logger.error("last delivery failed: %s", error, extra={"incident_id": incident_id, "kind": kind})
            telemetry.POISON.add(1, {"queue": QUEUE, "kind": kind})
            executor.give_up(incident_id, error=str(error), undo=kind == "undo")
        raise
