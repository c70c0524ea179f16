"""Translation between Azure Functions HTTP objects and Bolt's, like Bolt's own framework adapters.

Neighbours: `functions/slack_events.py` calls `handle(app, req)`; Bolt (`bot.app`) verifies the
signature and the 5-minute replay window on the raw body, then dispatches. Nothing else here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import azure.functions as func

if TYPE_CHECKING:
    from slack_bolt import App, BoltRequest, BoltResponse


def to_bolt_request(req: func.HttpRequest) -> BoltRequest:
    from slack_bolt import BoltRequest

    return BoltRequest(
        body=req.get_body().decode("utf-8"),
        query=dict(req.params),
        headers={name.lower(): value for name, value in req.headers.items()},
    )


def to_http_response(resp: BoltResponse) -> func.HttpResponse:
    headers = {name: ", ".join(values) for name, values in resp.headers.items() if name.lower() != "content-type"}
    content_type = (resp.headers.get("content-type") or ["text/plain;charset=utf-8"])[0]
    return func.HttpResponse(body=resp.body, status_code=resp.status, headers={**headers, "Content-Type": content_type})


def handle(app: App, req: func.HttpRequest) -> func.HttpResponse:
    return to_http_response(app.dispatch(to_bolt_request(req)))
