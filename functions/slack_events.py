"""Slack to us: interactivity (buttons, modals), the `/remediate` command and events, on one URL.

`POST /api/slack/events`, anonymous at the Functions level because Slack cannot send a function
key. Slack's signature and 5-minute replay window are checked on the raw body with the settings
alone, before the Bolt app, the engine or any storage client is built: a forged request gets 401
and costs no I/O. A request from a workspace or app other than the pinned `SLACK_TEAM_ID` /
`SLACK_APP_ID` gets 403 the same way. Translation only; `bot/` does the rest. The time to
acknowledge is logged on every request (Slack gives up after 3 s).
"""

from __future__ import annotations

import logging
import time

import azure.functions as func

from functions import wiring

logger = logging.getLogger(__name__)

bp = func.Blueprint()


@bp.function_name("slack_events")
@bp.route(route="slack/events", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def slack_events(req: func.HttpRequest) -> func.HttpResponse:
    from bot.adapter import handle, refusal

    started = time.perf_counter()
    settings = wiring.components().settings.slack  # settings only: nothing is connected yet
    refused = refusal(req, settings=settings) if settings is not None else None
    response = handle(wiring.slack_app(), req) if refused is None else refused
    ack_ms = round((time.perf_counter() - started) * 1000, 1)
    logger.info("slack request answered in %.1f ms", ack_ms, extra={"ack_ms": ack_ms, "status": response.status_code})
    return response
