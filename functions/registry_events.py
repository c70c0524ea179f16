"""Event Grid trigger for Azure Container Registry events (image and chart pushed or deleted).

The host splits Event Grid batches and answers the subscription validation handshake itself, so
this function sees one event per call. Bad events are logged and counted by intake, never raised.
"""

from __future__ import annotations

import azure.functions as func

from functions import wiring
from functions.translate import event_grid_json
from remediation.signals import normalise, parse_registry_event

bp = func.Blueprint()


@bp.function_name("registry_events")
@bp.event_grid_trigger(arg_name="event")
def registry_events(event: func.EventGridEvent) -> None:
    outcome = normalise(event_grid_json(event), parse_registry_event)
    wiring.intake().process([outcome], trigger="registry_events")
