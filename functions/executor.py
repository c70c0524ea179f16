"""Queue trigger on `remediation-actions`: the executor runs, or undoes, one approved incident.

A message is `{"incident_id", "kind": "execute" | "undo"}`. A transient failure raises, so the host
delivers the message again (host.json: maxDequeueCount 5); on the last delivery the incident ends
failed with the last error instead, so nothing stays silently stuck. A malformed message is
logged and dropped: no retry can fix it.
"""

from __future__ import annotations

import json
import logging

import azure.functions as func

from functions import wiring

logger = logging.getLogger(__name__)

bp = func.Blueprint()

MAX_DEQUEUE_COUNT = 5  # host.json extensions.queues.maxDequeueCount


@bp.function_name("remediation_executor")
@bp.queue_trigger(arg_name="message", queue_name="%REMEDIATION_ACTIONS_QUEUE%", connection="AzureWebJobsStorage")
def remediation_executor(message: func.QueueMessage) -> None:
    try:
        work = json.loads(message.get_body())
        incident_id, kind = str(work["incident_id"]), work.get("kind", "execute")
    except (ValueError, KeyError, TypeError) as error:
        logger.error("work message dropped: %s", error, extra={"message_id": message.id, "reason": str(error)})
        return
    executor = wiring.executor()
    try:
        executor.undo(incident_id) if kind == "undo" else executor.execute(incident_id)
    except Exception as error:
        if (message.dequeue_count or 0) < MAX_DEQUEUE_COUNT:
            raise
        logger.exception("last delivery failed", extra={"incident_id": incident_id, "kind": kind})
        executor.give_up(incident_id, error=str(error))
