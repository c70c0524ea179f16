"""Translation between azure.functions binding objects and the plain JSON the engine reads.

Shared by the trigger modules; pure functions, no I/O.
"""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func

from remediation.intake import IntakeReport


def event_grid_json(event: func.EventGridEvent | func.CloudEvent) -> dict[str, Any]:
    """The event as its sender wrote it (the worker has already parsed the envelope for us)."""
    if isinstance(event, func.CloudEvent):
        body: dict[str, Any] = {
            "specversion": event.specversion,
            "id": event.id,
            "source": event.source,
            "type": event.type,
            "subject": event.subject,
            "time": event.time.isoformat() if event.time else None,
            "data": event.get_json(),
        }
    else:
        body = {
            "id": event.id,
            "topic": event.topic,
            "subject": event.subject,
            "eventType": event.event_type,
            "eventTime": event.event_time.isoformat() if event.event_time else None,
            "data": event.get_json(),
            "dataVersion": event.data_version,
        }
    return {key: value for key, value in body.items() if value is not None}


def report_json(report: IntakeReport) -> dict[str, Any]:
    return {
        **report.counts(),
        "signals": [signal.id for signal in report.accepted],
        "problems": [
            {"index": problem.index, "event_id": problem.event_id, "reason": problem.reason}
            for problem in report.rejected
        ],
    }


def json_response(document: dict[str, Any], *, status_code: int) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(document), status_code=status_code, mimetype="application/json", charset="utf-8"
    )
